/**
 * The step kernel every runbook runs on: DETECT → TRIAGE → MITIGATE → RESOLVE → POST-MORTEM.
 *
 * A runbook declares its diagnostics, a pure decision over their findings (a plan of steps, each with
 * a risk level), and a verification. The kernel owns everything that must be the same for all of
 * them: approvals with escalation tiers, dry-run, the per-target lock and cooldown, precondition
 * re-checks, verification with a deadline, escalation that keeps the incident open, the UI's current
 * details, search attributes and the final incident record.
 *
 * Workflow code: deterministic. Time comes from the workflow clock, waits are durable timers.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  condition,
  executeChild,
  getExternalWorkflowHandle,
  patched,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  sleep,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { Notification } from '../activities/engine/notify';
import {
  DEFAULT_CADENCE_MS,
  SEVERITY_MATRIX,
  currentStage,
  initialResponse,
  resolutionSummary,
  statusPage,
  type StatusStage,
} from '../comms/templates';
import { sealIsFresh, sealOf } from '../lib/codec/sealed';
import type { RunbookName } from './catalog';
import { stepIdOf, stepKindOf, type AnyStepRef, type Placeholders, type RunbookMeta, type StepIdOf, type StepRef } from './shape';
import {
  HANDLER_DESCRIPTIONS,
  SA_PHASE,
  SA_RUNBOOK,
  SA_SCENARIO,
  SA_SEVERITY,
  SA_TARGET,
  alertSignal,
  approveSignal,
  closeSignal,
  decideUpdate,
  guardWorkflowId,
  lockGrantedSignal,
  rejectSignal,
  releaseLockSignal,
  statusQuery,
  type ActionRecord,
  type ApprovalDecision,
  type DecisionRequest,
  type DecisionResult,
  type StepState,
  type IncidentInput,
  type IncidentPolicy,
  type IncidentOutcome,
  type IncidentRecord,
  type LockGrant,
  type PendingApproval,
  type Phase,
  type Risk,
  type Severity,
} from './contracts';

/** Diagnostics and checks: short, retried with backoff, then a clear failure. */
export const acts = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '10 seconds', maximumAttempts: 5 },
});

/** Mitigations that take long (recreate, vacuum, restore): heartbeat, fewer attempts. */
export const longActs = proxyActivities<Activities>({
  startToCloseTimeout: '15 minutes',
  heartbeatTimeout: '1 minute',
  retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 3 },
});

/** Notifications are retried on their own and never awaited by a mitigation. */
const notifyActs = proxyActivities<Activities>({
  startToCloseTimeout: '15 seconds',
  retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 8 },
});

/** The worker's configuration, read once per incident. */
const policyActs = proxyActivities<Activities>({
  startToCloseTimeout: '10 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds' },
});

/** Seed 002: "Acknowledge the PagerDuty alert within 2 minutes". Retried until then, never longer. */
const ackActs = proxyActivities<Activities>({
  scheduleToCloseTimeout: '2 minutes',
  startToCloseTimeout: '20 seconds',
  retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '20 seconds' },
});

export interface Check {
  ok: boolean;
  detail: string;
  /**
   * With `ok: false`: what could not be observed and why. Recovery that was not observed is not
   * recovery: the incident escalates saying so, never closes as resolved.
   */
  unknown?: string;
}

export interface Step {
  /** Stable id, used in approvals: `{"stepId": "<id>", ...}`. */
  id: string;
  title: string;
  risk: Risk;
  /** The part of the target this step acts on; one incident at a time holds its lock. */
  resource: string;
  /** What the step would do, for dry-run and the approval request. */
  describe: string;
  /**
   * Re-checked right before acting (after approval and the lock): `ok: true` means the problem this
   * step fixes is still there. A step whose precondition no longer holds is skipped.
   */
  precondition?: () => Promise<Check>;
  /** Does the work; must be idempotent. `notBefore` is when this step began, for idempotency checks. */
  run: (notBefore: string) => Promise<string>;
  /** After `run`, must become ok within `gateDeadlineMs` or the rollout stops and escalates. */
  gate?: () => Promise<Check>;
  gateDeadlineMs?: number;
}

export interface Plan {
  diagnosis: string;
  rootCause?: string;
  /** Diagnostics found nothing wrong: no mitigation, the incident closes as a false alarm. */
  falseAlarm?: boolean;
  /** No safe automatic remedy: escalate to humans with this reason. */
  escalate?: string;
  /**
   * The steps contain the damage but cannot end the incident (tampered audit entries are evidence
   * and stay as they are): once they are done the incident escalates at once, with the reason this
   * returns, instead of waiting out a verification that cannot pass.
   */
  handOffAfterSteps?: () => Promise<string>;
  severity?: Severity;
  /**
   * A report for people (Markdown), e.g. what a support engineer pastes into a ticket. Kept in the
   * incident record and printed by `remediate show`.
   */
  report?: string;
  steps: Step[];
}

export interface RunbookContext {
  readonly input: IncidentInput;
  readonly target: string;
  readonly incidentId: string;
  /** The policy the incident runs under (the worker's configuration). */
  readonly policy: IncidentPolicy;
  /** Records a diagnostic finding (shown in the UI and kept in the incident record). */
  finding(check: string, ok: boolean, detail: string): void;
  /**
   * Records a signal that could not be observed, and why (absent metric, unreadable answer, endpoint
   * error). It is neither healthy nor a problem: a plan that calls a false alarm while one is recorded
   * escalates instead, naming what could not be observed. `aside`: told to people, but the runbook's
   * conclusion does not rest on it, so it does not hold back a false alarm.
   */
  unknown(check: string, why: string, opts?: { aside?: boolean }): void;
  /** Adds a line to the timeline. */
  note(event: string): void;
  /**
   * Runs another runbook as a child incident on the same target and returns its record. Its
   * timeline joins this incident's; approvals sent to this incident for a step it is not waiting
   * on are forwarded to the running child. Call it from a step's `run` (the step's approval then
   * counts for the child's single-approver steps) and give that step a resource of its own
   * (`child:<runbook>`), not one the child locks.
   */
  child(runbook: RunbookName, opts: { reason: string; stepId: string; params?: Record<string, unknown> }): Promise<IncidentRecord>;
  /**
   * Tells people something (owners, security, legal, the status page). Delivered in the background,
   * retried, never awaited: a failing notifier does not block a mitigation.
   */
  notify(message: { title: string; text: string; contacts?: string[]; kind?: 'status' | 'escalation' }): void;
  /**
   * Posts a status update now (seed 002's status page stages). The kernel already posts the usual
   * ones (identified or investigating after diagnosis, updates at the severity's cadence, resolved);
   * a runbook calls this for news of its own. Without `text`, the stage's template is used.
   */
  statusUpdate(stage: StatusStage, text?: string): void;
}

