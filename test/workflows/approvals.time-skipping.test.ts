/**
 * The approval rules over hours of workflow time, in seconds of wall time: Temporal's time-skipping
 * test server runs the real workflow bundle, with stubbed activities (a Redis at maxmemory for INC-05,
 * a rollback asked to restore a backup) and escalation tiers of 15 minutes each. Decisions are sealed
 * for their approver by a client codec with a test key ring; the worker verifies them with the
 * engine's codecs on the same ring. Incidents open with the engine's own incidentOpening activity
 * over stubbed policy and window reads: its retries and its "not known" answer are real.
 *
 * Needs no stack: only Java and the test server's jars (scripts/install.sh).
 */
import { randomUUID } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/common';
import type { Client, WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import type { CodecSecrets } from '../../src/lib/codec';
import type { ActiveWindow } from '../../src/lib/maintenance';
import type { Notification } from '../../src/activities/engine/notify';
import { createOpeningActivities } from '../../src/activities/engine/opening';
import {
  approveSignal,
  closeSignal,
  decideUpdate,
  guardWorkflowId,
  statusQuery,
  type IncidentInput,
  type IncidentPolicy,
  type IncidentRecord,
} from '../../src/workflows/contracts';
import { requestTargetLockOn, sealedClient, startTimeSkipping, testSecrets, testWorker } from '../helpers/time-skipping';

jest.setTimeout(60_000);

const MIN = 60_000;
const TIERS = [
  { name: 'tier-1 on-call', contacts: ['@on-call'], waitMs: 15 * MIN },
  { name: 'tier-2 senior', contacts: ['@lead'], waitMs: 15 * MIN },
  { name: 'tier-3 engineering', contacts: ['@eng'], waitMs: 15 * MIN },
];
const POLICY: IncidentPolicy = {
  approvers: ['alice', 'bob', 'carol'],
  tiers: TIERS,
  verifyDeadlineMs: 5 * MIN,
  cooldownMs: 0,
  lockWaitMs: MIN,
  escalatedHoldMs: 60 * MIN,
  settleMs: 0,
  decisionMaxAgeMs: 10 * MIN,
};
const TARGET = 'alfred';
const MB = 1024 * 1024;

let env: TestWorkflowEnvironment;
let secrets: CodecSecrets;
let worker: Worker;
let running: Promise<void>;
const taskQueue = `time-skipping-${randomUUID().slice(0, 8)}`;
/** What the incidents told people, by incident. */
const sent = new Map<string, Notification[]>();
/** Redis memory as the stubs report it: full until the eviction runs. */
let redisFull = true;
/**
 * The maintenance window the stub reports open on the target (none by default), or that it cannot
 * tell: for good (`unreadable`), for now on every attempt (`unreachable`), or without ever answering
 * (`hangs`). `flaky` fails its first read for now, then reports `window`.
 */
let maintenance: ActiveWindow | 'unreadable' | 'unreachable' | 'hangs' | { flaky: ActiveWindow } | undefined;
/** How often the stub was asked for the window. */
let windowReads = 0;

/**
 * INC-05 on a Redis at maxmemory (evict-cache, then raise-maxmemory, each approved) and a rollback
 * that restores a backup (two-person). The lock comes from the real guard workflow, started as the
 * engine's activity starts it.
 */
function activities() {
  const memory = () => ({ usedBytes: (redisFull ? 100 : 40) * MB, peakBytes: 100 * MB, maxmemoryBytes: 100 * MB, usedPct: redisFull ? 100 : 40, policy: 'noeviction' });
  // The two reads an incident opens with; it runs them through the engine's own incidentOpening.
  const reads = {
    async incidentPolicy() {
      return { ...POLICY, overrides: [] };
    },
    async maintenanceWindowAt() {
      windowReads += 1;
      if (maintenance === 'unreadable') throw ApplicationFailure.create({ message: 'the keeper did not answer', nonRetryable: true });
      if (maintenance === 'unreachable') throw new Error('connect ECONNREFUSED 127.0.0.1:7233');
      if (maintenance === 'hangs') return new Promise<never>(() => undefined);
      if (maintenance && 'flaky' in maintenance) {
        if (windowReads === 1) throw new Error('the keeper is busy');
        return { window: maintenance.flaky, at: new Date().toISOString() };
      }
      return { ...(maintenance ? { window: maintenance } : {}), at: new Date().toISOString() };
    },
  };
  return {
    ...reads,
    ...createOpeningActivities(reads),
    async describeTarget(input: { target: string }) {
      return {
        name: input.target,
        components: ['api', 'redis', 'db'],
        rollbackOrder: ['api'],
        cacheKeyPattern: 'alfred:cache:*',
        thresholds: { redisMemoryPct: 90 },
        limits: { cacheRecoverySeconds: 0, maxmemoryRaiseFactor: 1.5 },
        hasPostgres: true,
        hasRedis: true,
      };
    },
    async redisPing() {
      return { ok: true, reply: 'PONG', latencyMs: 1 };
    },
    async containerState(ref: { component: string }) {
      return { name: `alfred-${ref.component}-1`, running: true, status: 'running', oomKilled: false, exitCode: 0, tag: '1.0.0' };
    },
    async httpHealth() {
      return { ok: true, status: 200, body: { status: 'ok', redis: 'healthy' }, latencyMs: 3, apiRedis: { state: 'healthy', detail: 'healthy' } };
    },
    async composeNetwork() {
      return { network: 'alfred_default', available: true, attached: { api: true, redis: true } };
    },
    async redisMemory() {
      return memory();
    },
    async redisWriteProbe() {
      return redisFull ? { ok: false, error: "OOM command not allowed when used memory > 'maxmemory'." } : { ok: true };
    },
    async redisSlowlog() {
      return { entries: [] };
    },
    async unlinkByPattern() {
      redisFull = false;
      return { deleted: 1200, done: true };
    },
    async execInContainer() {
      return { exitCode: 0, output: 'restored' };
    },
    requestTargetLock: requestTargetLockOn(env),
    async notify(n: Notification) {
      sent.set(n.incidentId, [...(sent.get(n.incidentId) ?? []), n]);
      return { delivered: ['test'] };
    },
    async openIncidentChannel(req: { name: string }) {
      return { opened: true, detail: `#${req.name} opened` };
    },
  };
}

beforeAll(async () => {
  secrets = testSecrets();
  env = await startTimeSkipping(secrets);
  worker = await testWorker(env, secrets, taskQueue, activities());
  running = worker.run();
});

afterAll(async () => {
  worker?.shutdown();
  await running;
  await env?.teardown();
});

beforeEach(() => {
  redisFull = true;
  maintenance = undefined;
  windowReads = 0;
});

type Incident = WorkflowHandle<(input: IncidentInput) => Promise<IncidentRecord>>;

async function start(runbook: 'cacheFailure' | 'rollback', params?: Record<string, unknown>): Promise<Incident> {
  const input: IncidentInput = { target: TARGET, requestedBy: 'dana', severity: 2, dryRun: false, ...(params ? { params } : {}) };
  return env.client.workflow.start(runbook, { taskQueue, workflowId: `${runbook}-${randomUUID().slice(0, 8)}`, args: [input] });
}

/** Polls the incident's status (in wall time: the server's clock only runs while the test sleeps). */
async function until(h: Incident, what: string, pred: (r: IncidentRecord) => boolean): Promise<IncidentRecord> {
  const deadline = Date.now() + 20_000;
  let last: IncidentRecord | undefined;
  while (Date.now() < deadline) {
    last = await h.query(statusQuery).catch(() => undefined);
    if (last && pred(last)) return last;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${what}: not reached; last state ${JSON.stringify(last, null, 1)?.slice(0, 3000)}`);
}

const waitingFor = (step: string) => (r: IncidentRecord) => r.pending.some((p) => p.stepId === step);
const as = (who: string, at?: () => Promise<Date>): Client => sealedClient(env, secrets, who, at);
const decision = (h: Incident, stepId: string) => ({ incidentId: h.workflowId, stepId });
const events = (r: IncidentRecord): string[] => r.timeline.map((t) => t.event);
const kinds = (h: Incident): string[] => (sent.get(h.workflowId) ?? []).filter((n) => n.kind !== 'status' && n.kind !== 'announcement').map((n) => `${n.kind}${n.tier ? `:${n.tier}` : ''}`);

/** Waits (in wall time) until `count` notifications other than status updates and announcements are delivered. */
async function delivered(h: Incident, count: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (kinds(h).length < count && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
}

/**
 * The redis guard, idle once the incident released its lock, ends by itself an hour later (skipped).
 * (Terminated in the middle of a workflow task instead, it can leave the test server's time skipping
 * locked for the next test.)
 */
async function guardIdlesOut(): Promise<void> {
  await env.client.workflow.getHandle(guardWorkflowId(TARGET, 'redis')).result();
}

async function closeAndFinish(h: Incident, by = 'alice'): Promise<IncidentRecord> {
  await as(by).workflow.getHandle(h.workflowId).signal(closeSignal, { incidentId: h.workflowId, note: 'handled by hand' });
  return h.result();
}

test('an unanswered approval escalates through every tier, expires, and the incident waits for a person', async () => {
  const h = await start('cacheFailure');
  const waiting = await until(h, 'evict-cache waits', waitingFor('evict-cache'));
  expect(waiting.pending[0]).toMatchObject({ tier: 'tier-1 on-call', needed: 1 });

  await env.sleep(14 * MIN);
  expect((await h.query(statusQuery)).pending[0]?.tier).toBe('tier-1 on-call');
  await env.sleep(2 * MIN);
  expect((await h.query(statusQuery)).pending[0]?.tier).toBe('tier-2 senior');

  await env.sleep(30 * MIN);
  const rec = await until(h, 'escalated', (r) => r.phase === 'ESCALATED');
  expect(rec.actions.find((a) => a.stepId === 'evict-cache')).toMatchObject({ state: 'expired', approvals: [] });
  expect(rec.escalations).toEqual([
    'evict-cache: no decision in tier-1 on-call, escalated',
    'evict-cache: no decision in tier-2 senior, escalated',
    'approval for step evict-cache expired after all escalation tiers',
  ]);
  // One request per tier; then, at once, the expiry and the escalation (to tier 2's contacts),
  // delivered in the background.
  await delivered(h, 5);
  expect(kinds(h).slice(0, 3)).toEqual(['approval-needed:tier-1 on-call', 'escalation:tier-2 senior', 'escalation:tier-3 engineering']);
  expect(kinds(h).slice(3).sort()).toEqual(['escalation:tier-2 senior', 'expired']);
  expect(redisFull).toBe(true);

  // Escalated, it stays open: an hour later a reminder, still open; a person closes it.
  await env.sleep(61 * MIN);
  const held = await h.query(statusQuery);
  expect(held.phase).toBe('ESCALATED');
  expect(events(held)).toContain('still escalated: reminder sent');
  expect((await h.describe()).status.name).toBe('RUNNING');
  const done = await closeAndFinish(h);
  expect(done.outcome).toBe('escalated');
  expect(events(done)).toContain('closed by alice (sealed): handled by hand');
});

test('an approval inside tier 2 counts: the step runs and the incident resolves', async () => {
  const h = await start('cacheFailure');
  await until(h, 'evict-cache waits', waitingFor('evict-cache'));
  await env.sleep(20 * MIN);
  expect((await h.query(statusQuery)).pending[0]?.tier).toBe('tier-2 senior');

  await as('bob').workflow.getHandle(h.workflowId).signal(approveSignal, decision(h, 'evict-cache'));
  const rec = await h.result();
  expect(rec.outcome).toBe('resolved');
  expect(rec.actions.find((a) => a.stepId === 'evict-cache')).toMatchObject({ state: 'done', approvals: ['bob'] });
  // Its problem gone with the eviction, the second step is not put to anyone.
  expect(rec.actions.find((a) => a.stepId === 'raise-maxmemory')).toMatchObject({ state: 'skipped' });
  expect(rec.escalations).toEqual(['evict-cache: no decision in tier-1 on-call, escalated']);
  expect(events(rec)).toContain('bob (sealed) approved evict-cache');
  expect(kinds(h)).toEqual(['approval-needed:tier-1 on-call', 'escalation:tier-2 senior', 'resolved']);
  await guardIdlesOut();
});

test('a two-person step with one approver expires: the same person cannot approve twice', async () => {
  const h = await start('rollback', { services: [], restoreBackup: true });
  await until(h, 'restore-backup waits', waitingFor('restore-backup'));
  const alice = as('alice').workflow.getHandle(h.workflowId);
  const first = await alice.executeUpdate(decideUpdate, { args: [{ ...decision(h, 'restore-backup'), decision: 'approve' }] });
  expect(first).toEqual({ stepId: 'restore-backup', state: 'pending', approvals: ['alice'] });
  await env.sleep(20 * MIN);
  await alice.signal(approveSignal, decision(h, 'restore-backup'));

  await env.sleep(30 * MIN);
  const rec = await until(h, 'escalated', (r) => r.phase === 'ESCALATED');
  expect(rec.actions.find((a) => a.stepId === 'restore-backup')).toMatchObject({ state: 'expired', approvals: ['alice'] });
  expect(events(rec)).toContain('refused approval of restore-backup from alice: alice already approved "restore-backup"; a second approval must come from someone else');
  expect(rec.escalations.at(-1)).toBe('approval for step restore-backup expired after all escalation tiers');
  expect((await closeAndFinish(h, 'carol')).outcome).toBe('escalated');
});

test('a decision older than policy.decisionMaxAgeMs is refused; a fresh one counts', async () => {
  const h = await start('cacheFailure');
  await until(h, 'evict-cache waits', waitingFor('evict-cache'));
  // Sealed now, sent 11 minutes later (the policy allows 10).
  const sealedAt = new Date(await env.currentTimeMs());
  await env.sleep(11 * MIN);
  const stale = as('carol', async () => sealedAt).workflow.getHandle(h.workflowId);
  await expect(stale.executeUpdate(decideUpdate, { args: [{ ...decision(h, 'evict-cache'), decision: 'approve' }] })).rejects.toMatchObject({
    cause: { message: `sealed by carol at ${sealedAt.toISOString()}: older than 10 min (or ahead of this incident's clock); send it again` },
  });
  await stale.signal(approveSignal, decision(h, 'evict-cache'));
  const refused = await until(h, 'the stale signal refused', (r) => events(r).some((e) => e.startsWith('refused approval of evict-cache')));
  expect(events(refused)).toContain(
    `refused approval of evict-cache: sealed by carol at ${sealedAt.toISOString()}: older than 10 min (or ahead of this incident's clock); send it again`,
  );
  expect(refused.pending[0]).toMatchObject({ stepId: 'evict-cache', approvals: [] });

  await as('carol').workflow.getHandle(h.workflowId).signal(approveSignal, decision(h, 'evict-cache'));
  const rec = await h.result();
  expect(rec.outcome).toBe('resolved');
  expect(rec.actions.find((a) => a.stepId === 'evict-cache')).toMatchObject({ state: 'done', approvals: ['carol'] });
  await guardIdlesOut();
});

