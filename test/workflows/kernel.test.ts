/**
 * The kernel's promises, on real drills: approvals time out and escalate then expire (never proceed),
 * rejections stop the step, two-person steps need two distinct people, one incident at a time acts
 * on a resource, a recent mitigation is not repeated (cooldown), a target's action budget holds across
 * its incidents, search attributes list incidents, and a start request made with the plain temporal
 * CLI (its own policy, a made-up parent) widens nothing.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, existsSync } from 'node:fs';
import Redis from 'ioredis';
import { alertSignal, approveSignal, closeSignal, decideUpdate, rejectSignal, statusQuery } from '../../src/workflows/contracts';
import { buildIncidentInput } from '../../src/lib/incident-input';
import type { IncidentPolicy } from '../../src/workflows/contracts';
import { drillContainer, startEngine, temporalBin, TEST_POLICY, waitUntil, type Engine, type IncidentHandle } from '../helpers/engine';
import { fillRedis as fill, health, podmanStartsSince, redisUp, unfillRedis } from '../helpers/drill';

jest.setTimeout(180_000);

let engine: Engine;
const FILL = 'alfred:cache:test-fill:';

const fillRedis = (): Promise<void> => fill(FILL);
const unfill = (): Promise<void> => unfillRedis(FILL);

function notificationsFor(id: string): { kind: string; tier?: string }[] {
  const file = engine.config.notify.file as string;
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { incidentId: string; kind: string; tier?: string })
    .filter((n) => n.incidentId === id);
}

beforeAll(async () => {
  engine = await startEngine({
    extraTargets: ['alfred-tiers', 'alfred-settle'],
    configure: (c) => {
      c.policy.overrides = [
        {
          match: { target: 'alfred-tiers' },
          tiers: [
            { name: 'tier-1 on-call', contacts: ['@on-call'], waitMs: 1500 },
            { name: 'tier-2 senior', contacts: ['@lead'], waitMs: 1500 },
            { name: 'tier-3 engineering', contacts: ['@eng'], waitMs: 1500 },
          ],
        },
        // A SEV-1 incident on alfred holds a 2-minute cooldown (the cooldown test raises its second incident).
        { match: { target: 'alfred', severity: 1 }, cooldownMs: 120_000 },
        { match: { target: 'alfred-settle' }, settleMs: 60_000, cooldownMs: 0 },
      ];
      // The drill under a budget of one action per hour (its own keeper, counting from zero).
      c.targets['alfred-budget'] = { ...(c.targets.alfred as (typeof c.targets)[string]), actionBudget: { maxActions: 1, windowMs: 3600_000 } };
    },
  });
});

/** Starts an incident with the plain temporal CLI (plain JSON, no codec), as anyone who reaches the frontend could. */
function startWithCli(runbook: string, workflowId: string, input: unknown): IncidentHandle {
  execFileSync(temporalBin(), [
    'workflow', 'start', '--type', runbook, '--task-queue', engine.taskQueue, '--workflow-id', workflowId,
    '--input', JSON.stringify(input), '--address', engine.config.temporal.address,
  ]);
  return engine.track(workflowId);
}

async function healRedis(): Promise<void> {
  const c = await drillContainer(engine.docker, 'redis');
  if (!(await c.inspect()).State.Running) await c.start();
  await waitUntil('redis up', redisUp);
  await unfill();
  await waitUntil('api sees redis', async () => (await health())?.redis === 'healthy');
}

beforeEach(healRedis);
afterEach(healRedis);

afterAll(async () => {
  await engine.stop();
});

