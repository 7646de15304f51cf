/**
 * Who may decide, without Temporal: the kernel's approval rules (src/workflows/kernel/approvals.ts)
 * on a record, a policy, a clock and a timeline of their own. Decisions arrive as the worker's codec
 * leaves them: `__sealedBy` for a seal that verified, `__sealRefused` for one that did not. The waits
 * (tiers, escalation, expiry) are in approvals.time-skipping.test.ts.
 */
import { SEAL_REFUSED_FIELD, SEALED_BY_FIELD, type SealedBy } from '../../../src/lib/codec/sealed';
import { createApprovals, DECISION_MAX_AGE_MS, type ApprovalsDeps } from '../../../src/workflows/kernel/approvals';
import type { Step } from '../../../src/workflows/kernel';
import type { ActionRecord, ApprovalDecision, IncidentPolicy, IncidentRecord, PendingApproval } from '../../../src/workflows/contracts';

const NOW = Date.parse('2026-12-02T10:00:00Z');
const MIN = 60_000;
const INCIDENT = 'incident-cacheFailure-alfred';

const POLICY: IncidentPolicy = {
  approvers: ['alice', 'bob', 'carol'],
  tiers: [{ name: 'tier-1', contacts: ['@on-call'], waitMs: 15 * MIN }],
  verifyDeadlineMs: MIN,
  cooldownMs: 0,
  lockWaitMs: MIN,
  escalatedHoldMs: 60 * MIN,
};

function record(over: Partial<IncidentRecord> = {}): IncidentRecord {
  return {
    incidentId: INCIDENT,
    runbook: 'cacheFailure',
    scenario: 'INC-05',
    title: 'Redis / cache failure',
    severity: 2,
    target: 'alfred',
    requestedBy: 'dana',
    dryRun: false,
    phase: 'MITIGATE',
    openedAt: new Date(NOW - 5 * MIN).toISOString(),
    findings: [],
    actions: [],
    pending: [],
    timeline: [],
    alerts: { count: 0, resolved: 0, flaps: 0 },
    escalations: [],
    children: [],
    ...over,
  };
}

function pending(stepId: string, needed = 1): PendingApproval {
  return { stepId, title: stepId, risk: needed === 2 ? 'two-person' : 'approve', needed, approvals: [], tier: 'tier-1', since: new Date(NOW).toISOString() };
}

/** Approval rules over a record of their own; `notes` is the timeline as it is written. */
function setup(over: Partial<ApprovalsDeps> = {}) {
  const rec = over.record ?? record();
  const notes: string[] = [];
  const sent: string[] = [];
  let policy = POLICY;
  const a = createApprovals({
    record: rec,
    policy: () => policy,
    note: (e) => notes.push(e),
    render: () => undefined,
    send: (n) => sent.push(n.kind),
    now: () => NOW,
    sealed: true,
    decideWhileChecking: true,
    runningChild: () => undefined,
    lastResolvedAt: () => 0,
    ...over,
  });
  return { a, rec, notes, sent, setPolicy: (p: IncidentPolicy) => (policy = p) };
}

let seals = 0;
/** A decision as the worker's codec hands it over: sealed for `by`, at `at` (default: now). */
function sealed<T extends object>(by: string, body: T, at = new Date(NOW), id = `seal-${++seals}`): T & { [SEALED_BY_FIELD]: SealedBy } {
  return { ...body, [SEALED_BY_FIELD]: { by, id, at: at.toISOString(), via: 'token' } };
}

const approve = (stepId: string, extra: Partial<ApprovalDecision> = {}): ApprovalDecision => ({ incidentId: INCIDENT, stepId, ...extra });

