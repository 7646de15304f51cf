/**
 * The cluster's Temporal server is SIGKILLed (no shutdown: whatever it had in memory is lost) while
 * an incident waits for approval. Started again by scripts/cluster.sh, the server recovers the
 * incident from PostgreSQL: it answers, takes the approval, evicts the cache and resolves. The
 * worker is not restarted: it reconnects by itself through mTLS.
 */
import { decideUpdate, statusQuery } from '../../src/workflows/contracts';
import { startEngine, waitUntil, type Engine } from '../helpers/engine';
import { fillRedis, health, unfillRedis } from '../helpers/drill';
import { CLUSTER_UP_TIMEOUT_MS, clusterServerPid, clusterUp, onCluster } from '../helpers/cluster';

jest.setTimeout(180_000);
const FILL = 'alfred:cache:cluster-kill-fill:';

let engine: Engine;

beforeAll(async () => {
  await clusterUp();
  engine = await startEngine({ configure: onCluster });
}, CLUSTER_UP_TIMEOUT_MS);

afterAll(async () => {
  await unfillRedis(FILL);
  // A failed test leaves no server down behind it.
  await clusterUp();
  await engine?.stop();
});

function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('an incident waiting for approval survives a SIGKILL of the cluster server and completes', async () => {
  await fillRedis(FILL);
  const h = await engine.start({ runbook: 'cacheFailure', target: 'alfred' });
  await engine.waitFor(h, (s) => s.pending.some((p) => p.stepId === 'evict-cache'));

  const killed = clusterServerPid();
  process.kill(killed, 'SIGKILL');
  await waitUntil('the server gone', async () => !running(killed), 10_000);
  // Down: the incident does not answer (the client keeps retrying; it is not waited for).
  const meanwhile = await Promise.race([
    h.query(statusQuery).then(
      () => 'answered',
      () => 'failed',
    ),
    new Promise((r) => setTimeout(() => r('no answer in 3 s'), 3_000)),
  ]);
  expect(meanwhile).not.toBe('answered');

  const upMs = await clusterUp();
  const restarted = clusterServerPid();
  expect(restarted).not.toBe(killed);
  console.log(
    `cluster server SIGKILLed (pid ${killed}); scripts/cluster.sh up had it serving again in ${upMs} ms (pid ${restarted})`,
  );

  await waitUntil(
    'the incident answers again',
    async () => (await h.query(statusQuery)).pending.some((p) => p.stepId === 'evict-cache'),
    60_000,
  );
  await h.executeUpdate(decideUpdate, {
    args: [{ incidentId: h.workflowId, stepId: 'evict-cache', approver: 'alice', decision: 'approve' }],
  });
  const rec = await engine.result(h);
  expect(rec.outcome).toBe('resolved');
  expect(rec.actions.find((a) => a.stepId === 'evict-cache')?.state).toBe('done');
  // The history the restarted server serves is the whole incident, from its start.
  const events = (await h.fetchHistory()).events ?? [];
  expect(events[0]?.workflowExecutionStartedEventAttributes?.workflowType?.name).toBe('cacheFailure');
  expect(events.at(-1)?.workflowExecutionCompletedEventAttributes).toBeTruthy();
  await waitUntil('api healthy', async () => (await health())?.status === 'ok');
});
