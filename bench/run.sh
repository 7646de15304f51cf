#!/usr/bin/env bash
# Runs every benchmark in turn on the real stack and writes BENCHMARKS.md. Not part of the tests.
#   npm run bench                 (all, 5 runs each)
#   npm run bench -- replay mttr  (some)
# The drill benchmarks break the shared drill target: nothing else should use the stack meanwhile.
set -euo pipefail
cd "$(dirname "$0")/.."
all=(replay alert-latency mttr concurrency alert-storm)
if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then
  echo "usage: npm run bench [-- <name>...]   names: ${all[*]}"
  exit 0
fi
names=("${@:-${all[@]}}")
scripts/stack.sh up
for name in "${names[@]}"; do
  [[ -f "bench/$name.ts" ]] || { echo "unknown benchmark: $name (known: ${all[*]})" >&2; exit 2; }
  echo "== $name"
  start=$SECONDS
  npx tsx "bench/$name.ts"
  echo "== $name done in $((SECONDS - start)) s"
done
echo "figures written to BENCHMARKS.md"
