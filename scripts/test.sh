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

# Everything installed first. test/cluster starts the cluster profile itself; its binaries are built
# here, where the build shows (the first time only: about five minutes), rather than inside a test.
bash scripts/install.sh --temporal=cluster
# The type-check and the lint need no stack: they run side by side while it comes up (each on a
# core of its own), and are shown after it.
tsc_log="$(mktemp)"; lint_log="$(mktemp)"
npx tsc --noEmit -p tsconfig.json >"$tsc_log" 2>&1 &
tsc_pid=$!
npx eslint --max-warnings 0 . >"$lint_log" 2>&1 &
lint_pid=$!
stack_rc=0
bash scripts/stack.sh up || stack_rc=$?
tsc_rc=0; lint_rc=0
wait "$tsc_pid" || tsc_rc=$?
wait "$lint_pid" || lint_rc=$?
cat "$tsc_log" "$lint_log"
rm -f "$tsc_log" "$lint_log"
if [ "$tsc_rc" != 0 ]; then echo "the type-check failed (above): no tests run" >&2; exit "$tsc_rc"; fi
if [ "$lint_rc" != 0 ]; then echo "the lint failed (above): no tests run" >&2; exit "$lint_rc"; fi
if [ "$stack_rc" != 0 ]; then echo "the stack did not come up: no tests run" >&2; exit "$stack_rc"; fi
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