export type { StatusStage } from '../comms/templates';

export interface Runbook<F> {
  /** What the runbook is (its name, scenario, severity, steps), declared once beside its code. */
  meta: RunbookMeta & { readonly name: RunbookName };
  diagnose(ctx: RunbookContext): Promise<F>;
  plan(facts: F, ctx: RunbookContext): Plan;
  verify(ctx: RunbookContext, facts: F): Promise<Check>;
}

/** What a runbook's code adds to a step its metadata declares: where it acts and how. An instance of a family names itself. */
export type StepWork<Id extends string> = Omit<Step, 'id' | 'title' | 'risk'> &
  ([Placeholders<Id>] extends [never] ? { title?: never } : { title: string });

/** How each step a runbook's metadata declares is built from the reference a decision chose. */
export type StepBuilders<Id extends string> = { readonly [K in Id]: (ref: StepRef<K>) => StepWork<K> };

/**
 * The steps a decision chose, each with the title and risk its runbook's metadata declares (an
 * instance of a family keeps its own title; later instances of a rollout run under the first's risk).
 */
export function buildSteps<M extends RunbookMeta>(meta: M, refs: readonly StepRef<StepIdOf<M>>[], build: StepBuilders<StepIdOf<M>>): Step[] {
  const started = new Set<string>();
  return refs.map((ref) => {
    const kind = stepKindOf(ref) as StepIdOf<M>;
    const declared = meta.steps.find((s) => s.id === kind);
    if (!declared) throw new Error(`step ${kind} is not declared by ${meta.name}`);
    // The one place a reference meets its builder: the types above tie each id to its own.
    const make = build[kind] as unknown as (r: AnyStepRef) => StepWork<string>;
    const work = make(ref);
    const later = declared.rollout === true && started.has(kind);
    started.add(kind);
    return { ...work, id: stepIdOf(ref), title: work.title ?? declared.title, risk: later ? 'auto' : declared.risk };
  });
}

/** How old a sealed decision may be when it arrives, unless the policy says otherwise. */
export const DECISION_MAX_AGE_MS = 15 * 60_000;

const nowIso = (): string => new Date().toISOString();

