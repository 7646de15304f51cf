/**
 * Queue backlog drills on the real drill target: the worker really hangs with 1,500 jobs queued,
 * the runbook really creates worker replicas through the Docker API, the replicas really drain the
 * Redis queue, and the scale-back really removes them.
 */
import Redis from 'ioredis';
import { MockActivityEnvironment } from '@temporalio/testing';
import { runFault } from '../../drill/src/faults/catalog';
import { approveSignal } from '../../src/workflows/contracts';
import { startEngine, waitUntil, type Engine } from '../helpers/engine';

jest.setTimeout(180_000);

const QUEUE = 'rq:queue:default';
let engine: Engine;

async function depth(): Promise<number> {
  const r = new Redis({ port: 6379, lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await r.connect();
    return await r.llen(QUEUE);
  } finally {
    r.disconnect();
  }
}

/** Worker replicas (containers labelled as replicas of the worker), and how many run. */
async function replicas(): Promise<{ names: string[]; running: number }> {
  const list = await engine.docker.listContainers({
    all: true,
    filters: { label: ['com.docker.compose.project=alfred', 'remediation.replica-of'] },
  });
  return {
    names: list.map((c) => (c.Names[0] ?? '').replace(/^\//, '')).sort(),
    running: list.filter((c) => c.State === 'running').length,
  };
}

async function removeReplicas(): Promise<void> {
  const list = await engine.docker.listContainers({ all: true, filters: { label: ['remediation.replica-of'] } });
  for (const c of list) await engine.docker.getContainer(c.Id).remove({ force: true });
}

beforeAll(async () => {
  engine = await startEngine();
  await removeReplicas();
});

afterAll(async () => {
  // Leave the drill as we found it: no replicas, the worker consuming, the queue empty.
  try {
    await removeReplicas();
    await runFault('queue-backlog', true);
    await waitUntil('queue drained', async () => (await depth()) === 0, 60_000);
  } finally {
    await engine.stop();
  }
});

test('a hung worker with 1,500 queued jobs: replicas are added after approval, drain the queue, and are removed', async () => {
  await runFault('queue-backlog', false);
  expect(await depth()).toBeGreaterThanOrEqual(1500);

  const h = await engine.start({ runbook: 'queueBacklog', target: 'alfred', requestedBy: 'dave' });
  const waiting = await engine.waitFor(h, (s) => s.pending.some((p) => p.stepId === 'scale-out'));
  expect(waiting.diagnosis).toMatch(/holds \d+ jobs \(threshold 1000\); consumers are not taking jobs/);
  expect(waiting.rootCause).toMatch(/alfred-worker is running but not consuming/);
  expect(waiting.findings.find((f) => f.check === 'consumers taking jobs')?.ok).toBe(false);
  expect(waiting.findings.find((f) => f.check === 'oldest job')?.detail).toMatch(
    /job_drill_\d+ \(app\.jobs\.apply_transfer\), waiting \d+ s/,
  );
  expect(waiting.report).toMatch(/Reply to the customer \(initial response\)/);
  expect(waiting.report).toMatch(/Inspect alfred-worker's logs/);
  // Nothing is scaled before the approval.
  expect((await replicas()).names).toEqual([]);

  await h.signal(approveSignal, { incidentId: h.workflowId, stepId: 'scale-out', approver: 'alice' });
  const scaled = await engine.waitFor(h, (s) => s.actions.some((a) => a.stepId === 'scale-out' && a.state === 'done'));
  expect(scaled.actions.find((a) => a.stepId === 'scale-out')?.detail).toMatch(
    /created alfred-worker-1, created alfred-worker-2; 2 replica\(s\) of alfred-worker running/,
  );
  const during = await replicas();
  // The replicas may already be gone if the queue drained that fast; if present they are the two named ones.
  if (during.names.length > 0) expect(during.names).toEqual(['alfred-worker-1', 'alfred-worker-2']);

  const rec = await engine.result(h);
  expect(rec.outcome).toBe('resolved');
  expect(rec.actions.map((a) => [a.stepId, a.state])).toEqual([
    ['scale-out', 'done'],
    ['scale-back', 'done'],
  ]);
  expect(rec.actions.find((a) => a.stepId === 'scale-out')?.approvals).toEqual(['alice']);
  expect(rec.actions.find((a) => a.stepId === 'scale-back')?.detail).toMatch(
    /queue down to \d+ jobs; removed alfred-worker-2, removed alfred-worker-1/,
  );
  expect(rec.timeline.some((t) => /verification passed: \d+ jobs queued/.test(t.event))).toBe(true);
  // The real effect: the queue drained (the hung worker took none of it) and the replicas are gone.
  expect(await depth()).toBeLessThan(100);
  expect(await replicas()).toEqual({ names: [], running: 0 });
});

test('a short queue is a false alarm: nothing is scaled', async () => {
  await runFault('queue-backlog', true);
  await waitUntil('queue drained', async () => (await depth()) === 0, 60_000);
  const h = await engine.start({ runbook: 'queueBacklog', target: 'alfred' });
  const rec = await engine.result(h);
  expect(rec.outcome).toBe('false-alarm');
  expect(rec.diagnosis).toMatch(/holds 0 jobs, below the threshold of 1000/);
  expect(rec.actions).toEqual([]);
  expect(rec.report).toMatch(/Reply to the customer \(resolution\)/);
  expect(await replicas()).toEqual({ names: [], running: 0 });
});

test('scaling counts what exists first: a repeat creates nothing, zero removes them, the worker stays the worker', async () => {
  const acts = engine.activities;
  const env = new MockActivityEnvironment();
  const ref = { target: 'alfred', component: 'worker', max: 2 };
  const scale = (replicas: number) =>
    env.run(acts.scaleReplicas, { ...ref, replicas }) as ReturnType<typeof acts.scaleReplicas>;
  try {
    const first = await scale(1);
    expect(first).toMatchObject({
      performed: true,
      detail: 'created alfred-worker-1; 1 replica(s) of alfred-worker running',
    });
    const again = await scale(1);
    expect(again).toMatchObject({ performed: false, detail: 'already 1 replica(s) of alfred-worker running' });
    // A replica carries the worker's labels, yet the component's own container is still the one found.
    const worker = (await env.run(acts.containerState, { target: 'alfred', component: 'worker' })) as { name: string };
    expect(worker.name).toBe('alfred-worker');
    await expect(scale(3)).rejects.toThrow(/from 0 to 2/);
  } finally {
    const down = await scale(0);
    expect(down.detail).toBe('removed alfred-worker-1; 0 replica(s) of alfred-worker running');
  }
  expect(await replicas()).toEqual({ names: [], running: 0 });
});