test('an unanswered approval escalates through the tiers, expires, and the incident stays open until closed', async () => {
  await fillRedis();
  // The short tiers are the worker's policy for this target (configured above).
  const h = await engine.start({ runbook: 'cacheFailure', target: 'alfred-tiers' });
  const rec = await engine.waitFor(h, (s) => s.phase === 'ESCALATED');
  expect(rec.actions.find((a) => a.stepId === 'evict-cache')?.state).toBe('expired');
  expect(rec.escalations).toEqual(
    expect.arrayContaining([expect.stringMatching(/tier-1 on-call, escalated/), expect.stringMatching(/tier-2 senior, escalated/)]),
  );
  expect(rec.escalations.at(-1)).toMatch(/expired after all escalation tiers/);
  // Never proceeds silently: nothing was evicted, and the workflow is still open.
  const r = new Redis({ port: 6379 });
  expect((await r.exists(`${FILL}0`)) === 1).toBe(true);
  r.disconnect();
  expect((await h.describe()).status.name).toBe('RUNNING');
  await waitUntil('notifications delivered', async () => notificationsFor(h.workflowId).some((n) => n.kind === 'expired'));
  const kinds = notificationsFor(h.workflowId).map((n) => `${n.kind}:${n.tier ?? ''}`);
  expect(kinds).toEqual(
    expect.arrayContaining(['approval-needed:tier-1 on-call', 'escalation:tier-2 senior', 'escalation:tier-3 engineering', 'expired:']),
  );

  await h.signal(closeSignal, { incidentId: h.workflowId, by: 'alice', note: 'evicted by hand' });
  const done = await engine.result(h);
  expect(done.outcome).toBe('escalated');
  expect(done.timeline.some((t) => /closed by alice \(sealed\): evicted by hand/.test(t.event))).toBe(true);
});

test('a rejection stops the step and escalates', async () => {
  await fillRedis();
  const h = await engine.start({ runbook: 'cacheFailure', target: 'alfred' });
  await engine.waitFor(h, (s) => s.pending.some((p) => p.stepId === 'evict-cache'));
  await h.signal(rejectSignal, { incidentId: h.workflowId, stepId: 'evict-cache', approver: 'bob', comment: 'not during the sale' });
  const rec = await engine.waitFor(h, (s) => s.phase === 'ESCALATED');
  expect(rec.actions.find((a) => a.stepId === 'evict-cache')).toMatchObject({ state: 'rejected', rejectedBy: 'bob' });
  await h.signal(closeSignal, { incidentId: h.workflowId, by: 'bob' });
  expect((await engine.result(h)).outcome).toBe('escalated');
});

test('a two-person step needs two distinct approvers, then runs', async () => {
  const h = await engine.start({ runbook: 'rollback', target: 'alfred', params: { services: [], restoreBackup: true } });
  await engine.waitFor(h, (s) => s.pending.some((p) => p.stepId === 'restore-backup'));
  const first = await h.executeUpdate(decideUpdate, { args: [{ incidentId: h.workflowId, stepId: 'restore-backup', approver: 'alice', decision: 'approve' }] });
  expect(first).toMatchObject({ state: 'pending', approvals: ['alice'] });
  await expect(
    h.executeUpdate(decideUpdate, { args: [{ incidentId: h.workflowId, stepId: 'restore-backup', approver: 'alice', decision: 'approve' }] }),
  ).rejects.toMatchObject({ cause: { message: expect.stringMatching(/already approved/) } });
  // The UI's signal path counts the second person.
  await h.signal(approveSignal, { incidentId: h.workflowId, stepId: 'restore-backup', approver: 'carol' });
  const rec = await engine.result(h);
  expect(rec.actions.find((a) => a.stepId === 'restore-backup')).toMatchObject({ state: 'done', approvals: ['alice', 'carol'] });
  expect(rec.outcome).toBe('resolved');
});

test('two incidents on the same redis: one restarts it, the other finds it fixed and skips', async () => {
  const c = await drillContainer(engine.docker, 'redis');
  await c.kill();
  await waitUntil('redis down', async () => !(await redisUp()));
  const [a, b] = await Promise.all([
    engine.start({ runbook: 'cacheFailure', target: 'alfred' }),
    engine.start({ runbook: 'cacheFailure', target: 'alfred' }),
  ]);
  const [ra, rb] = await Promise.all([engine.result(a), engine.result(b)]);
  const states = [ra, rb].map((r) => r.actions.find((x) => x.stepId === 'restart-redis')?.state).sort();
  expect(states).toEqual(['done', 'skipped']);
  expect([ra.outcome, rb.outcome]).toEqual(['resolved', 'resolved']);
});

test('a target that breaks again within the cooldown escalates instead of looping', async () => {
  const c = await drillContainer(engine.docker, 'redis');
  await c.kill();
  await waitUntil('redis down', async () => !(await redisUp()));
  // The first incident acts (no cooldown of its own); the second sees that restart as recent.
  const first = await engine.start({ runbook: 'cacheFailure', target: 'alfred' });
  expect((await engine.result(first)).outcome).toBe('resolved');

  await c.kill();
  await waitUntil('redis down again', async () => !(await redisUp()));
  const second = await engine.start({ runbook: 'cacheFailure', target: 'alfred', severity: 1 });
  const rec = await engine.waitFor(second, (s) => s.phase === 'ESCALATED');
  expect(rec.actions.find((a) => a.stepId === 'restart-redis')?.state).toBe('cooldown');
  expect((await c.inspect()).State.Running).toBe(false);
  await second.signal(closeSignal, { incidentId: second.workflowId, by: 'carol' });
  await engine.result(second);
});

