#!/usr/bin/env bash
# Runs the whole test suite against the real stack: installs what is missing, brings the stack up,
# runs every test (jest), prints "N passed, N failed", and stops what it started.
#   scripts/test.sh [jest args...]     e.g. scripts/test.sh test/workflows
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

was_running=0
if [ -f "$STACK_DIR/started/temporal.pid" ] && kill -0 "$(cat "$STACK_DIR/started/temporal.pid")" 2>/dev/null; then was_running=1; fi

# The cluster profile's tests (test/cluster) start it themselves: stopped again unless it already ran.
cluster_was_running=0
if [ -f "$STACK_DIR/started/temporal-cluster.pid" ] && kill -0 "$(cat "$STACK_DIR/started/temporal-cluster.pid")" 2>/dev/null; then cluster_was_running=1; fi

cleanup() {
  if [ -x scripts/alerting.sh ] && [ "$was_running" = 0 ]; then bash scripts/alerting.sh down >/dev/null 2>&1 || true; fi
  if [ "$was_running" = 0 ]; then bash scripts/stack.sh down || true; fi
  if [ "$cluster_was_running" = 0 ] && [ -d "$CLUSTER_DIR" ]; then bash scripts/cluster.sh down || true; fi
}
trap cleanup EXIT

bash scripts/stack.sh up
# test/cluster starts the cluster profile itself; its binaries are built here, where the build shows
# (the first time only: about five minutes), rather than silently inside a test.
bash scripts/install.sh --temporal=cluster
npx tsc --noEmit -p tsconfig.json
npx eslint --max-warnings 0 .
# The client tests run bin/remediate as engineers do: from the compiled build, current with the sources.
bash scripts/build-cli.sh

results="$STACK_DIR/test-results.json"
rc=0
npx jest --json --outputFile="$results" "$@" || rc=$?
node -e '
  const r = require(process.argv[1]);
  console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests} skipped`);
' "$results" || true
exit $rc
