/**
 * Decisions count only for the identity the codec server sealed them with, in the incident they
 * name, once, while fresh. What anyone who reaches Temporal could send instead (an unsealed name, a
 * `__sealedBy` written by hand, a forged mac, an old seal, a seal for another incident, one
 * credential under two names, the same sealed decision twice, a stored sealed decision replayed to
 * another incident, the temporal CLI with a hand-written seal) is refused and noted in the timeline,
 * on a real two-person step that never runs.
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { buildIncidentInput } from '../../src/lib/incident-input';
import { approveSignal, closeSignal, decideUpdate, rejectSignal, statusQuery, type IncidentRecord } from '../../src/workflows/contracts';
import { startEngine, temporalBin, type Engine, type IncidentHandle, type IncidentWorkflow } from '../helpers/engine';
import { clientFor } from '../helpers/sealing';

jest.setTimeout(180_000);

let engine: Engine;

beforeAll(async () => {
  engine = await startEngine();
});

afterAll(async () => {
  await engine.stop();
});

const STEP = 'restore-backup';

/** A rollback that asks for a two-person restore of the latest backup, started by `requester` (sealed). */
async function twoPersonIncident(requester: string): Promise<IncidentHandle> {
  const { runbook, input } = buildIncidentInput(engine.config, { runbook: 'rollback', target: 'alfred', requestedBy: 'someone-else', params: { services: [], restoreBackup: true } });
  const h = await clientFor(engine, { sealAs: requester }).workflow.start<IncidentWorkflow>(runbook, {
    taskQueue: engine.taskQueue,
    workflowId: `test-sealed-${randomUUID().slice(0, 8)}`,
    args: [input],
  });
  const tracked = engine.track(h.workflowId);
  await engine.waitFor(tracked, (s) => s.pending.some((p) => p.stepId === STEP));
  return tracked;
}

const events = (r: IncidentRecord): string[] => r.timeline.map((t) => t.event);
const approvalsOf = (r: IncidentRecord): string[] => r.pending.find((p) => p.stepId === STEP)?.approvals ?? [];