test('an abort with a reason stops the incident while a step waits: nothing runs, it closes as aborted', async () => {
  const h = await start('cacheFailure');
  await until(h, 'evict-cache waits', waitingFor('evict-cache'));
  const bob = as('bob').workflow.getHandle(h.workflowId);
  await bob.signal(closeSignal, { incidentId: h.workflowId, note: 'not yet escalated' });
  await bob.signal(closeSignal, { incidentId: h.workflowId, abort: true });
  await until(h, 'both refused', (r) => events(r).filter((e) => e.startsWith('refused')).length === 2);
  await env.sleep(5 * MIN);
  await bob.signal(closeSignal, { incidentId: h.workflowId, abort: true, reason: 'the cache is rebuilt by hand' });
  const rec = await h.result();
  expect(rec.outcome).toBe('aborted');
  expect(rec.aborted).toMatchObject({ by: 'bob', reason: 'the cache is rebuilt by hand' });
  expect(rec.actions.map((a) => [a.stepId, a.state])).toEqual([
    ['evict-cache', 'skipped'],
    ['raise-maxmemory', 'skipped'],
  ]);
  // Nothing was evicted: the stub's Redis is still full.
  expect(redisFull).toBe(true);
  expect(rec.pending).toEqual([]);
  expect(events(rec)).toEqual(
    expect.arrayContaining([
      expect.stringMatching(/^refused close from bob: the incident is in MITIGATE, not escalated; .*to stop it now/),
      'refused abort from bob: an abort needs a reason: {"abort": true, "reason": "why it must stop"}',
      'abort requested by bob (sealed) in MITIGATE: the cache is rebuilt by hand; the incident stops at its next safe point',
      'aborted by bob: the cache is rebuilt by hand',
      'closed: aborted',
    ]),
  );
  // Still only the first tier's request: the abort came before any escalation.
  expect(kinds(h)).toEqual(['approval-needed:tier-1 on-call']);
});