test('with a budget of one action per hour, the second incident on the target escalates without touching it', async () => {
  const c = await drillContainer(engine.docker, 'redis');
  const name = (await c.inspect()).Name.replace(/^\//, '');
  const since = Date.now();
  await c.kill();
  await waitUntil('redis down', async () => !(await redisUp()));
  const first = await engine.start({ runbook: 'cacheFailure', target: 'alfred-budget' });
  const done = await engine.result(first);
  expect(done.outcome).toBe('resolved');
  expect(done.actions.find((a) => a.stepId === 'restart-redis')?.state).toBe('done');

  await c.kill();
  await waitUntil('redis down again', async () => !(await redisUp()));
  const second = await engine.start({ runbook: 'cacheFailure', target: 'alfred-budget' });
  const rec = await engine.waitFor(second, (s) => s.phase === 'ESCALATED');
  expect(rec.actions.find((a) => a.stepId === 'restart-redis')?.state).toBe('over-budget');
  expect(rec.escalations).toEqual([expect.stringMatching(new RegExp(`^action budget of 1 per 1h on alfred-budget spent: restart-redis on redis at \\S+ \\(${first.workflowId}\\)$`))]);
  // Podman's own record: one start of the redis container since the test began, the first incident's.
  expect((await c.inspect()).State.Running).toBe(false);
  expect(podmanStartsSince(since, name)).toBe(1);
  await second.signal(closeSignal, { incidentId: second.workflowId, by: 'alice', note: 'restarted by hand' });
  expect((await engine.result(second)).outcome).toBe('escalated');
});

test('incidents are listed and filtered by their search attributes', async () => {
  const h = await engine.start({ runbook: 'cacheFailure', target: 'alfred', dryRun: true });
  await engine.result(h);
  const query = `IncidentRunbook = 'cacheFailure' AND IncidentTarget = 'alfred' AND IncidentScenario = 'INC-05' AND IncidentPhase = 'CLOSED' AND WorkflowId = '${h.workflowId}'`;
  await waitUntil('visibility', async () => {
    for await (const wf of engine.client.workflow.list({ query })) if (wf.workflowId === h.workflowId) return true;
    return false;
  });
});

test('an incident opened by an alert absorbs repeats while it settles, and escalates if the problem is back', async () => {
  const c = await drillContainer(engine.docker, 'redis');
  await c.kill();
  await waitUntil('redis down', async () => !(await redisUp()));
  const alert = { source: 'generic' as const, name: 'CacheFailure', receivedAt: new Date().toISOString() };
  const h = await engine.start({
    runbook: 'cacheFailure',
    target: 'alfred-settle',
    alert: { ...alert, status: 'firing' },
  });
  await engine.waitFor(h, (s) => s.timeline.some((e) => /settling for 60000 ms/.test(e.event)));
  // A repeat while healthy is absorbed.
  await h.signal(alertSignal, { ...alert, status: 'firing' });
  await engine.waitFor(h, (s) => s.timeline.some((e) => /re-fired .* re-check: PING PONG/.test(e.event)));
  expect((await h.query(statusQuery)).phase).toBe('RESOLVE');
  // The problem comes back: the next repeat escalates instead of restarting again.
  await c.kill();
  await waitUntil('redis down again', async () => !(await redisUp()));
  await h.signal(alertSignal, { ...alert, status: 'firing' });
  const rec = await engine.waitFor(h, (s) => s.phase === 'ESCALATED');
  expect(rec.escalations.at(-1)).toMatch(/re-fired after the incident was resolved and the problem is back/);
  expect(rec.actions.filter((a) => a.stepId === 'restart-redis')).toHaveLength(1);
  await h.signal(closeSignal, { incidentId: h.workflowId, by: 'alice' });
  expect((await engine.result(h)).outcome).toBe('escalated');
});

test('a start request that carries its own policy widens nothing: the worker\'s policy decides who may approve', async () => {
  await fillRedis();
  // As anyone who can reach the Temporal frontend could, with the temporal CLI: the input with a policy of one's own.
  const { runbook, input } = buildIncidentInput(engine.config, { runbook: 'cacheFailure', target: 'alfred', requestedBy: 'mallory-script' });
  const forged = { ...input, policy: { ...TEST_POLICY, approvers: ['mallory'], tiers: [{ name: 'nobody', contacts: [], waitMs: 600_000 }] } as IncidentPolicy };
  const h = startWithCli(runbook, `test-forged-policy-${Date.now()}`, forged);
  const waiting = await engine.waitFor(h, (s) => s.pending.some((p) => p.stepId === 'evict-cache'));
  expect(waiting.timeline.map((t) => t.event)).toContain(
    'policy from the worker\'s configuration: approvers alice, bob, carol; tiers tier-1 on-call 60000 ms, tier-2 senior 60000 ms; cooldown 0 ms; action budget of 1000 per 1h on alfred',
  );
  await expect(h.executeUpdate(decideUpdate, { args: [{ incidentId: h.workflowId, stepId: 'evict-cache', approver: 'mallory', decision: 'approve' }] })).rejects.toMatchObject({
    cause: { message: 'mallory is not an allowed approver (allowed: alice, bob, carol)' },
  });
  expect((await h.query(statusQuery)).pending.map((p) => p.stepId)).toEqual(['evict-cache']);
  await h.signal(rejectSignal, { incidentId: h.workflowId, stepId: 'evict-cache', approver: 'alice', comment: 'test over' });
  await engine.waitFor(h, (s) => s.phase === 'ESCALATED');
  await h.signal(closeSignal, { incidentId: h.workflowId, by: 'alice' });
  await engine.result(h);
});

test('a made-up parent in the start request carries no approvals: the step waits for a person', async () => {
  await fillRedis();
  const { runbook, input } = buildIncidentInput(engine.config, { runbook: 'cacheFailure', target: 'alfred', requestedBy: 'mallory-script' });
  const forged = { ...input, parent: { incidentId: 'incident-made-up', stepId: 'whatever', approvers: ['alice'] } };
  const h = startWithCli(runbook, `test-forged-parent-${Date.now()}`, forged);
  const waiting = await engine.waitFor(h, (s) => s.pending.some((p) => p.stepId === 'evict-cache'));
  expect(waiting.actions.find((a) => a.stepId === 'evict-cache')).toMatchObject({ state: 'pending', approvals: [] });
  expect(waiting.timeline.map((t) => t.event)).toContain('the parent named in the request (incident-made-up) did not start this incident: its approvals do not count here');
  // Nor is it a child that reports back: escalated, it holds for a person like any incident.
  expect(waiting.parentIncidentId).toBeUndefined();
  await h.signal(rejectSignal, { incidentId: h.workflowId, stepId: 'evict-cache', approver: 'alice' });
  await engine.waitFor(h, (s) => s.phase === 'ESCALATED');
  await new Promise((r) => setTimeout(r, 1000));
  expect((await h.describe()).status.name).toBe('RUNNING');
  await h.terminate('test over');
});

test('a close before the incident escalates is refused, not kept; after it, only an allowed approver closes', async () => {
  await fillRedis();
  const h = await engine.start({ runbook: 'cacheFailure', target: 'alfred' });
  await engine.waitFor(h, (s) => s.pending.some((p) => p.stepId === 'evict-cache'));
  await h.signal(closeSignal, { incidentId: h.workflowId, by: 'alice', note: 'too early' });
  await engine.waitFor(h, (s) => s.timeline.some((t) => /^refused close from alice: the incident is in MITIGATE, not escalated/.test(t.event)));
  await h.signal(rejectSignal, { incidentId: h.workflowId, stepId: 'evict-cache', approver: 'bob', comment: 'not now' });
  await engine.waitFor(h, (s) => s.phase === 'ESCALATED');
  // The early close was not remembered: the incident stays escalated.
  await new Promise((r) => setTimeout(r, 1500));
  expect((await h.query(statusQuery)).phase).toBe('ESCALATED');
  await h.signal(closeSignal, { incidentId: h.workflowId, by: 'mallory' });
  await engine.waitFor(h, (s) => s.timeline.some((t) => t.event === 'refused close from mallory: not an allowed approver'));
  expect((await h.query(statusQuery)).phase).toBe('ESCALATED');
  await h.signal(closeSignal, { incidentId: h.workflowId, by: 'carol', note: 'handled by hand' });
  expect((await engine.result(h)).outcome).toBe('escalated');
});
