/**
 * Who may decide, and the wait for a decision: approvals, rejections and closes, each counted for
 * whoever sealed it (or, in incidents recorded before sealed decisions, the name it carried); the
 * tiered wait for a step's approval, escalating from tier to tier until it expires.
 *
 * One per incident, built from what it needs (the record, the policy, the timeline, the clock), so the
 * rules can be tried without a runbook. Only forwarding to a child and the wait itself call Temporal.
 */
import { condition, getExternalWorkflowHandle } from '@temporalio/workflow';
import type { Notification } from '../../activities/engine/notify';
import { sealIsFresh, sealOf } from '../../lib/codec/sealed';
import {
  approveSignal,
  rejectSignal,
  type ActionRecord,
  type ApprovalDecision,
  type CloseRequest,
  type DecisionRequest,
  type DecisionResult,
  type IncidentPolicy,
  type IncidentRecord,
  type PendingApproval,
  type StepState,
} from '../contracts';
import type { Step } from './runbook';

/** How old a sealed decision may be when it arrives, unless the policy says otherwise. */
export const DECISION_MAX_AGE_MS = 15 * 60_000;

/** Who a decision counts for (and the seal it came with), or why it counts for nobody. */
export type Decider = { who: string; sealId?: string };
export type Refusal = { refused: string; claimed?: string };
export type ApprovalOutcome = 'approved' | 'rejected' | 'expired' | 'cleared' | 'aborted';

export interface ApprovalsDeps {
  /** The incident's record: its id, requester, phase, pending approvals and escalations. */
  record: IncidentRecord;
  /** The policy the incident runs under now (resolved by the worker once the incident has begun). */
  policy: () => IncidentPolicy;
  /** Adds a line to the timeline. */
  note: (event: string) => void;
  /** Redraws the UI's details. */
  render: () => void;
  /** Tells people, in the background. */
  send: (n: Omit<Notification, 'incidentId' | 'severity'>) => void;
  /** The workflow clock, ms. */
  now: () => number;
  /** Decisions count for the identity that sealed them (patch `sealed-decisions`). */
  sealed: boolean;
  /** A decision may arrive while its step's precondition is checked, before it is asked (patch `decide-while-checking`). */
  decideWhileChecking: boolean;
  /** The incident that verifiably started this one: its step's approvers approve this one's single-approver steps. */
  parent?: { incidentId: string; stepId: string; approvers: string[] };
  /** The child incident running now, if any. */
  runningChild: () => string | undefined;
  /** When the last "resolved" alert arrived (0: none yet). */
  lastResolvedAt: () => number;
}

/** What a sealed approve, reject or decide may carry (the seal fields are the worker codec's). */
const DECISION_FIELDS = ['incidentId', 'stepId', 'approver', 'comment', 'decision', '__sealedBy', '__sealRefused'];
/** What a sealed close may carry. */
const CLOSE_FIELDS = ['incidentId', 'by', 'note', 'abort', 'reason', '__sealedBy', '__sealRefused'];
/** The longest reason an abort may carry. */
const ABORT_REASON_MAX = 500;

export type Approvals = ReturnType<typeof createApprovals>;

