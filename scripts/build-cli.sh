#!/usr/bin/env bash
# Builds what bin/remediate runs: dist/scripts/remediate/index.js and the engine sources it imports,
# transpiled file by file with esbuild into the layout `npm run build` (tsc -p tsconfig.build.json)
# gives, in about a second; import() becomes require(), as tsc makes it for CommonJS. Type-checking
# stays tsc's (npm run typecheck, scripts/test.sh).
#   scripts/build-cli.sh            build when dist is missing or older than a source; else nothing
#   scripts/build-cli.sh --force    build anyway
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"
entry=dist/scripts/remediate/index.js

if [ "${1:-}" != "--force" ] && [ -f "$entry" ] \
  && [ -z "$(find src scripts/remediate -name '*.ts' -newer "$entry" -print -quit)" ]; then
  exit 0
fi
[ -x node_modules/.bin/esbuild ] || { echo "build-cli: node_modules is missing or incomplete: run \`npm ci\` first" >&2; exit 2; }
# Every source file, not only the CLI's imports: src/lib/codec resolves ./failure-converter by path at load.
mapfile -t sources < <(find src scripts/remediate -name '*.ts' ! -name '*.d.ts' | sort)
node_modules/.bin/esbuild "${sources[@]}" --outdir=dist --outbase=. --platform=node --format=cjs --target=node20 \
  --supported:dynamic-import=false --sourcemap --log-level=warning
touch "$entry"