/** Runs a runbook as one incident and returns its record. */
export async function runIncident<F>(rb: Runbook<F>, startInput: IncidentInput): Promise<IncidentRecord> {
  const meta = rb.meta;
  const info = workflowInfo();
  let input = startInput;
  // A parent's approvals count only for the child it really started: the parent the input names must
  // be this workflow's parent in Temporal's own record.
  const namedParent = startInput.parent;
  const verifiedParent = namedParent && workflowInfo().parent?.workflowId === namedParent.incidentId ? namedParent : undefined;
  // Resolved by the worker below; incidents started before that carried it in their request.
  let policy = startInput.policy as IncidentPolicy;
  const rec: IncidentRecord = {
    incidentId: info.workflowId,
    runbook: meta.name,
    scenario: meta.scenario,
    title: meta.title,
    severity: input.severity ?? meta.severity,
    target: input.target,
    requestedBy: input.requestedBy,
    dryRun: input.dryRun ?? false,
    phase: 'DETECT',
    openedAt: nowIso(),
    findings: [],
    actions: [],
    pending: [],
    timeline: [],
    alerts: { count: 0, resolved: 0, flaps: 0 },
    escalations: [],
    children: [],
    ...(verifiedParent ? { parentIncidentId: verifiedParent.incidentId } : {}),
    ...(input.summary ? { summary: input.summary } : {}),
  };
  const approvals = new Map<string, string[]>();
  const rejections = new Map<string, ApprovalDecision>();
  const grants = new Map<string, LockGrant>();
  const stepApprovers = new Map<string, string[]>();
  let runningChild: string | undefined;
  /**
   * The step whose precondition is being checked just before it asks for approval. A decision on it
   * is taken then: the approver has seen the step in the plan, and nothing about it changes between
   * that check and the request. (Incidents recorded before this refused such early decisions, and
   * replay that way.)
   */
  let checkingStep: string | undefined;
  const decideWhileChecking = patched('decide-while-checking');
  // A decision counts only for the identity the codec server sealed it with, for this incident, once
  // and while fresh; the requester is the identity that sealed the start request. (Incidents recorded
  // before this took the name a decision carried, and replay so.)
  const sealedDecisions = patched('sealed-decisions');
  const startSeal = sealOf(startInput);
  if (sealedDecisions && startSeal.kind === 'sealed') rec.requestedBy = startSeal.seal.by;
  /** Seals already counted: a decision replayed within this incident counts once. */
  const countedSeals = new Set<string>();
  const notifications: Promise<void>[] = [];
  let closedBy: { by: string; note?: string } | undefined;
  let lastResolvedAt = 0;

  const note = (event: string): void => {
    rec.timeline.push({ at: nowIso(), phase: rec.phase, event });
    render();
  };
  const setPhase = (phase: Phase): void => {
    rec.phase = phase;
    upsertSearchAttributes([{ key: SA_PHASE, value: phase }]);
    note(`phase ${phase}`);
  };
  const send = (n: Omit<Notification, 'incidentId' | 'severity'>): void => {
    const deliver = () => notifyActs.notify({ ...(messageChannel ? { channel: messageChannel } : {}), ...n, incidentId: rec.incidentId, severity: rec.severity });
    // Once the incident has a channel, messages wait for it to be opened (incidents recorded before
    // incident channels scheduled each message at once, and replay so).
    notifications.push(
      (channelOpening ? channelOpening.then(deliver) : deliver()).then(
        () => undefined,
        (err: unknown) => note(`notification "${n.title}" failed: ${failureMessage(err)}`),
      ),
    );
  };

  function render(): void {
    setCurrentDetails(renderDetails(rec, { sealed: sealedDecisions }));
  }

  /**
   * Who made a decision, or why it counts for nobody. Sealed: the identity the codec server
   * authenticated, for this incident, fresh and not counted before. (Before sealed decisions: the
   * name the decision carried.)
   */
  function deciderOf(d: unknown, nameField: 'approver' | 'by'): { who: string; sealId?: string } | { refused: string } {
    if (!d || typeof d !== 'object' || Array.isArray(d)) return { refused: `expected one JSON object: ${decisionExample(nameField)}` };
    const fields = d as Record<string, unknown>;
    if (!sealedDecisions) {
      const name = fields[nameField];
      if (typeof name === 'string' && name.trim()) return { who: name };
      return { refused: nameField === 'by' ? '"by" is required' : 'stepId and approver are required strings' };
    }
    const s = sealOf(d);
    if (s.kind === 'unsealed') {
      return { refused: 'not sealed by the codec server: send it from the Temporal UI signed in to the codec server, or with bin/remediate and your credential' };
    }
    if (s.kind === 'refused') return { refused: `its seal does not verify (${s.why})` };
    if (typeof fields.incidentId !== 'string') return { refused: `sealed by ${s.seal.by} but names no incident: add "incidentId": "${info.workflowId}"` };
    if (fields.incidentId !== info.workflowId) return { refused: `sealed by ${s.seal.by} for incident ${fields.incidentId}, not this one` };
    if (countedSeals.has(s.seal.id)) return { refused: `sealed by ${s.seal.by} and already counted (seal ${s.seal.id}): a decision counts once` };
    const maxAgeMs = policy?.decisionMaxAgeMs ?? DECISION_MAX_AGE_MS;
    if (!sealIsFresh(s.seal, Date.now(), maxAgeMs)) {
      return { refused: `sealed by ${s.seal.by} at ${s.seal.at}: older than ${Math.round(maxAgeMs / 60_000)} min (or ahead of this incident's clock); send it again` };
    }
    return { who: s.seal.by, sealId: s.seal.id };
  }

  function decisionExample(nameField: 'approver' | 'by'): string {
    if (nameField === 'by') return sealedDecisions ? `{"incidentId": "${info.workflowId}", "note": "..."}` : '{"by": "...", "note": "..."}';
    return sealedDecisions ? `{"incidentId": "${info.workflowId}", "stepId": "..."}` : '{"stepId": "...", "approver": "..."}';
  }

  /** Why an approval or rejection by `who` is refused, or undefined if it is acceptable. */
  function refusal(d: ApprovalDecision, decision: 'approve' | 'reject', who: string): string | undefined {
    if (typeof d.stepId !== 'string') return sealedDecisions ? 'stepId is required' : 'stepId and approver are required strings';
    const pending = rec.pending.find((p) => p.stepId === d.stepId);
    const checking = decideWhileChecking && checkingStep === d.stepId;
    if (!pending && !checking) {
      const waiting = rec.pending.map((p) => p.stepId).join(', ') || 'none';
      const inChild = sealedDecisions && runningChild ? `; a step of the running child waits there: send the decision to ${runningChild}` : '';
      return `step "${d.stepId}" is not waiting for approval (waiting: ${waiting})${inChild}`;
    }
    const isRequester = who === rec.requestedBy;
    if (decision === 'approve' && isRequester) {
      return `${who} opened this incident and cannot approve its steps`;
    }
    if (!policy.approvers.includes(who) && !(decision === 'reject' && isRequester)) {
      return `${who} is not an allowed approver (allowed: ${policy.approvers.join(', ')})`;
    }
    if (decision === 'approve' && (approvals.get(d.stepId) ?? []).includes(who)) {
      return `${who} already approved "${d.stepId}"; a second approval must come from someone else`;
    }
    return undefined;
  }

  /** The decider, or the reason the decision is refused. */
  function judge(d: ApprovalDecision, decision: 'approve' | 'reject'): { who: string; sealId?: string } | { refused: string; claimed?: string } {
    const decider = deciderOf(d, 'approver');
    if ('refused' in decider) return { ...decider, ...(typeof d?.approver === 'string' ? { claimed: d.approver } : {}) };
    const why = refusal(d, decision, decider.who);
    return why ? { refused: why, claimed: decider.who } : decider;
  }

  function refusedNote(what: string, d: ApprovalDecision, r: { refused: string; claimed?: string }): void {
    const from = r.claimed === undefined ? '' : sealedDecisions && sealOf(d).kind !== 'sealed' ? ` (claiming to be ${r.claimed})` : ` from ${r.claimed}`;
    note(`refused ${what} of ${String(d?.stepId)}${from}: ${r.refused}`);
  }

  /** A decision for a step this incident is not waiting on goes to its running child, if any. */
  function forwardToChild(d: ApprovalDecision, decision: 'approve' | 'reject'): boolean {
    const childId = runningChild;
    if (!childId || !d || typeof d !== 'object' || rec.pending.some((p) => p.stepId === d.stepId)) return false;
    note(`forwarded ${decision} of ${String(d.stepId)} from ${String(d.approver)} to child ${childId}`);
    void getExternalWorkflowHandle(childId)
      .signal(decision === 'approve' ? approveSignal : rejectSignal, d)
      .catch((err: unknown) => note(`could not forward ${decision} to ${childId}: ${(err as Error).message}`));
    return true;
  }

  function applyDecision(d: ApprovalDecision, decision: 'approve' | 'reject', by: { who: string; sealId?: string }): void {
    if (by.sealId) countedSeals.add(by.sealId);
    const comment = d.comment ? ` (${d.comment})` : '';
    const sealed = by.sealId ? ' (sealed)' : '';
    if (decision === 'reject') {
      rejections.set(d.stepId, { ...d, approver: by.who });
      note(`${by.who}${sealed} rejected ${d.stepId}${comment}`);
      return;
    }
    const list = approvals.get(d.stepId) ?? [];
    list.push(by.who);
    approvals.set(d.stepId, list);
    const pending = rec.pending.find((p) => p.stepId === d.stepId);
    if (pending) pending.approvals = [...list];
    note(`${by.who}${sealed} approved ${d.stepId}${comment}`);
  }

  // Handlers are registered before the first await, so nothing sent early is lost.
  setHandler(statusQuery, () => rec, { description: HANDLER_DESCRIPTIONS.status });
  setHandler(
    approveSignal,
    (d) => {
      const r = judge(d, 'approve');
      // A forwarded decision reaches the child unsealed: with sealed decisions the sender goes to the child.
      if ('refused' in r && !sealedDecisions && forwardToChild(d, 'approve')) return;
      if ('refused' in r) refusedNote('approval', d, r);
      else applyDecision(d, 'approve', r);
    },
    { description: HANDLER_DESCRIPTIONS.approve },
  );
  setHandler(
    rejectSignal,
    (d) => {
      const r = judge(d, 'reject');
      if ('refused' in r && !sealedDecisions && forwardToChild(d, 'reject')) return;
      if ('refused' in r) refusedNote('rejection', d, r);
      else applyDecision(d, 'reject', r);
    },
    { description: HANDLER_DESCRIPTIONS.reject },
  );
  setHandler(
    decideUpdate,
    (r: DecisionRequest): DecisionResult => {
      const by = judge(r, r.decision);
      // The validator refused anything that does not count; nothing reaches here without a decider.
      if ('refused' in by) throw new Error(by.refused);
      applyDecision(r, r.decision, by);
      const list = approvals.get(r.stepId) ?? [];
      const pending = rec.pending.find((p) => p.stepId === r.stepId);
      const state: StepState = r.decision === 'reject' ? 'rejected' : pending && list.length >= pending.needed ? 'approved' : 'pending';
      return { stepId: r.stepId, state, approvals: list };
    },
    {
      description: HANDLER_DESCRIPTIONS.decide,
      validator: (r: DecisionRequest) => {
        if (r?.decision !== 'approve' && r?.decision !== 'reject') throw new Error('decision must be "approve" or "reject"');
        const by = judge(r, r.decision);
        if ('refused' in by) throw new Error(by.refused);
      },
    },
  );
  setHandler(
    alertSignal,
    (a) => {
      const prev = rec.alerts.lastStatus;
      const repeats = typeof a.repeats === 'number' && a.repeats > 1 ? Math.floor(a.repeats) : 1;
      rec.alerts.count += repeats;
      if (a.status === 'resolved') {
        rec.alerts.resolved += repeats;
        lastResolvedAt = Date.now();
      }
      if (prev && prev !== a.status) rec.alerts.flaps += 1;
      rec.alerts.lastStatus = a.status;
      if (a.annotations) rec.alerts.lastAnnotations = a.annotations;
      note(`alert ${a.name} ${a.status} from ${a.source} (#${rec.alerts.count}${repeats > 1 ? `, ${repeats} repeats in one signal` : ''})`);
    },
    { description: HANDLER_DESCRIPTIONS.alert },
  );
  // A close counts only from an allowed approver, and only once the incident waits for people: an
  // early close is refused, never kept to end the incident later unreviewed. (Incidents recorded
  // before this kept any close, and replay so.)
  const closeRules = patched('close-rules');
  setHandler(
    closeSignal,
    (c) => {
      const decider = deciderOf(c, 'by');
      if ('refused' in decider) {
        const claimed = c && typeof c.by === 'string' ? ` (claiming to be ${c.by})` : '';
        note(`refused close${sealedDecisions ? claimed : ''}: ${decider.refused}`);
        return;
      }
      const by = decider.who;
      if (closeRules && !policy?.approvers.includes(by)) {
        note(`refused close from ${by}: not an allowed approver`);
        return;
      }
      if (closeRules && rec.phase !== 'ESCALATED') {
        note(`refused close from ${by}: the incident is in ${rec.phase}, not escalated; a close is for an incident that waits for people`);
        return;
      }
      if (decider.sealId) countedSeals.add(decider.sealId);
      closedBy = { by, ...(c.note ? { note: c.note } : {}) };
      note(`closed by ${by}${decider.sealId ? ' (sealed)' : ''}${c.note ? `: ${c.note}` : ''}`);
    },
    { description: HANDLER_DESCRIPTIONS.close },
  );
  setHandler(lockGrantedSignal, (g) => {
    grants.set(g.requestId, g);
  });

  upsertSearchAttributes([
    { key: SA_SCENARIO, value: meta.scenario },
    { key: SA_SEVERITY, value: rec.severity },
    { key: SA_TARGET, value: input.target },
    { key: SA_RUNBOOK, value: meta.name },
    { key: SA_PHASE, value: 'DETECT' },
  ]);
  // Status-page updates and seed 001's messages (a child reports through its parent instead).
  const comms = !verifiedParent && patched('status-comms');
  // Seed 002's first five minutes and post-incident steps: the PagerDuty acknowledgement, the incident
  // channel and its announcement in #incidents, the post-mortem date. (Incidents recorded before
  // these replay without them.)
  const firstMinutes = comms && patched('first-five-minutes');
  let announced = false;
  /** Opening the incident's channel; messages sent meanwhile wait for it. */
  let channelOpening: Promise<void> | undefined;
  /** Where messages go once the incident's channel is open (else each sink's own channel). */
  let messageChannel: string | undefined;
  let stopUpdates = false;
  let updatesLoop: Promise<void> | undefined;
  note(
    `opened by ${rec.requestedBy}${sealedDecisions && startSeal.kind === 'sealed' ? ' (sealed)' : ''}${input.alert ? ` on alert ${input.alert.name}` : ''}${rec.dryRun ? ' (dry-run)' : ''}` +
      `${verifiedParent ? ` as a child of ${verifiedParent.incidentId}` : ''}`,
  );
  if (namedParent && !verifiedParent) {
    note(`the parent named in the request (${namedParent.incidentId}) did not start this incident: its approvals do not count here`);
  }
  // The policy is the worker's own: resolved from its configuration for this target, runbook and
  // severity, and recorded in the history. A policy in the start request is ignored. (Incidents
  // started before this ran under the policy their request carried, and replay so.)
  if (patched('worker-policy')) {
    const { overrides, ...own } = await policyActs.incidentPolicy({ target: input.target, runbook: meta.name, severity: rec.severity });
    policy = own;
    input = { ...input, policy };
    note(
      `policy from the worker's configuration${overrides.length > 0 ? ` (overrides ${overrides.join(', ')})` : ''}: ` +
        `approvers ${policy.approvers.join(', ')}; tiers ${policy.tiers.map((t) => `${t.name} ${t.waitMs} ms`).join(', ')}; cooldown ${policy.cooldownMs} ms`,
    );
  }
  if (firstMinutes && !rec.dryRun) acknowledgePagerDuty();

  const ctx: RunbookContext = {
    input,
    target: input.target,
    incidentId: rec.incidentId,
    policy,
    finding(check, ok, detail) {
      rec.findings.push({ check, ok, detail });
      render();
    },
    unknown(check, why, opts) {
      rec.findings.push({ check, ok: false, detail: why, unknown: true, ...(opts?.aside ? { aside: true as const } : {}) });
      render();
    },
    note,
    notify(m) {
      send({ kind: m.kind ?? 'status', title: m.title, text: m.text, ...(m.contacts ? { contacts: m.contacts } : {}) });
      note(`notified${m.contacts ? ` ${m.contacts.join(', ')}` : ''}: ${m.title}`);
    },
    statusUpdate(stage, text) {
      postStatus(stage, text);
    },
    async child(runbook, opts) {
      const childId = `${rec.incidentId}.${runbook}.${rec.children.length + 1}`;
      rec.children.push(childId);
      const approvers = stepApprovers.get(opts.stepId) ?? [];
      const childInput: IncidentInput = {
        target: input.target,
        requestedBy: rec.requestedBy,
        severity: rec.severity,
        dryRun: rec.dryRun,
        policy,
        summary: opts.reason,
        parent: { incidentId: rec.incidentId, stepId: opts.stepId, approvers },
        ...(opts.params ? { params: opts.params } : {}),
      };
      note(`child incident ${childId} (${runbook}) started: ${opts.reason}`);
      runningChild = childId;
      let childRec: IncidentRecord;
      try {
        childRec = await executeChild(runbook, { workflowId: childId, args: [childInput] });
      } finally {
        runningChild = undefined;
      }
      // One incident record: the child's timeline joins this one, in time order.
      const tagged = childRec.timeline.map((t) => ({ at: t.at, phase: rec.phase, event: `[${runbook}] ${t.event}` }));
      rec.timeline = [...rec.timeline, ...tagged].sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
      note(`child incident ${childId} ended: ${childRec.outcome ?? 'unknown'}${childRec.diagnosis ? ` (${childRec.diagnosis})` : ''}`);
      return childRec;
    },
  };

  // ---------------- TRIAGE ----------------
  setPhase('TRIAGE');
  let facts: F;
  try {
    facts = await rb.diagnose(ctx);
  } catch (err) {
    return escalate(`diagnostics failed: ${failureMessage(err)}`);
  }
  const plan = rb.plan(facts, ctx);
  rec.diagnosis = plan.diagnosis;
  if (plan.report) rec.report = plan.report;
  if (plan.rootCause) rec.rootCause = plan.rootCause;
  if (plan.severity && plan.severity < rec.severity) {
    note(`severity raised from SEV-${rec.severity} to SEV-${plan.severity}`);
    rec.severity = plan.severity;
    upsertSearchAttributes([{ key: SA_SEVERITY, value: rec.severity }]);
  }
  note(`diagnosis: ${plan.diagnosis}`);
  for (const s of plan.steps) {
    rec.actions.push({ stepId: s.id, title: s.title, risk: s.risk, resource: s.resource, state: 'planned', approvals: [] });
  }
  render();

  if (plan.falseAlarm) {
    // A false alarm needs positive evidence of health: an unobserved signal is not one. Incidents
    // recorded before this rule recorded no unknown findings, and replay as they ran.
    const unobserved = rec.findings.filter((f) => f.unknown && !f.aside);
    if (unobserved.length > 0 && patched('evidence-before-conclusions')) {
      return escalate(`not a false alarm without evidence: ${unobserved.map((f) => `could not observe ${f.check}: ${f.detail}`).join('; ')}`);
    }
    return finish('false-alarm');
  }
  if (comms && !rec.dryRun) {
    // A real problem: tell people what is known, then keep them updated at the severity's cadence.
    announce();
    rec.comms = { updates: 0, initialResponse: initialResponse(rec, { cadenceMs: cadenceMs(), now: nowIso(), ...customer() }).text };
    if (firstMinutes && rec.severity === 4) {
      note('SEV-4: ticket only, no status page (seed 002)');
    } else {
      postStatus(rec.rootCause ? 'identified' : 'investigating');
      updatesLoop = scheduledUpdates();
    }
  }
  if (plan.escalate) return escalate(plan.escalate);

  // ---------------- MITIGATE ----------------
  setPhase('MITIGATE');
  for (const step of plan.steps) {
    const action = rec.actions.find((a) => a.stepId === step.id) as ActionRecord;
    if (rec.dryRun) {
      action.state = 'would-do';
      action.detail = `${step.describe}${step.risk === 'auto' ? '' : step.risk === 'two-person' ? ' (after two approvals)' : ' (after approval)'}`;
      note(`dry-run: would ${step.describe}`);
      continue;
    }
    let failure: string | undefined;
    try {
      failure = await runStep(step, action);
    } catch (err) {
      // A dependency that stays unreachable through the retries (a precondition check, the lock
      // request) fails the step, never the incident: it escalates with what failed.
      action.state = 'failed';
      action.detail = failureMessage(err);
      action.endedAt = nowIso();
      failure = `step ${step.id} failed: ${action.detail}`;
    }
    if (failure) return escalate(failure);
  }
  if (rec.dryRun) return finish('dry-run');
  // Incidents recorded before hand-offs existed went on to verification, and replay that way.
  if (plan.handOffAfterSteps && patched('hand-off-after-steps')) {
    setPhase('RESOLVE');
    return escalate(await plan.handOffAfterSteps());
  }

  // ---------------- RESOLVE ----------------
  setPhase('RESOLVE');
  const verdict = await pollUntil(() => rb.verify(ctx, facts), policy.verifyDeadlineMs);
  note(`verification ${verdict.ok ? 'passed' : verdict.unknown ? 'could not observe recovery' : 'failed'}: ${verdict.detail}`);
  if (!verdict.ok && verdict.unknown) {
    return escalate(`recovery not observed within ${policy.verifyDeadlineMs} ms: could not observe ${verdict.unknown}`);
  }
  if (!verdict.ok) return escalate(`verification did not pass within ${policy.verifyDeadlineMs} ms: ${verdict.detail}`);
  return finish('resolved');

  // ---------------- helpers (hoisted; they close over the incident's state) ----------------

  function cadenceMs(): number {
    const key = String(rec.severity) as keyof typeof DEFAULT_CADENCE_MS;
    return policy.updateCadenceMs?.[key] ?? DEFAULT_CADENCE_MS[key];
  }

  function customer(): { customer?: string } {
    const name = input.params?.customerName;
    return typeof name === 'string' ? { customer: name } : {};
  }

  /** One status-page post: rendered from the record, delivered in the background, counted. */
  /**
   * Seed 002, "First 5 Minutes": acknowledge the PagerDuty alert within 2 minutes. In the background:
   * triage does not wait for PagerDuty, and the incident does not close before the answer is in.
   */
  function acknowledgePagerDuty(): void {
    const id = input.alert?.source === 'pagerduty' ? input.alert.labels?.pagerduty_incident_id : undefined;
    if (!id) return;
    notifications.push(
      ackActs.acknowledgePagerDuty({ pagerdutyIncidentId: id }).then(
        (r) => note(r.detail),
        (err: unknown) => note(`PagerDuty incident ${id} not acknowledged within 2 minutes: ${failureMessage(err)}`),
      ),
    );
  }

  /**
   * Seed 002, "First 5 Minutes": open the incident channel `#inc-YYYY-MM-DD-<short-name>` and announce
   * "INC opened — SEV-X — [brief description]" in #incidents. Once per incident, when it turns out to
   * need people (not for a false alarm); later messages go to the incident's channel.
   */
  function announce(): void {
    if (!firstMinutes || announced) return;
    announced = true;
    if (SEVERITY_MATRIX[rec.severity].ticketOnly) {
      note('SEV-4: ticket only (seed 002): no incident channel, no announcement');
      return;
    }
    const channel = incidentChannel(rec);
    rec.channel = channel;
    channelOpening = notifyActs.openIncidentChannel({ name: channel.slice(1) }).then(
      (r) => {
        if (r.opened) messageChannel = channel;
        note(r.detail);
      },
      (err: unknown) => note(`incident channel ${channel} not opened: ${failureMessage(err)}`),
    );
    notifications.push(channelOpening);
    send({
      kind: 'announcement',
      channel: policy.announceChannel ?? DEFAULT_ANNOUNCE_CHANNEL,
      title: `INC opened — SEV-${rec.severity} — ${rec.scenario} ${rec.title} on ${rec.target}`,
      text: `${rec.diagnosis ?? rec.summary ?? ''} Incident channel: ${rec.channel}. Response: ${SEVERITY_MATRIX[rec.severity].response}.`,
      contacts: severityContacts(),
    });
    note(`announced in ${policy.announceChannel ?? DEFAULT_ANNOUNCE_CHANNEL}; incident channel ${rec.channel}`);
  }

  /** Who the severity engages (seed 002's matrix, or the configured handles). */
  function severityContacts(): string[] {
    return policy.severityContacts?.[String(rec.severity) as '1'] ?? SEVERITY_MATRIX[rec.severity].contacts;
  }

  function postStatus(stage: StatusStage, text?: string): void {
    const m = statusPage(stage, rec, { cadenceMs: cadenceMs(), now: nowIso() });
    send({ kind: 'status', stage, title: m.title, text: text ?? m.text });
    rec.comms = { ...(rec.comms ?? { updates: 0 }), lastStage: stage };
    rec.comms.updates += 1;
    note(`status update posted: ${m.title}`);
  }

  /** Durable timers: an update at the severity's cadence until the incident finishes. */
  async function scheduledUpdates(): Promise<void> {
    for (;;) {
      const every = cadenceMs();
      if (every <= 0 || (await condition(() => stopUpdates, every))) return;
      postStatus(currentStage(rec));
    }
  }

  /** Runs one step through approval, lock, cooldown and precondition. Returns a reason to escalate, if any. */
  async function runStep(step: Step, action: ActionRecord): Promise<string | undefined> {
    if (step.risk !== 'auto') {
      // Nobody is asked to approve a step whose problem is already gone (e.g. fixed by the step before).
      if (step.precondition) {
        checkingStep = step.id;
        try {
          if (!(await checkPrecondition(step, action))) return undefined;
        } finally {
          checkingStep = undefined;
        }
      }
      const decision = await awaitApproval(step, action);
      if (decision === 'rejected') {
        action.state = 'rejected';
        action.rejectedBy = rejections.get(step.id)?.approver;
        return `step ${step.id} rejected by ${action.rejectedBy ?? 'an approver'}`;
      }
      if (decision === 'expired') {
        action.state = 'expired';
        send({ kind: 'expired', title: `Approval for ${step.id} expired`, text: `No decision on ${step.title}` });
        return `approval for step ${step.id} expired after all escalation tiers`;
      }
      if (decision === 'cleared') {
        action.state = 'skipped';
        action.detail = 'condition cleared while waiting for approval';
        note(`${step.id} skipped: the condition cleared while waiting for approval`);
        return undefined;
      }
      action.state = 'approved';
      stepApprovers.set(step.id, [...(approvals.get(step.id) ?? [])]);
    }

    const requestId = `${info.workflowId}/${info.runId}/${step.id}`;
    const guardId = guardWorkflowId(input.target, step.resource);
    await acts.requestTargetLock({
      target: input.target,
      resource: step.resource,
      requester: info.workflowId,
      requestId,
      actionKey: step.id,
      cooldownMs: policy.cooldownMs,
    });
    if (!(await condition(() => grants.has(requestId), policy.lockWaitMs))) {
      await release(guardId, requestId, step.id, false);
      action.state = 'failed';
      action.detail = `lock on ${input.target}/${step.resource} not granted within ${policy.lockWaitMs} ms`;
      return action.detail;
    }
    let performed = false;
    try {
      // First: is the problem still there? (Another incident may have fixed it while we waited.)
      if (step.precondition && !(await checkPrecondition(step, action))) return undefined;
      // Then: if it is, and this very action had an effect here recently, repeating it would loop.
      const grant = grants.get(requestId) as LockGrant;
      if (grant.lastPerformedAt && Date.now() - Date.parse(grant.lastPerformedAt) < policy.cooldownMs) {
        action.state = 'cooldown';
        action.detail = `${step.id} already ran on ${input.target}/${step.resource} at ${grant.lastPerformedAt}; cooldown ${policy.cooldownMs} ms`;
        note(action.detail);
        return `${step.id} is in cooldown: the target stays broken after a recent mitigation`;
      }
      action.state = 'running';
      action.startedAt = nowIso();
      render();
      try {
        action.detail = await step.run(action.startedAt);
        performed = true;
      } catch (err) {
        action.state = 'failed';
        action.detail = failureMessage(err);
        action.endedAt = nowIso();
        note(`${step.id} failed: ${action.detail}`);
        return `step ${step.id} failed: ${action.detail}`;
      }
      note(`${step.id}: ${action.detail}`);
      if (step.gate) {
        const g = await pollUntil(step.gate, step.gateDeadlineMs ?? policy.verifyDeadlineMs);
        if (!g.ok) {
          action.state = 'failed';
          action.detail = `${action.detail}; health gate failed: ${g.detail}`;
          action.endedAt = nowIso();
          return `health gate after ${step.id} failed: ${g.detail}`;
        }
        note(`${step.id} health gate passed: ${g.detail}`);
      }
      action.state = 'done';
      action.endedAt = nowIso();
      render();
      return undefined;
    } finally {
      await release(guardId, requestId, step.id, performed);
    }
  }

  /** True if the step's problem is still there; otherwise marks the step skipped. */
  async function checkPrecondition(step: Step, action: ActionRecord): Promise<boolean> {
    const pre = await (step.precondition as () => Promise<Check>)();
    if (pre.ok) return true;
    action.state = 'skipped';
    action.detail = `precondition no longer holds: ${pre.detail}`;
    note(`${step.id} skipped: ${pre.detail}`);
    return false;
  }

  async function release(guardId: string, requestId: string, actionKey: string, performed: boolean): Promise<void> {
    // Must reach the guard even if this incident is being cancelled.
    await CancellationScope.nonCancellable(async () => {
      try {
        await getExternalWorkflowHandle(guardId).signal(releaseLockSignal, { requestId, actionKey, performed });
      } catch (err) {
        note(`could not release lock ${guardId}: ${(err as Error).message}`);
      }
    });
  }

  /** Waits for approval, escalating through the tiers; a resolved alert triggers a precondition re-check. */
  async function awaitApproval(step: Step, action: ActionRecord): Promise<'approved' | 'rejected' | 'expired' | 'cleared'> {
    const needed = step.risk === 'two-person' ? 2 : 1;
    const parent = verifiedParent;
    if (parent && needed === 1 && parent.approvers.length > 0) {
      approvals.set(step.id, [...parent.approvers]);
      action.approvals = [...parent.approvers];
      note(`${step.id} approved by ${parent.approvers.join(', ')} through step ${parent.stepId} of ${parent.incidentId}`);
      return 'approved';
    }
    const tiers = policy.tiers;
    const p: PendingApproval = {
      stepId: step.id,
      title: step.title,
      risk: step.risk,
      needed,
      approvals: [],
      tier: tiers[0]?.name ?? 'tier-1',
      since: nowIso(),
    };
    rec.pending.push(p);
    action.state = 'pending';
    const decided = (): boolean => rejections.has(step.id) || (approvals.get(step.id) ?? []).length >= needed;
    let result: 'approved' | 'rejected' | 'expired' | 'cleared' = 'expired';
    try {
      for (let i = 0; i < tiers.length; i++) {
        const tier = tiers[i] as (typeof tiers)[number];
        p.tier = tier.name;
        note(`${step.id} waits for ${needed === 2 ? 'two approvals' : 'approval'} (${tier.name})`);
        send({
          kind: i === 0 ? 'approval-needed' : 'escalation',
          tier: tier.name,
          contacts: tier.contacts,
          title: `${rec.scenario} ${rec.title} on ${rec.target}: approve ${step.id}?`,
          text: sealedDecisions
            ? `${step.describe}. Signal "approve" with {"incidentId":"${rec.incidentId}","stepId":"${step.id}"}, signed in to the codec server (or: bin/remediate approve ${rec.incidentId} ${step.id})`
            : `${step.describe}. Signal "approve" with {"stepId":"${step.id}","approver":"<name>"}`,
        });
        const tierEnds = Date.now() + tier.waitMs;
        for (;;) {
          const seenResolved = lastResolvedAt;
          const remaining = tierEnds - Date.now();
          if (remaining <= 0) break;
          await condition(() => decided() || lastResolvedAt !== seenResolved, remaining);
          if (decided()) break;
          if (lastResolvedAt !== seenResolved && step.precondition) {
            const pre = await step.precondition();
            note(`alert resolved while ${step.id} waited; re-check: ${pre.detail}`);
            if (!pre.ok) {
              result = 'cleared';
              return result;
            }
          }
        }
        if (decided()) break;
        if (i < tiers.length - 1) rec.escalations.push(`${step.id}: no decision in ${tier.name}, escalated`);
      }
      if (rejections.has(step.id)) result = 'rejected';
      else if ((approvals.get(step.id) ?? []).length >= needed) result = 'approved';
      action.approvals = [...(approvals.get(step.id) ?? [])];
      return result;
    } finally {
      rec.pending = rec.pending.filter((x) => x !== p);
      render();
    }
  }

  async function pollUntil(check: () => Promise<Check>, deadlineMs: number): Promise<Check> {
    const deadline = Date.now() + deadlineMs;
    // Not shorter: the server fires any timer under about a second at about a second
    // (history.timerProcessorMaxTimeShift, 1 s by default).
    let delay = 1000;
    for (;;) {
      let c: Check;
      try {
        c = await check();
      } catch (err) {
        c = { ok: false, detail: `check failed: ${failureMessage(err)}` };
      }
      if (c.ok || Date.now() + delay > deadline) return c;
      await sleep(delay);
      delay = Math.min(delay * 2, 10_000);
    }
  }

  /** The incident stays open and escalated until a human closes it; it never closes by itself. */
  async function escalate(reason: string): Promise<IncidentRecord> {
    if (!rec.dryRun) announce();
    rec.escalations.push(reason);
    setPhase('ESCALATED');
    note(`escalated: ${reason}`);
    const tier = policy.tiers[Math.min(1, policy.tiers.length - 1)];
    // With seed 002's first five minutes, an escalation also engages whom the severity names.
    const contacts = [...new Set([...(tier?.contacts ?? []), ...(announced ? severityContacts() : [])])];
    const notice = {
      kind: 'escalation' as const,
      ...(tier ? { tier: tier.name } : {}),
      ...(contacts.length > 0 ? { contacts } : {}),
      title: `${rec.scenario} ${rec.title} on ${rec.target} needs a human`,
      text: `${reason}. Close with signal "close" {"by":"<name>","note":"..."} once handled.`,
    };
    send(notice);
    // A child reports back; its parent escalates and holds the incident open. (One whose request
    // names a parent that did not start it is no child: it holds like any incident.)
    if (verifiedParent) return finish('escalated');
    while (!(await condition(() => closedBy !== undefined, policy.escalatedHoldMs))) {
      send({ ...notice, title: `Reminder: ${notice.title}` });
      note('still escalated: reminder sent');
    }
    return finish('escalated');
  }

  /**
   * After a resolution or a false alarm, the incident stays open for `policy.settleMs` so a flapping
   * alert joins it instead of opening incident after incident. A re-fire is re-checked once: if the
   * problem is back, the incident escalates rather than repeating its remedy in a loop.
   */
  async function settle(outcome: IncidentOutcome): Promise<string | undefined> {
    // Only alert-driven incidents flap; one opened by a person closes when it is done.
    const settleMs = input.alert && input.alert.source !== 'client' ? (policy.settleMs ?? 0) : 0;
    if (settleMs <= 0 || (outcome !== 'resolved' && outcome !== 'false-alarm')) return undefined;
    if (rec.phase !== 'RESOLVE') setPhase('RESOLVE');
    note(`${outcome}; settling for ${settleMs} ms: repeats of the alert join this incident`);
    const until = Date.now() + settleMs;
    for (;;) {
      const seen = rec.alerts.count;
      const remaining = until - Date.now();
      if (remaining <= 0 || !(await condition(() => rec.alerts.count !== seen, remaining))) return undefined;
      if (rec.alerts.lastStatus !== 'firing') continue;
      let c: Check;
      try {
        c = await rb.verify(ctx, facts);
      } catch (err) {
        c = { ok: false, detail: `check failed: ${failureMessage(err)}` };
      }
      note(`alert re-fired after the incident was ${outcome}; re-check: ${c.detail}`);
      if (!c.ok) return `the alert re-fired after the incident was ${outcome} and the problem is back: ${c.detail}`;
    }
  }

  async function finish(outcome: IncidentOutcome): Promise<IncidentRecord> {
    const back = await settle(outcome);
    if (back) return escalate(back);
    rec.outcome = outcome;
    setPhase('POST-MORTEM');
    rec.closedAt = nowIso();
    stopUpdates = true;
    if (updatesLoop) await updatesLoop;
    if (rec.comms && (outcome === 'resolved' || outcome === 'escalated')) {
      // Whoever closed an escalated incident handled it: the public story ends either way.
      postStatus('resolved');
      rec.comms.resolution = resolutionSummary(rec, customer()).text;
    }
    if (outcome === 'resolved' || outcome === 'false-alarm') {
      send({ kind: 'resolved', title: `${rec.scenario} ${rec.title} on ${rec.target}: ${outcome}`, text: rec.diagnosis ?? '' });
    }
    if (announced) {
      // Seed 002, "Within 1 Hour of Resolution": a summary in #incidents, the post-mortem within 48 hours.
      rec.postmortemDueBy = new Date(Date.parse(rec.closedAt) + POSTMORTEM_WITHIN_MS).toISOString();
      send({
        kind: 'announcement',
        channel: policy.announceChannel ?? DEFAULT_ANNOUNCE_CHANNEL,
        title: `INC closed — SEV-${rec.severity} — ${rec.scenario} ${rec.title} on ${rec.target}: ${outcome}`,
        text: `${rec.diagnosis ?? ''}${rec.rootCause ? ` Root cause: ${rec.rootCause}.` : ''} Post-mortem due by ${rec.postmortemDueBy} (within 48 hours).`,
      });
      note(`post-mortem due by ${rec.postmortemDueBy}`);
    }
    await Promise.allSettled(notifications);
    setPhase('CLOSED');
    note(`closed: ${outcome}`);
    return rec;
  }
}