test('only a sealed decision for this incident counts, once, for the identity that sealed it', async () => {
  const h = await twoPersonIncident('erin');
  const id = h.workflowId;
  const handle = (c: ReturnType<typeof clientFor>) => c.workflow.getHandle(id);

  // A name typed into an unsealed decision.
  await handle(clientFor(engine)).signal(approveSignal, { incidentId: id, stepId: STEP, approver: 'alice' });
  // A `__sealedBy` written by hand: the worker's codec removes it.
  const now = new Date().toISOString();
  await handle(clientFor(engine)).signal(approveSignal, { incidentId: id, stepId: STEP, approver: 'bob', __sealedBy: { by: 'bob', id: 'handmade', at: now, via: 'token' } });
  // A seal whose mac was not made with the engine's key.
  await handle(clientFor(engine, { sealAs: 'alice', forgeMac: true })).signal(approveSignal, { incidentId: id, stepId: STEP });
  // A seal made an hour ago.
  await handle(clientFor(engine, { sealAs: 'alice', at: new Date(Date.now() - 3600_000) })).signal(approveSignal, { incidentId: id, stepId: STEP });
  // A seal for another incident.
  await handle(clientFor(engine, { sealAs: 'alice' })).signal(approveSignal, { incidentId: 'test-another-incident', stepId: STEP });
  // A sealed decision that names no incident.
  await handle(clientFor(engine, { sealAs: 'alice' })).signal(approveSignal, { stepId: STEP });

  let rec = await engine.waitFor(h, (s) => events(s).filter((e) => e.startsWith('refused approval')).length >= 6);
  const refused = events(rec).filter((e) => e.startsWith('refused approval'));
  expect(refused).toEqual([
    expect.stringMatching(/claiming to be alice\): not sealed by the codec server/),
    expect.stringMatching(/claiming to be bob\): not sealed by the codec server/),
    expect.stringMatching(/its seal does not verify/),
    expect.stringMatching(/sealed by alice at .*: older than 15 min/),
    expect.stringMatching(/sealed by alice for incident test-another-incident, not this one/),
    expect.stringMatching(/sealed by alice but names no incident: add "incidentId": "test-sealed-/),
  ]);
  expect(approvalsOf(rec)).toEqual([]);

  // One credential, two names: both count for the identity that sealed them, so only once.
  const alice = clientFor(engine, { sealAs: 'alice', id: `seal-${randomUUID()}` });
  await handle(alice).signal(approveSignal, { incidentId: id, stepId: STEP, approver: 'alice' });
  await handle(clientFor(engine, { sealAs: 'alice' })).signal(approveSignal, { incidentId: id, stepId: STEP, approver: 'bob' });
  // The same sealed decision again (same seal id, same mac): a replay.
  await handle(alice).signal(approveSignal, { incidentId: id, stepId: STEP, approver: 'alice' });
  rec = await engine.waitFor(h, (s) => events(s).filter((e) => e.startsWith('refused approval')).length >= 8);
  expect(approvalsOf(rec)).toEqual(['alice']);
  expect(events(rec)).toEqual(expect.arrayContaining(['alice (sealed) approved restore-backup']));
  const later = events(rec).filter((e) => e.startsWith('refused approval')).slice(6);
  expect(later).toEqual([
    expect.stringMatching(/from alice: alice already approved "restore-backup"; a second approval must come from someone else/),
    expect.stringMatching(/sealed by alice and already counted \(seal seal-/),
  ]);
  // The update path refuses the same way, and says why.
  await expect(
    handle(clientFor(engine)).executeUpdate(decideUpdate, { args: [{ incidentId: id, stepId: STEP, approver: 'bob', decision: 'approve' }] }),
  ).rejects.toMatchObject({ cause: { message: expect.stringMatching(/not sealed by the codec server/) } });
  expect(approvalsOf(await h.query(statusQuery))).toEqual(['alice']);

  // bob, sealed, rejects: the step never ran. A close claimed by name is refused; a sealed one closes.
  await handle(clientFor(engine, { sealAs: 'bob' })).signal(rejectSignal, { incidentId: id, stepId: STEP, comment: 'not today' });
  rec = await engine.waitFor(h, (s) => s.phase === 'ESCALATED');
  expect(rec.actions.find((a) => a.stepId === STEP)).toMatchObject({ state: 'rejected', rejectedBy: 'bob' });
  await handle(clientFor(engine)).signal(closeSignal, { incidentId: id, by: 'alice' });
  await handle(clientFor(engine, { sealAs: 'alice' })).signal(closeSignal, { incidentId: id, note: 'restored nothing' });
  const done = await engine.result(h);
  expect(events(done)).toEqual(
    expect.arrayContaining([
      expect.stringMatching(/^refused close \(claiming to be alice\): not sealed by the codec server/),
      'closed by alice (sealed): restored nothing',
    ]),
  );
  expect(done.outcome).toBe('escalated');
});

test('the requester is the identity that sealed the start request, not the name it typed', async () => {
  const h = await twoPersonIncident('carol');
  const id = h.workflowId;
  let rec = await engine.waitFor(h, (s) => s.requestedBy === 'carol');
  expect(events(rec)).toEqual(expect.arrayContaining([expect.stringMatching(/^opened by carol \(sealed\)/)]));
  await clientFor(engine, { sealAs: 'carol' }).workflow.getHandle(id).signal(approveSignal, { incidentId: id, stepId: STEP });
  await clientFor(engine, { sealAs: 'bob' }).workflow.getHandle(id).signal(approveSignal, { incidentId: id, stepId: STEP });
  rec = await engine.waitFor(h, (s) => approvalsOf(s).length === 1 && events(s).some((e) => e.startsWith('refused approval')));
  expect(events(rec).filter((e) => e.startsWith('refused approval'))).toEqual([expect.stringMatching(/from carol: carol opened this incident and cannot approve its steps/)]);
  expect(approvalsOf(rec)).toEqual(['bob']);
  await clientFor(engine, { sealAs: 'alice' }).workflow.getHandle(id).signal(rejectSignal, { incidentId: id, stepId: STEP });
  await engine.waitFor(h, (s) => s.phase === 'ESCALATED');
  await clientFor(engine, { sealAs: 'alice' }).workflow.getHandle(id).signal(closeSignal, { incidentId: id });
  expect((await engine.result(h)).outcome).toBe('escalated');
});