export function createApprovals(deps: ApprovalsDeps) {
  const { record: rec, note, render, send, now, parent } = deps;
  const sealedDecisions = deps.sealed;
  const nowIso = (): string => new Date(now()).toISOString();
  const approvals = new Map<string, string[]>();
  const rejections = new Map<string, ApprovalDecision>();
  /** Who approved each step that went ahead: a child started by that step counts them for its own. */
  const stepApprovers = new Map<string, string[]>();
  /**
   * The step whose precondition is being checked just before it asks for approval. A decision on it
   * is taken then: the approver has seen the step in the plan, and nothing about it changes between
   * that check and the request. (Incidents recorded before this refused such early decisions, and
   * replay that way.)
   */
  let checkingStep: string | undefined;
  /** Seals already counted: a decision replayed within this incident counts once. */
  const countedSeals = new Set<string>();
  let closedBy: { by: string; note?: string } | undefined;
  let abortedBy: { by: string; reason: string; at: string } | undefined;

  /**
   * Who made a decision, or why it counts for nobody. Sealed: the identity the codec server
   * authenticated, for this incident, fresh and not counted before. (Before sealed decisions: the
   * name the decision carried.)
   */
  function deciderOf(d: unknown, nameField: 'approver' | 'by'): Decider | { refused: string } {
    if (!d || typeof d !== 'object' || Array.isArray(d)) return { refused: `expected one JSON object: ${decisionExample(nameField)}` };
    const fields = d as Record<string, unknown>;
    if (!sealedDecisions) {
      const name = fields[nameField];
      if (typeof name === 'string' && name.trim()) return { who: name };
      return { refused: nameField === 'by' ? '"by" is required' : 'stepId and approver are required strings' };
    }
    const allowed = nameField === 'by' ? CLOSE_FIELDS : DECISION_FIELDS;
    const unknown = Object.keys(fields).filter((k) => !allowed.includes(k));
    if (unknown.length > 0) {
      return { refused: `unknown field${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => JSON.stringify(k)).join(', ')}: send ${decisionExample(nameField)}` };
    }
    const s = sealOf(d);
    if (s.kind === 'unsealed') {
      return { refused: 'not sealed by the codec server: send it from the Temporal UI signed in to the codec server, or with bin/remediate and your credential' };
    }
    if (s.kind === 'refused') return { refused: `its seal does not verify (${s.why})` };
    if (typeof fields.incidentId !== 'string') return { refused: `sealed by ${s.seal.by} but names no incident: add "incidentId": "${rec.incidentId}"` };
    if (fields.incidentId !== rec.incidentId) return { refused: `sealed by ${s.seal.by} for incident ${fields.incidentId}, not this one` };
    if (countedSeals.has(s.seal.id)) return { refused: `sealed by ${s.seal.by} and already counted (seal ${s.seal.id}): a decision counts once` };
    const maxAgeMs = deps.policy()?.decisionMaxAgeMs ?? DECISION_MAX_AGE_MS;
    if (!sealIsFresh(s.seal, now(), maxAgeMs)) {
      return { refused: `sealed by ${s.seal.by} at ${s.seal.at}: older than ${Math.round(maxAgeMs / 60_000)} min (or ahead of this incident's clock); send it again` };
    }
    return { who: s.seal.by, sealId: s.seal.id };
  }

  function decisionExample(nameField: 'approver' | 'by'): string {
    if (nameField === 'by') return sealedDecisions ? `{"incidentId": "${rec.incidentId}", "note": "..."}` : '{"by": "...", "note": "..."}';
    return sealedDecisions ? `{"incidentId": "${rec.incidentId}", "stepId": "..."}` : '{"stepId": "...", "approver": "..."}';
  }

  /** Why an approval or rejection by `who` is refused, or undefined if it is acceptable. */
  function refusal(d: ApprovalDecision, decision: 'approve' | 'reject', who: string): string | undefined {
    const policy = deps.policy();
    if (typeof d.stepId !== 'string') return sealedDecisions ? 'stepId is required' : 'stepId and approver are required strings';
    const pending = rec.pending.find((p) => p.stepId === d.stepId);
    const checking = deps.decideWhileChecking && checkingStep === d.stepId;
    if (!pending && !checking) {
      const waiting = rec.pending.map((p) => p.stepId).join(', ') || 'none';
      const runningChild = deps.runningChild();
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
  function judge(d: ApprovalDecision, decision: 'approve' | 'reject'): Decider | Refusal {
    const decider = deciderOf(d, 'approver');
    if ('refused' in decider) return { ...decider, ...(typeof d?.approver === 'string' ? { claimed: d.approver } : {}) };
    const why = refusal(d, decision, decider.who);
    return why ? { refused: why, claimed: decider.who } : decider;
  }

  function refusedNote(what: string, d: ApprovalDecision, r: Refusal): void {
    const from = r.claimed === undefined ? '' : sealedDecisions && sealOf(d).kind !== 'sealed' ? ` (claiming to be ${r.claimed})` : ` from ${r.claimed}`;
    note(`refused ${what} of ${String(d?.stepId)}${from}: ${r.refused}`);
  }

  /** A decision for a step this incident is not waiting on goes to its running child, if any. */
  function forwardToChild(d: ApprovalDecision, decision: 'approve' | 'reject'): boolean {
    const childId = deps.runningChild();
    if (!childId || !d || typeof d !== 'object' || rec.pending.some((p) => p.stepId === d.stepId)) return false;
    note(`forwarded ${decision} of ${String(d.stepId)} from ${String(d.approver)} to child ${childId}`);
    void getExternalWorkflowHandle(childId)
      .signal(decision === 'approve' ? approveSignal : rejectSignal, d)
      .catch((err: unknown) => note(`could not forward ${decision} to ${childId}: ${(err as Error).message}`));
    return true;
  }

  function applyDecision(d: ApprovalDecision, decision: 'approve' | 'reject', by: Decider): void {
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

  /** The "approve" and "reject" signals: counted, forwarded to a running child, or refused with a note. */
  function onSignal(d: ApprovalDecision, decision: 'approve' | 'reject'): void {
    const r = judge(d, decision);
    // A forwarded decision reaches the child unsealed: with sealed decisions the sender goes to the child.
    if ('refused' in r && !sealedDecisions && forwardToChild(d, decision)) return;
    if ('refused' in r) refusedNote(decision === 'approve' ? 'approval' : 'rejection', d, r);
    else applyDecision(d, decision, r);
  }

  /** The "decide" update's validator: refuses anything that would not count, so it never reaches the history. */
  function validateUpdate(r: DecisionRequest): void {
    if (r?.decision !== 'approve' && r?.decision !== 'reject') throw new Error('decision must be "approve" or "reject"');
    const by = judge(r, r.decision);
    if ('refused' in by) throw new Error(by.refused);
  }

  /** The "decide" update: counts the decision and says where the step stands. */
  function onUpdate(r: DecisionRequest): DecisionResult {
    const by = judge(r, r.decision);
    // The validator refused anything that does not count; nothing reaches here without a decider.
    if ('refused' in by) throw new Error(by.refused);
    applyDecision(r, r.decision, by);
    const list = approvals.get(r.stepId) ?? [];
    const pending = rec.pending.find((p) => p.stepId === r.stepId);
    const state: StepState = r.decision === 'reject' ? 'rejected' : pending && list.length >= pending.needed ? 'approved' : 'pending';
    return { stepId: r.stepId, state, approvals: list };
  }

  /**
   * The "close" signal. With `rules` (patch `close-rules`), a close counts only from an allowed
   * approver, and only once the incident waits for people; anything else is refused with a note.
   * With `abortable` (patch `explicit-abort`), an allowed approver may also stop the incident earlier
   * with `"abort": true` and a reason: it stops at its next safe point (never in the middle of an
   * action) and closes as aborted. An abort of an escalated incident is its close.
   */
  function close(c: CloseRequest, rules: boolean, abortable = false): void {
    const policy = deps.policy();
    const decider = deciderOf(c, 'by');
    if ('refused' in decider) {
      const claimed = c && typeof c.by === 'string' ? ` (claiming to be ${c.by})` : '';
      note(`refused close${sealedDecisions ? claimed : ''}: ${decider.refused}`);
      return;
    }
    const by = decider.who;
    const abort = c.abort !== undefined && c.abort !== false;
    const what = abort ? 'abort' : 'close';
    if (rules && !policy?.approvers.includes(by)) {
      note(`refused ${what} from ${by}: not an allowed approver`);
      return;
    }
    if (abort) {
      const why = abortRefusal(c, abortable);
      if (why) {
        note(`refused abort from ${by}: ${why}`);
        return;
      }
      const reason = (c.reason as string).trim();
      if (decider.sealId) countedSeals.add(decider.sealId);
      if (rec.phase === 'ESCALATED') {
        closedBy = { by, note: reason };
        note(`closed by ${by}${decider.sealId ? ' (sealed)' : ''} (abort): ${reason}`);
        return;
      }
      abortedBy = { by, reason, at: nowIso() };
      rec.aborted = abortedBy;
      note(`abort requested by ${by}${decider.sealId ? ' (sealed)' : ''} in ${rec.phase}: ${reason}; the incident stops at its next safe point`);
      render();
      return;
    }
    if (rules && rec.phase !== 'ESCALATED') {
      note(
        `refused close from ${by}: the incident is in ${rec.phase}, not escalated; a close is for an incident that waits for people` +
          (abortable ? `; to stop it now, send {"incidentId": "${rec.incidentId}", "abort": true, "reason": "..."}` : ''),
      );
      return;
    }
    if (decider.sealId) countedSeals.add(decider.sealId);
    closedBy = { by, ...(c.note ? { note: c.note } : {}) };
    note(`closed by ${by}${decider.sealId ? ' (sealed)' : ''}${c.note ? `: ${c.note}` : ''}`);
  }

  /** Why an abort is refused, or undefined if it counts. */
  function abortRefusal(c: CloseRequest, abortable: boolean): string | undefined {
    if (!abortable) return 'this incident started before aborts existed; close it once it escalates';
    if (c.abort !== true) return '"abort" must be true';
    if (typeof c.reason !== 'string' || !c.reason.trim()) return 'an abort needs a reason: {"abort": true, "reason": "why it must stop"}';
    if (c.reason.length > ABORT_REASON_MAX) return `the reason is longer than ${ABORT_REASON_MAX} characters`;
    if (abortedBy) return `already aborted by ${abortedBy.by}`;
    if (rec.phase === 'POST-MORTEM' || rec.phase === 'CLOSED') return `the incident is already closing (${rec.phase})`;
    return undefined;
  }

  /** Runs a step's precondition check as the moment a decision on that step may already arrive. */
  async function whileChecking<T>(stepId: string, check: () => Promise<T>): Promise<T> {
    checkingStep = stepId;
    try {
      return await check();
    } finally {
      checkingStep = undefined;
    }
  }

  /** Waits for approval, escalating through the tiers; a resolved alert triggers a precondition re-check. */
  async function awaitApproval(step: Step, action: ActionRecord): Promise<ApprovalOutcome> {
    const needed = step.risk === 'two-person' ? 2 : 1;
    if (parent && needed === 1 && parent.approvers.length > 0) {
      approvals.set(step.id, [...parent.approvers]);
      action.approvals = [...parent.approvers];
      note(`${step.id} approved by ${parent.approvers.join(', ')} through step ${parent.stepId} of ${parent.incidentId}`);
      return 'approved';
    }
    const tiers = deps.policy().tiers;
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
    const aborted = (): boolean => abortedBy !== undefined;
    let result: ApprovalOutcome = 'expired';
    try {
      for (let i = 0; i < tiers.length; i++) {
        const tier = tiers[i] as (typeof tiers)[number];
        p.tier = tier.name;
        note(`${step.id} waits for ${needed === 2 ? 'two approvals' : 'approval'} (${tier.name})`);
        send({
          kind: i === 0 ? 'approval-needed' : 'escalation',
          tier: tier.name,
          contacts: tier.contacts,
          ...(sealedDecisions ? { stepId: step.id } : {}),
          title: `${rec.scenario} ${rec.title} on ${rec.target}: approve ${step.id}?`,
          text: sealedDecisions
            ? `${step.describe}. Signal "approve" with {"incidentId":"${rec.incidentId}","stepId":"${step.id}"}, signed in to the codec server (or: bin/remediate approve ${rec.incidentId} ${step.id})`
            : `${step.describe}. Signal "approve" with {"stepId":"${step.id}","approver":"<name>"}`,
        });
        const tierEnds = now() + tier.waitMs;
        for (;;) {
          const seenResolved = deps.lastResolvedAt();
          const remaining = tierEnds - now();
          if (remaining <= 0) break;
          await condition(() => decided() || aborted() || deps.lastResolvedAt() !== seenResolved, remaining);
          if (aborted()) {
            result = 'aborted';
            return result;
          }
          if (decided()) break;
          if (deps.lastResolvedAt() !== seenResolved && step.precondition) {
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

  return {
    deciderOf,
    judge,
    onSignal,
    validateUpdate,
    onUpdate,
    close,
    whileChecking,
    awaitApproval,
    /** Who aborted the incident and why (once an abort has counted). */
    abortedBy: (): { by: string; reason: string; at: string } | undefined => abortedBy,
    /** Who closed the incident (once a close has counted). */
    closedBy: (): { by: string; note?: string } | undefined => closedBy,
    /** Who rejected the step, if anyone did. */
    rejectedBy: (stepId: string): string | undefined => rejections.get(stepId)?.approver,
    /** Records who approved a step that goes ahead now. */
    confirm(stepId: string): void {
      stepApprovers.set(stepId, [...(approvals.get(stepId) ?? [])]);
    },
    /** Who approved a step that went ahead (empty for a step that needed no approval). */
    approversOf: (stepId: string): string[] => stepApprovers.get(stepId) ?? [],
  };
}