const DEFAULT_ANNOUNCE_CHANNEL = '#incidents';
const POSTMORTEM_WITHIN_MS = 48 * 3600_000;

/**
 * `#inc-YYYY-MM-DD-<short-name>` (seed 002), the short name being the target and the runbook:
 * `#inc-2026-12-02-alfred-cache-failure`. Slack's rules: lowercase, digits, `-`, at most 80 characters.
 */
export function incidentChannel(rec: Pick<IncidentRecord, 'openedAt' | 'target' | 'runbook'>): string {
  const kebab = rec.runbook.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
  const name = `inc-${rec.openedAt.slice(0, 10)}-${rec.target}-${kebab}`.replace(/[^a-z0-9-]/g, '-').slice(0, 80);
  return `#${name}`;
}

function failureMessage(err: unknown): string {
  if (err instanceof ActivityFailure && err.cause) return err.cause.message;
  if (err instanceof ApplicationFailure) return err.message;
  return err instanceof Error ? err.message : String(err);
}

// Plain words: the UI's font may have no emoji.
const ICON: Record<string, string> = { true: 'OK', false: 'FAIL' };

/** Markdown for the Temporal UI's "current details". */
export function renderDetails(rec: IncidentRecord, opts: { sealed?: boolean } = {}): string {
  const lines: string[] = [];
  lines.push(`## ${rec.scenario} · ${rec.title}`);
  lines.push(
    `**Target** \`${rec.target}\` · **SEV-${rec.severity}** · **Phase** ${rec.phase}${rec.outcome ? ` · **Outcome** ${rec.outcome}` : ''}` +
      ` · opened by ${rec.requestedBy}${rec.dryRun ? ' · **DRY-RUN**' : ''}`,
  );
  if (rec.diagnosis) lines.push('', `**Diagnosis:** ${rec.diagnosis}`);
  if (rec.pending.length > 0) {
    lines.push('', '### Waiting for approval');
    for (const p of rec.pending) {
      lines.push(
        `- **${p.stepId}** — ${p.title} (${p.risk}, ${p.approvals.length}/${p.needed} approvals, ${p.tier}, since ${p.since})`,
      );
      if (opts.sealed) {
        lines.push('', 'Signed in to the codec server, send signal **approve** with:', '```json', JSON.stringify({ incidentId: rec.incidentId, stepId: p.stepId, comment: '' }), '```');
        lines.push('or signal **reject** with the same shape. It counts for whoever is signed in.');
      } else {
        lines.push('', 'Send signal **approve** with:', '```json', JSON.stringify({ stepId: p.stepId, approver: '<your name>', comment: '' }), '```');
        lines.push('or signal **reject** with the same shape.');
      }
    }
  }
  if (rec.children.length > 0) {
    const where = opts.sealed ? "send approvals for a child's steps to the child" : "approvals for a child's steps may be sent here; they are forwarded";
    lines.push('', `**Child incidents:** ${rec.children.map((c) => `\`${c}\``).join(', ')} (${where})`);
  }
  if (rec.phase === 'ESCALATED') {
    lines.push('', '### Escalated — needs a human', ...rec.escalations.map((e) => `- ${e}`));
    lines.push('', 'When handled, send signal **close** with:', '```json', JSON.stringify({ by: '<your name>', note: '' }), '```');
  }
  if (rec.findings.length > 0) {
    lines.push('', '### Findings');
    for (const f of rec.findings) {
      lines.push(`- ${f.unknown ? 'UNKNOWN' : ICON[String(f.ok)]} **${f.check}**: ${f.unknown ? `could not observe${f.aside ? ' (aside: no conclusion rests on it)' : ''}: ${f.detail}` : f.detail}`);
    }
  }
  if (rec.actions.length > 0) {
    lines.push('', '### Actions', '| step | risk | state | detail |', '|---|---|---|---|');
    for (const a of rec.actions) {
      lines.push(`| ${a.stepId} | ${a.risk} | ${a.state} | ${(a.detail ?? '').replace(/\|/g, '/')} |`);
    }
  }
  if (rec.alerts.count > 0) {
    lines.push('', `Alerts received: ${rec.alerts.count} (resolved ${rec.alerts.resolved}, flaps ${rec.alerts.flaps})`);
  }
  lines.push('', '### Timeline (latest)');
  for (const t of rec.timeline.slice(-8)) lines.push(`- ${t.at} [${t.phase}] ${t.event}`);
  return lines.join('\n');
}
