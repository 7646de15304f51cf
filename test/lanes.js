/**
 * Which lane a test file runs in (test/lanes-runner.js runs them).
 *
 * - `stack`: files that use the shared stack (the Temporal dev server, the drill's containers, its
 *   PostgreSQL and Redis, the codec server). They run one at a time, in the jest process: drills
 *   break what they share. A file is here unless it matches below (a new file too, until it does).
 * - `independent`: files that use none of it: pure decisions and library code, replay of the
 *   recorded histories, the time-skipping server's tests (each starts a server of its own). They run
 *   one at a time in a worker process of their own, beside the stack lane, mostly while drills wait.
 *   By name: `<runbook>.plan` and `<runbook>.evidence` tests are pure decisions, `*.time-skipping`
 *   tests bring their own server; every other file is listed.
 * - `last`: the secrets scan, after both lanes: it reads every history and log the suite produced.
 */
const INDEPENDENT = [
  /\/test\/replay\.test\.ts$/,
  /\/test\/workflows\/[^/]+\.time-skipping\.test\.ts$/,
  // test/workflows/evidence/ runs runbooks on the drill; test/workflows/<runbook>.evidence.test.ts are pure.
  /\/test\/workflows\/[^/]+\.(plan|evidence)\.test\.ts$/,
  /\/test\/workflows\/(shape|support-report|threshold-settings|kernel\/approvals)\.test\.ts$/,
  /\/test\/lib\/(action-budget|codec|config-file|maintenance|migration-chain|runbook-params|target-signals)\.test\.ts$/,
  /\/test\/receiver\/(parsing|dispatch)\.test\.ts$/,
  /\/test\/comms\/templates\.test\.ts$/,
  /\/test\/postmortem\/postmortem\.test\.ts$/,
  /\/test\/config(-(api|docker|integrity|policy|redis|seed-steps|signals|thresholds|worker-deployment))?\.test\.ts$/,
  // Its own codec server, on an ephemeral port.
  /\/test\/codec-server\/server\.test\.ts$/,
  // Read the repository's files (and run promtool / amtool on them), never the stack.
  /\/test\/compose\/compose\.test\.ts$/,
  /\/test\/receiver\/alerting-config\.test\.ts$/,
  /\/test\/docs(\/[^/]+)?\.test\.ts$/,
];
const LAST = /\/test\/reliability\/secrets\.test\.ts$/;

/** @param {string} testPath @returns {'stack' | 'independent' | 'last'} */
function laneOf(testPath) {
  const p = testPath.split('\\').join('/');
  if (LAST.test(p)) return 'last';
  return INDEPENDENT.some((r) => r.test(p)) ? 'independent' : 'stack';
}

module.exports = { laneOf };