describe('in a maintenance window', () => {
  const window: ActiveWindow = {
    id: 'mw-7',
    source: 'opened',
    mode: 'diagnose',
    reason: 'redis 7.4 upgrade',
    by: 'alice',
    from: '2026-12-05T09:00:00.000Z',
    until: '2026-12-05T11:00:00.000Z',
  };

  test('diagnose only: the plan is written down, nothing runs, nobody is asked or paged', async () => {
    maintenance = window;
    const h = await start('cacheFailure');
    const rec = await h.result();
    expect(rec.outcome).toBe('maintenance');
    expect(rec.maintenance).toEqual(window);
    expect(rec.diagnosis).toMatch(/maxmemory/);
    expect(rec.actions.map((a) => [a.stepId, a.state])).toEqual([
      ['evict-cache', 'would-do'],
      ['raise-maxmemory', 'would-do'],
    ]);
    expect(redisFull).toBe(true);
    expect(sent.get(h.workflowId) ?? []).toEqual([]);
    expect(events(rec)).toEqual(
      expect.arrayContaining([
        'opened in maintenance window mw-7 (diagnose only) until 2026-12-05T11:00:00.000Z, opened by alice: redis 7.4 upgrade',
        expect.stringMatching(/^maintenance window: would /),
        'closed: maintenance',
      ]),
    );
  });

  test('record only: the alert is recorded, not even diagnosed', async () => {
    maintenance = { ...window, mode: 'record' };
    const h = await start('cacheFailure');
    const rec = await h.result();
    expect(rec.outcome).toBe('maintenance');
    expect(rec.findings).toEqual([]);
    expect(rec.actions).toEqual([]);
    expect(rec.diagnosis).toBeUndefined();
    expect(sent.get(h.workflowId) ?? []).toEqual([]);
    expect(events(rec)).toContain('opened in maintenance window mw-7 (record only) until 2026-12-05T11:00:00.000Z, opened by alice: redis 7.4 upgrade');
  });

  test('whether a window is open cannot be told: nothing runs, the incident escalates and says why', async () => {
    maintenance = 'unreadable';
    const h = await start('cacheFailure');
    const rec = await until(h, 'escalated', (r) => r.phase === 'ESCALATED');
    expect(rec.escalations).toEqual([expect.stringMatching(/^could not tell whether a maintenance window is open on alfred: .*the keeper did not answer/)]);
    expect(rec.findings).toEqual([]);
    expect(redisFull).toBe(true);
    const done = await closeAndFinish(h);
    expect(done.outcome).toBe('escalated');
  });

  test('a window that stays unreachable through every attempt is not known: the incident escalates with the last failure', async () => {
    maintenance = 'unreachable';
    const h = await start('cacheFailure');
    const rec = await until(h, 'escalated', (r) => r.phase === 'ESCALATED');
    expect(rec.escalations).toEqual(['could not tell whether a maintenance window is open on alfred: connect ECONNREFUSED 127.0.0.1:7233']);
    // The opening activity's three attempts, then the answer "not known": never "no window".
    expect(windowReads).toBe(3);
    expect(rec.findings).toEqual([]);
    expect(redisFull).toBe(true);
    expect((await closeAndFinish(h)).outcome).toBe('escalated');
  });

  test('a window read that never answers is given up on in time, and the incident escalates', async () => {
    maintenance = 'hangs';
    const h = await start('cacheFailure');
    const rec = await until(h, 'escalated', (r) => r.phase === 'ESCALATED');
    expect(rec.escalations).toEqual(['could not tell whether a maintenance window is open on alfred: no answer within 2000 ms']);
    expect(windowReads).toBe(3);
    expect(rec.findings).toEqual([]);
    expect((await closeAndFinish(h)).outcome).toBe('escalated');
  });

  test('a read that fails once is tried again: the window its second attempt reads holds', async () => {
    maintenance = { flaky: window };
    const h = await start('cacheFailure');
    const rec = await h.result();
    expect(windowReads).toBe(2);
    expect(rec.outcome).toBe('maintenance');
    expect(rec.maintenance).toEqual(window);
    expect(rec.escalations).toEqual([]);
  });
});

test('an incident opens with one activity, incidentOpening, before its first diagnostic; not a local one', async () => {
  const h = await start('cacheFailure');
  const rec = await until(h, 'evict-cache waits', waitingFor('evict-cache'));
  // The policy and the window (none) it read are the ones it runs under.
  expect(events(rec)).toEqual(expect.arrayContaining([expect.stringMatching(/^policy from the worker's configuration: approvers alice, bob, carol; tiers tier-1 on-call/)]));
  expect(rec.maintenance).toBeUndefined();
  expect(windowReads).toBe(1);

  const history = (await h.fetchHistory()).events ?? [];
  const scheduled = history.flatMap((e) => e.activityTaskScheduledEventAttributes?.activityType?.name ?? []);
  expect(scheduled).not.toContain('incidentPolicy');
  expect(scheduled).not.toContain('maintenanceWindowAt');
  expect(scheduled.slice(0, 2)).toEqual(['incidentOpening', 'describeTarget']);
  // A local activity is resolved from its marker at once on replay, ahead of the patches of the
  // workflow task after it: the opening records no such marker.
  expect(history.filter((e) => e.markerRecordedEventAttributes?.markerName === 'core_local_activity')).toEqual([]);
  await h.terminate('test finished');
});
