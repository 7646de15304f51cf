#!/usr/bin/env bash
# Runs every benchmark in turn on the real stack and writes BENCHMARKS.md. Not part of the tests.
#   npm run bench                                  (all, 5 runs each, on the dev server)
#   npm run bench -- replay mttr                   (some)
#   npm run bench -- --temporal=cluster [names]    (on the cluster profile, scripts/cluster.sh: each
#                                                   figure in a section "… (cluster profile)" beside
#                                                   the dev server's; replay uses no server: skipped)
# The drill benchmarks break the shared drill target: nothing else should use the stack meanwhile.
set -euo pipefail
cd "$(dirname "$0")/.."
all=(replay alert-latency mttr concurrency alert-storm)
usage="usage: npm run bench [-- [--temporal=dev|cluster] <name>...]   names: ${all[*]}"
profile=dev
names=()
for a in "$@"; do
  case "$a" in
    -h|--help) echo "$usage"; exit 0 ;;
    --temporal=dev|--temporal=cluster) profile="${a#--temporal=}" ;;
    -*) echo "unknown option $a" >&2; echo "$usage" >&2; exit 2 ;;
    *) [[ -f "bench/$a.ts" ]] || { echo "unknown benchmark: $a (known: ${all[*]})" >&2; exit 2; }; names+=("$a") ;;
  esac
done
[[ ${#names[@]} -gt 0 ]] || names=("${all[@]}")
scripts/stack.sh up
if [[ "$profile" == cluster ]]; then scripts/cluster.sh up; fi
for name in "${names[@]}"; do
  if [[ "$profile" == cluster && "$name" == replay ]]; then
    echo "== replay: uses no server, the same on both profiles: skipped"
    continue
  fi
  echo "== $name ($profile)"
  start=$SECONDS
  if [[ "$name" == replay ]]; then npx tsx bench/replay.ts; else npx tsx "bench/$name.ts" --temporal "$profile"; fi
  echo "== $name done in $((SECONDS - start)) s"
done
echo "figures written to BENCHMARKS.md"