test('a sealed decision replayed from another incident, and a decision sent with the temporal CLI, count for nobody', async () => {
  const a = await twoPersonIncident('erin');
  const b = await twoPersonIncident('erin');
  // alice approves in A through the codec (sealed for A).
  await clientFor(engine, { sealAs: 'alice' }).workflow.getHandle(a.workflowId).signal(approveSignal, { incidentId: a.workflowId, stepId: STEP });
  await engine.waitFor(a, (s) => approvalsOf(s).length === 1);
  // The payload as Temporal stored it in A's history (encrypted, sealed), sent again to B and to A.
  const { history } = await engine.client.workflowService.getWorkflowExecutionHistory({ namespace: engine.config.temporal.namespace, execution: { workflowId: a.workflowId } });
  const signaled = (history?.events ?? []).find((e) => e.workflowExecutionSignaledEventAttributes?.signalName === 'approve');
  const stored = signaled?.workflowExecutionSignaledEventAttributes?.input;
  expect(stored?.payloads?.length).toBe(1);
  for (const target of [b.workflowId, a.workflowId]) {
    await engine.client.workflowService.signalWorkflowExecution({
      namespace: engine.config.temporal.namespace,
      workflowExecution: { workflowId: target },
      signalName: 'approve',
      input: stored,
      identity: 'replayer',
      requestId: randomUUID(),
    });
  }
  // The temporal CLI sends plain JSON: a name and a hand-written seal, unsealed as far as the codec knows.
  const forged = { incidentId: b.workflowId, stepId: STEP, approver: 'bob', __sealedBy: { by: 'bob', id: 'cli', at: new Date().toISOString(), via: 'session' } };
  execFileSync(temporalBin(), ['workflow', 'signal', '--workflow-id', b.workflowId, '--name', 'approve', '--input', JSON.stringify(forged), '--address', engine.config.temporal.address]);
  const rb = await engine.waitFor(b, (s) => events(s).filter((e) => e.startsWith('refused approval')).length >= 2);
  expect(events(rb).filter((e) => e.startsWith('refused approval'))).toEqual([
    expect.stringMatching(new RegExp(`sealed by alice for incident ${a.workflowId}, not this one`)),
    expect.stringMatching(/claiming to be bob\): not sealed by the codec server/),
  ]);
  expect(approvalsOf(rb)).toEqual([]);
  const ra = await engine.waitFor(a, (s) => events(s).some((e) => e.startsWith('refused approval')));
  expect(events(ra).filter((e) => e.startsWith('refused approval'))).toEqual([expect.stringMatching(/sealed by alice and already counted/)]);
  expect(approvalsOf(ra)).toEqual(['alice']);
  for (const h of [a, b]) {
    await clientFor(engine, { sealAs: 'bob' }).workflow.getHandle(h.workflowId).signal(rejectSignal, { incidentId: h.workflowId, stepId: STEP });
    await engine.waitFor(h, (s) => s.phase === 'ESCALATED');
    await clientFor(engine, { sealAs: 'bob' }).workflow.getHandle(h.workflowId).signal(closeSignal, { incidentId: h.workflowId });
    expect((await engine.result(h)).outcome).toBe('escalated');
  }
});