describe('a decision counts for the identity that sealed it', () => {
  test('sealed by an allowed approver, for this incident, fresh: it counts for the sealer, whatever name it carries', () => {
    const { a, rec, notes } = setup({ record: record({ pending: [pending('evict-cache')] }) });
    a.onSignal(sealed('alice', approve('evict-cache', { approver: 'mallory', comment: 'go' })), 'approve');
    expect(rec.pending[0]?.approvals).toEqual(['alice']);
    expect(notes).toEqual(['alice (sealed) approved evict-cache (go)']);
  });

  test('not sealed: refused, with the name it claims', () => {
    const { a, rec, notes } = setup({ record: record({ pending: [pending('evict-cache')] }) });
    a.onSignal(approve('evict-cache', { approver: 'alice' }), 'approve');
    expect(rec.pending[0]?.approvals).toEqual([]);
    expect(notes).toEqual([
      'refused approval of evict-cache (claiming to be alice): not sealed by the codec server: send it from the Temporal UI signed in to the codec server, or with bin/remediate and your credential',
    ]);
  });

  test('a seal that does not verify: refused, saying why', () => {
    const { a } = setup({ record: record({ pending: [pending('evict-cache')] }) });
    const forged = { ...approve('evict-cache'), [SEAL_REFUSED_FIELD]: 'seal (key "s1") does not match: the payload or its seal was altered' };
    expect(a.judge(forged, 'approve')).toEqual({ refused: 'its seal does not verify (seal (key "s1") does not match: the payload or its seal was altered)' });
  });

  test('it must name this incident', () => {
    const { a } = setup({ record: record({ pending: [pending('evict-cache')] }) });
    expect(a.judge(sealed('alice', { stepId: 'evict-cache' }), 'approve')).toEqual({
      refused: `sealed by alice but names no incident: add "incidentId": "${INCIDENT}"`,
    });
    expect(a.judge(sealed('alice', { incidentId: 'incident-other', stepId: 'evict-cache' }), 'approve')).toEqual({
      refused: 'sealed by alice for incident incident-other, not this one',
    });
  });

  test('a seal counts once: the same decision sent again is refused', () => {
    const { a, rec, notes } = setup({ record: record({ pending: [pending('restore-backup', 2)] }) });
    const d = sealed('alice', approve('restore-backup'), new Date(NOW), 'seal-once');
    a.onSignal(d, 'approve');
    a.onSignal(d, 'approve');
    expect(rec.pending[0]?.approvals).toEqual(['alice']);
    expect(notes[1]).toBe('refused approval of restore-backup: sealed by alice and already counted (seal seal-once): a decision counts once');
  });

  test('older than policy.decisionMaxAgeMs, or ahead of the clock by more than a minute: refused', () => {
    const { a, setPolicy } = setup({ record: record({ pending: [pending('evict-cache')] }) });
    const at = (msAgo: number) => new Date(NOW - msAgo);
    expect(a.judge(sealed('alice', approve('evict-cache'), at(DECISION_MAX_AGE_MS)), 'approve')).toMatchObject({ who: 'alice' });
    expect(a.judge(sealed('alice', approve('evict-cache'), at(DECISION_MAX_AGE_MS + 1)), 'approve')).toEqual({
      refused: `sealed by alice at ${at(DECISION_MAX_AGE_MS + 1).toISOString()}: older than 15 min (or ahead of this incident's clock); send it again`,
    });
    expect(a.judge(sealed('alice', approve('evict-cache'), at(-2 * MIN)), 'approve')).toMatchObject({ refused: expect.stringMatching(/ahead of this incident's clock/) });
    setPolicy({ ...POLICY, decisionMaxAgeMs: 5 * MIN });
    expect(a.judge(sealed('alice', approve('evict-cache'), at(6 * MIN)), 'approve')).toMatchObject({ refused: expect.stringMatching(/older than 5 min/) });
    expect(a.judge(sealed('alice', approve('evict-cache'), at(4 * MIN)), 'approve')).toMatchObject({ who: 'alice' });
  });

  test('a field it does not know: refused, naming it, before anything counts', () => {
    const { a, rec, notes } = setup({ record: record({ pending: [pending('evict-cache')] }) });
    a.onSignal(sealed('alice', approve('evict-cache', { approvers: ['alice', 'bob'] } as Partial<ApprovalDecision>)), 'approve');
    expect(rec.pending[0]?.approvals).toEqual([]);
    expect(notes).toEqual([`refused approval of evict-cache: unknown field "approvers": send {"incidentId": "${INCIDENT}", "stepId": "..."}`]);
    expect(a.deciderOf(sealed('alice', { incidentId: INCIDENT, note: 'done', force: true }), 'by')).toEqual({
      refused: `unknown field "force": send {"incidentId": "${INCIDENT}", "note": "..."}`,
    });
  });

  test('not an object at all: refused with an example of what to send', () => {
    const { a } = setup();
    expect(a.deciderOf('approve', 'approver')).toEqual({ refused: `expected one JSON object: {"incidentId": "${INCIDENT}", "stepId": "..."}` });
    expect(a.deciderOf(null, 'by')).toEqual({ refused: `expected one JSON object: {"incidentId": "${INCIDENT}", "note": "..."}` });
  });
});

describe('who may approve or reject a step', () => {
  test('only a step that waits for approval', () => {
    const { a } = setup({ record: record({ pending: [pending('evict-cache')] }) });
    expect(a.judge(sealed('alice', approve('raise-maxmemory')), 'approve')).toEqual({
      refused: 'step "raise-maxmemory" is not waiting for approval (waiting: evict-cache)',
      claimed: 'alice',
    });
  });

  test('a step of a running child is decided in the child', () => {
    const { a } = setup({ runningChild: () => `${INCIDENT}.rollback.1` });
    expect(a.judge(sealed('alice', approve('restore-backup')), 'approve')).toMatchObject({
      refused: `step "restore-backup" is not waiting for approval (waiting: none); a step of the running child waits there: send the decision to ${INCIDENT}.rollback.1`,
    });
  });

  test('the requester cannot approve, but may reject', () => {
    const { a } = setup({ record: record({ requestedBy: 'alice', pending: [pending('evict-cache')] }) });
    expect(a.judge(sealed('alice', approve('evict-cache')), 'approve')).toMatchObject({ refused: 'alice opened this incident and cannot approve its steps' });
    // dana, who opened it, is no approver, and still may say no.
    const { a: b, notes } = setup({ record: record({ requestedBy: 'dana', pending: [pending('evict-cache')] }) });
    b.onSignal(sealed('dana', approve('evict-cache', { comment: 'not now' })), 'reject');
    expect(b.rejectedBy('evict-cache')).toBe('dana');
    expect(notes).toEqual(['dana (sealed) rejected evict-cache (not now)']);
  });

  test('only the policy\'s approvers', () => {
    const { a, notes } = setup({ record: record({ pending: [pending('evict-cache')] }) });
    a.onSignal(sealed('mallory', approve('evict-cache')), 'approve');
    expect(notes).toEqual(['refused approval of evict-cache from mallory: mallory is not an allowed approver (allowed: alice, bob, carol)']);
  });

  test('two-person: the second approval must come from someone else', () => {
    const { a, rec } = setup({ record: record({ pending: [pending('restore-backup', 2)] }) });
    expect(a.onUpdate(sealed('alice', { ...approve('restore-backup'), decision: 'approve' as const }))).toEqual({ stepId: 'restore-backup', state: 'pending', approvals: ['alice'] });
    expect(() => a.validateUpdate(sealed('alice', { ...approve('restore-backup'), decision: 'approve' as const }))).toThrow(
      'alice already approved "restore-backup"; a second approval must come from someone else',
    );
    expect(a.onUpdate(sealed('carol', { ...approve('restore-backup'), decision: 'approve' as const }))).toEqual({ stepId: 'restore-backup', state: 'approved', approvals: ['alice', 'carol'] });
    expect(rec.pending[0]?.approvals).toEqual(['alice', 'carol']);
  });

  test('the update refuses what would not count, before it reaches the history', () => {
    const { a } = setup({ record: record({ pending: [pending('evict-cache')] }) });
    expect(() => a.validateUpdate({ ...approve('evict-cache'), decision: 'maybe' as 'approve' })).toThrow('decision must be "approve" or "reject"');
    expect(() => a.validateUpdate({ ...approve('evict-cache'), decision: 'approve' })).toThrow(/not sealed by the codec server/);
    expect(() => a.validateUpdate(sealed('bob', { ...approve('evict-cache'), decision: 'reject' as const }))).not.toThrow();
  });

  test('a decision may arrive while the step\'s precondition is checked, just before it is asked', async () => {
    const { a } = setup();
    const early = sealed('bob', approve('evict-cache'));
    const during = await a.whileChecking('evict-cache', async () => a.judge(early, 'approve'));
    expect(during).toMatchObject({ who: 'bob' });
    expect(a.judge(sealed('bob', approve('evict-cache')), 'approve')).toMatchObject({ refused: expect.stringMatching(/is not waiting for approval/) });
    // Incidents recorded before that rule refuse it then too.
    const { a: before } = setup({ decideWhileChecking: false });
    expect(await before.whileChecking('evict-cache', async () => before.judge(sealed('bob', approve('evict-cache')), 'approve'))).toMatchObject({
      refused: expect.stringMatching(/is not waiting for approval/),
    });
  });
});

describe('closing an escalated incident', () => {
  test('a close counts only from an approver, and only once the incident is escalated', () => {
    const { a, rec, notes } = setup({ record: record({ phase: 'MITIGATE' }) });
    a.close(sealed('alice', { incidentId: INCIDENT, note: 'early' }), true);
    rec.phase = 'ESCALATED';
    a.close(sealed('mallory', { incidentId: INCIDENT }), true);
    a.close({ incidentId: INCIDENT, by: 'alice' }, true);
    expect(a.closedBy()).toBeUndefined();
    a.close(sealed('bob', { incidentId: INCIDENT, note: 'flushed by hand' }), true);
    expect(a.closedBy()).toEqual({ by: 'bob', note: 'flushed by hand' });
    expect(notes).toEqual([
      'refused close from alice: the incident is in MITIGATE, not escalated; a close is for an incident that waits for people',
      'refused close from mallory: not an allowed approver',
      'refused close (claiming to be alice): not sealed by the codec server: send it from the Temporal UI signed in to the codec server, or with bin/remediate and your credential',
      'closed by bob (sealed): flushed by hand',
    ]);
  });

  test('incidents recorded before the close rules and sealed decisions took any close by the name it carried', () => {
    const { a, notes } = setup({ sealed: false, record: record({ phase: 'MITIGATE' }) });
    a.close({ by: 'anyone', note: 'x' }, false);
    expect(a.closedBy()).toEqual({ by: 'anyone', note: 'x' });
    expect(notes).toEqual(['closed by anyone: x']);
  });
});

describe('aborting an incident before it finishes', () => {
  test('an allowed approver aborts with a reason; the wait for approval is what it stops', () => {
    const { a, rec, notes } = setup({ record: record({ phase: 'MITIGATE', pending: [pending('evict-cache')] }) });
    a.close(sealed('mallory', { incidentId: INCIDENT, abort: true, reason: 'wrong target' }), true, true);
    a.close(sealed('alice', { incidentId: INCIDENT, abort: true }), true, true);
    a.close(sealed('alice', { incidentId: INCIDENT, abort: true, reason: '   ' }), true, true);
    a.close(sealed('alice', { incidentId: INCIDENT, abort: 'yes' as unknown as boolean, reason: 'x' }), true, true);
    a.close(sealed('alice', { incidentId: INCIDENT, abort: true, reason: 'x'.repeat(501) }), true, true);
    a.close({ incidentId: INCIDENT, by: 'alice', abort: true, reason: 'typed name' }, true, true);
    expect(a.abortedBy()).toBeUndefined();
    expect(rec.aborted).toBeUndefined();
    a.close(sealed('dana', { incidentId: INCIDENT, abort: true, reason: 'I opened it by mistake' }, new Date(NOW)), true, true);
    expect(a.abortedBy()).toBeUndefined();
    a.close(sealed('bob', { incidentId: INCIDENT, abort: true, reason: ' the cache is being rebuilt by hand ' }), true, true);
    expect(a.abortedBy()).toEqual({ by: 'bob', reason: 'the cache is being rebuilt by hand', at: new Date(NOW).toISOString() });
    expect(rec.aborted).toEqual(a.abortedBy());
    a.close(sealed('carol', { incidentId: INCIDENT, abort: true, reason: 'again' }), true, true);
    expect(a.abortedBy()?.by).toBe('bob');
    expect(a.closedBy()).toBeUndefined();
    expect(notes).toEqual([
      'refused abort from mallory: not an allowed approver',
      'refused abort from alice: an abort needs a reason: {"abort": true, "reason": "why it must stop"}',
      'refused abort from alice: an abort needs a reason: {"abort": true, "reason": "why it must stop"}',
      'refused abort from alice: "abort" must be true',
      'refused abort from alice: the reason is longer than 500 characters',
      'refused close (claiming to be alice): not sealed by the codec server: send it from the Temporal UI signed in to the codec server, or with bin/remediate and your credential',
      'refused abort from dana: not an allowed approver',
      'abort requested by bob (sealed) in MITIGATE: the cache is being rebuilt by hand; the incident stops at its next safe point',
      'refused abort from carol: already aborted by bob',
    ]);
  });

  test('an early close points to the abort; an abort of an escalated incident is its close', () => {
    const { a, rec, notes } = setup({ record: record({ phase: 'TRIAGE' }) });
    a.close(sealed('alice', { incidentId: INCIDENT, note: 'early' }), true, true);
    expect(notes.at(-1)).toBe(
      `refused close from alice: the incident is in TRIAGE, not escalated; a close is for an incident that waits for people; to stop it now, send {"incidentId": "${INCIDENT}", "abort": true, "reason": "..."}`,
    );
    rec.phase = 'ESCALATED';
    a.close(sealed('alice', { incidentId: INCIDENT, abort: true, reason: 'handled by hand' }), true, true);
    expect(a.closedBy()).toEqual({ by: 'alice', note: 'handled by hand' });
    expect(a.abortedBy()).toBeUndefined();
    expect(notes.at(-1)).toBe('closed by alice (sealed) (abort): handled by hand');
  });

  test('an incident that is closing, or recorded before aborts existed, refuses an abort', () => {
    const closing = setup({ record: record({ phase: 'POST-MORTEM' }) });
    closing.a.close(sealed('alice', { incidentId: INCIDENT, abort: true, reason: 'late' }), true, true);
    expect(closing.notes).toEqual(['refused abort from alice: the incident is already closing (POST-MORTEM)']);
    const older = setup({ record: record({ phase: 'MITIGATE' }) });
    older.a.close(sealed('alice', { incidentId: INCIDENT, abort: true, reason: 'stop' }), true, false);
    expect(older.a.abortedBy()).toBeUndefined();
    expect(older.notes).toEqual(['refused abort from alice: this incident started before aborts existed; close it once it escalates']);
  });
});

describe('incidents recorded before sealed decisions', () => {
  test('a decision counts for the approver it names', () => {
    const { a, rec, notes } = setup({ sealed: false, record: record({ pending: [pending('evict-cache')] }) });
    a.onSignal({ stepId: 'evict-cache' } as ApprovalDecision, 'approve');
    a.onSignal({ stepId: 'evict-cache', approver: 'bob' }, 'approve');
    expect(rec.pending[0]?.approvals).toEqual(['bob']);
    expect(notes).toEqual(['refused approval of evict-cache: stepId and approver are required strings', 'bob approved evict-cache']);
  });
});

describe('approvals through a parent incident', () => {
  const step: Step = { id: 'restart-api', title: 'Restart the api', risk: 'approve', resource: 'api', describe: 'restart api', run: async () => 'done' };
  const action = (): ActionRecord => ({ stepId: step.id, title: step.title, risk: step.risk, resource: step.resource, state: 'planned', approvals: [] });

  test('the approvers of the parent\'s step approve a single-approver step of the child it started', async () => {
    const { a, notes } = setup({ parent: { incidentId: 'incident-parent', stepId: 'rollback', approvers: ['alice'] } });
    const act = action();
    expect(await a.awaitApproval(step, act)).toBe('approved');
    expect(act.approvals).toEqual(['alice']);
    a.confirm(step.id);
    expect(a.approversOf(step.id)).toEqual(['alice']);
    expect(a.approversOf('other')).toEqual([]);
    expect(notes).toEqual(['restart-api approved by alice through step rollback of incident-parent']);
  });
});
