/**
 * One incident from start to close: DETECT → TRIAGE → MITIGATE → RESOLVE → POST-MORTEM, or ESCALATED
 * until a person closes it. Holds the incident's record and timeline, registers its handlers, runs the
 * runbook's diagnostics, plan, steps and verification, and puts approvals.ts, lock.ts and comms.ts to
 * work at each step.
 *
 * Workflow code: deterministic. Time comes from the workflow clock, waits are durable timers. Every
 * `patched()` id, and the order of every call that makes a command, is what recorded incidents replay.
 */
import {
  condition,
  executeChild,
  patched,
  setCurrentDetails,
  setHandler,
  sleep,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { budgetName, budgetSpentReason, formatWindow } from '../../lib/action-budget';
import { sealOf } from '../../lib/codec/sealed';
import { describeWindow, type ActiveWindow } from '../../lib/maintenance';
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
  lockGrantedSignal,
  rejectSignal,
  statusQuery,
  type ActionRecord,
  type IncidentInput,
  type IncidentPolicy,
  type IncidentOutcome,
  type IncidentRecord,
  type Phase,
} from '../contracts';
import { createApprovals } from './approvals';
import { createActionBudget, type BudgetReservation } from './budget';
import { createComms } from './comms';
import { failureMessage, nowIso } from './common';
import { createTargetLock } from './lock';
import { openingActs, policyActs } from './proxies';
import { renderDetails } from './render';
import type { Check, Runbook, RunbookContext, Step } from './runbook';

/** What the incident opened with: a maintenance window open on its target, or why that is not known. */
interface Opening {
  window?: ActiveWindow;
  unknown?: string;
}

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
  let runningChild: string | undefined;
  // A decision on a step may arrive while its precondition is checked, just before it is asked
  // (approvals.ts). (Incidents recorded before this refused such early decisions, and replay that way.)
  const decideWhileChecking = patched('decide-while-checking');
  // A decision counts only for the identity the codec server sealed it with, for this incident, once
  // and while fresh; the requester is the identity that sealed the start request. (Incidents recorded
  // before this took the name a decision carried, and replay so.)
  const sealedDecisions = patched('sealed-decisions');
  const startSeal = sealOf(startInput);
  if (sealedDecisions && startSeal.kind === 'sealed') rec.requestedBy = startSeal.seal.by;
  let lastResolvedAt = 0;
  /** Seed 002's first five minutes (decided below, once the handlers are registered). */
  let firstMinutes = false;

  /** A dry run, or an incident in a maintenance window: nothing runs, nobody is told. */
  const diagnoseOnly = (): boolean => rec.dryRun || rec.maintenance !== undefined;
  const note = (event: string): void => {
    rec.timeline.push({ at: nowIso(), phase: rec.phase, event });
    render();
  };
  const setPhase = (phase: Phase): void => {
    rec.phase = phase;
    upsertSearchAttributes([{ key: SA_PHASE, value: phase }]);
    note(`phase ${phase}`);
  };

  function render(): void {
    setCurrentDetails(renderDetails(rec, { sealed: sealedDecisions }));
  }

  const comms = createComms({ record: rec, policy: () => policy, input: () => input, note, firstMinutes: () => firstMinutes });
  const { send, announce, postStatus, severityContacts, acknowledgePagerDuty } = comms;
  const approvals = createApprovals({
    record: rec,
    policy: () => policy,
    note,
    render,
    send,
    now: () => Date.now(),
    sealed: sealedDecisions,
    decideWhileChecking,
    ...(verifiedParent ? { parent: verifiedParent } : {}),
    runningChild: () => runningChild,
    lastResolvedAt: () => lastResolvedAt,
  });
  const lock = createTargetLock({ workflowId: info.workflowId, runId: info.runId, target: input.target, policy: () => policy, note });
  const budget = createActionBudget({ workflowId: info.workflowId, runId: info.runId, target: input.target, note });

  // Handlers are registered before the first await, so nothing sent early is lost.
  setHandler(statusQuery, () => rec, { description: HANDLER_DESCRIPTIONS.status });
  setHandler(approveSignal, (d) => approvals.onSignal(d, 'approve'), { description: HANDLER_DESCRIPTIONS.approve });
  setHandler(rejectSignal, (d) => approvals.onSignal(d, 'reject'), { description: HANDLER_DESCRIPTIONS.reject });
  setHandler(decideUpdate, (r) => approvals.onUpdate(r), { description: HANDLER_DESCRIPTIONS.decide, validator: (r) => approvals.validateUpdate(r) });
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
  // An allowed approver may stop the incident before it escalates, with a reason: it stops at its next
  // safe point and closes as aborted. (Incidents recorded before this refused any early close.)
  const explicitAbort = closeRules && patched('explicit-abort');
  // Every action counts against the target's budget (policy.actionBudget), across its incidents: past
  // it an automatic step escalates instead of running. (Incidents recorded before this replay without.)
  const actionBudget = patched('action-budget');
  setHandler(closeSignal, (c) => approvals.close(c, closeRules, explicitAbort), { description: HANDLER_DESCRIPTIONS.close });
  setHandler(lockGrantedSignal, (g) => lock.granted(g));

  upsertSearchAttributes([
    { key: SA_SCENARIO, value: meta.scenario },
    { key: SA_SEVERITY, value: rec.severity },
    { key: SA_TARGET, value: input.target },
    { key: SA_RUNBOOK, value: meta.name },
    { key: SA_PHASE, value: 'DETECT' },
  ]);
  // Status-page updates and seed 001's messages (a child reports through its parent instead).
  const statusComms = !verifiedParent && patched('status-comms');
  // Seed 002's first five minutes and post-incident steps: the PagerDuty acknowledgement, the incident
  // channel and its announcement in #incidents, the post-mortem date. (Incidents recorded before
  // these replay without them.)
  firstMinutes = statusComms && patched('first-five-minutes');
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
  // An incident opened in a maintenance window of its target only diagnoses (nothing runs, nobody is
  // paged) or is only recorded, as the window says. Not knowing whether a window is open is no
  // reason to act: the incident escalates. (Incidents recorded before windows existed replay without.)
  // Both are read by one activity: one activity task's round trip through the server comes before
  // the first diagnostic, not two. (Incidents recorded before this read them in two activities, and
  // replay so.)
  const opening = patched('incident-opening') ? await openInOneRead() : await openInTwoReads();
  if (opening.unknown !== undefined) return escalate(`could not tell whether a maintenance window is open on ${input.target}: ${opening.unknown}`);
  if (opening.window) {
    rec.maintenance = opening.window;
    note(`opened in ${describeWindow(opening.window)}`);
    if (opening.window.mode === 'record') return finish('maintenance');
  }
  if (firstMinutes && !diagnoseOnly()) acknowledgePagerDuty();

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
      const approvers = approvals.approversOf(opts.stepId);
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
  if (approvals.abortedBy()) return abort([]);
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
  if (statusComms && !diagnoseOnly()) comms.engage();
  if (plan.escalate) return escalate(plan.escalate);

  // ---------------- MITIGATE ----------------
  setPhase('MITIGATE');
  for (const step of plan.steps) {
    const action = rec.actions.find((a) => a.stepId === step.id) as ActionRecord;
    if (approvals.abortedBy()) return abort(rec.actions.filter((a) => a.state === 'planned'));
    if (diagnoseOnly()) {
      action.state = 'would-do';
      action.detail = `${step.describe}${step.risk === 'auto' ? '' : step.risk === 'two-person' ? ' (after two approvals)' : ' (after approval)'}`;
      note(`${rec.maintenance ? 'maintenance window' : 'dry-run'}: would ${step.describe}`);
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
  if (approvals.abortedBy()) return abort([]);
  if (rec.maintenance) return finish('maintenance');
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
  if (!verdict.ok && approvals.abortedBy()) return abort([]);
  if (!verdict.ok && verdict.unknown) {
    return escalate(`recovery not observed within ${policy.verifyDeadlineMs} ms: could not observe ${verdict.unknown}`);
  }
  if (!verdict.ok) return escalate(`verification did not pass within ${policy.verifyDeadlineMs} ms: ${verdict.detail}`);
  return finish('resolved');

  // ---------------- helpers (hoisted; they close over the incident's state) ----------------

  /** The policy and the maintenance window, in one activity. */
  async function openInOneRead(): Promise<Opening> {
    const { policy: own, maintenance } = await openingActs.incidentOpening({ target: input.target, runbook: meta.name, severity: rec.severity });
    adoptPolicy(own);
    if (!maintenance.known) return { unknown: maintenance.why };
    return maintenance.window ? { window: maintenance.window } : {};
  }

  /** As incidents recorded before the opening was one read: an activity for each, each behind its patch. */
  async function openInTwoReads(): Promise<Opening> {
    if (patched('worker-policy')) adoptPolicy(await policyActs.incidentPolicy({ target: input.target, runbook: meta.name, severity: rec.severity }));
    if (!patched('maintenance-windows')) return {};
    try {
      const { window } = await policyActs.maintenanceWindowAt({ target: input.target });
      return window ? { window } : {};
    } catch (err) {
      return { unknown: failureMessage(err) };
    }
  }

  /** From here on the incident runs under the worker's policy, noted with what it says. */
  function adoptPolicy({ overrides, ...own }: IncidentPolicy & { overrides: number[] }): void {
    policy = own;
    input = { ...input, policy };
    note(
      `policy from the worker's configuration${overrides.length > 0 ? ` (overrides ${overrides.join(', ')})` : ''}: ` +
        `approvers ${policy.approvers.join(', ')}; tiers ${policy.tiers.map((t) => `${t.name} ${t.waitMs} ms`).join(', ')}; cooldown ${policy.cooldownMs} ms` +
        `${actionBudget && policy.actionBudget ? `; ${budgetName(input.target, policy.actionBudget)}` : ''}`,
    );
  }

  /** Runs one step through approval, lock, cooldown and precondition. Returns a reason to escalate, if any. */
  async function runStep(step: Step, action: ActionRecord): Promise<string | undefined> {
    if (step.risk !== 'auto') {
      // Nobody is asked to approve a step whose problem is already gone (e.g. fixed by the step before).
      if (step.precondition && !(await approvals.whileChecking(step.id, () => checkPrecondition(step, action)))) return undefined;
      const decision = await approvals.awaitApproval(step, action);
      if (decision === 'rejected') {
        action.state = 'rejected';
        action.rejectedBy = approvals.rejectedBy(step.id);
        return `step ${step.id} rejected by ${action.rejectedBy ?? 'an approver'}`;
      }
      if (decision === 'expired') {
        action.state = 'expired';
        send({ kind: 'expired', title: `Approval for ${step.id} expired`, text: `No decision on ${step.title}` });
        return `approval for step ${step.id} expired after all escalation tiers`;
      }
      if (decision === 'aborted') {
        action.state = 'skipped';
        action.detail = 'not run: the incident was aborted while this step waited for approval';
        return undefined;
      }
      if (decision === 'cleared') {
        action.state = 'skipped';
        action.detail = 'condition cleared while waiting for approval';
        note(`${step.id} skipped: the condition cleared while waiting for approval`);
        return undefined;
      }
      action.state = 'approved';
      approvals.confirm(step.id);
    }

    const held = await lock.acquire(step);
    if (!held) {
      action.state = 'failed';
      action.detail = `lock on ${input.target}/${step.resource} not granted within ${policy.lockWaitMs} ms`;
      return action.detail;
    }
    let performed = false;
    let ran = false;
    let reservation: BudgetReservation | undefined;
    try {
      if (approvals.abortedBy()) {
        action.state = 'skipped';
        action.detail = 'not run: the incident was aborted while this step waited for its lock';
        return undefined;
      }
      // First: is the problem still there? (Another incident may have fixed it while we waited.)
      if (step.precondition && !(await checkPrecondition(step, action))) return undefined;
      // Then: if it is, and this very action had an effect here recently, repeating it would loop.
      const grant = lock.grantOf(held);
      if (grant.lastPerformedAt && Date.now() - Date.parse(grant.lastPerformedAt) < policy.cooldownMs) {
        action.state = 'cooldown';
        action.detail = `${step.id} already ran on ${input.target}/${step.resource} at ${grant.lastPerformedAt}; cooldown ${policy.cooldownMs} ms`;
        note(action.detail);
        return `${step.id} is in cooldown: the target stays broken after a recent mitigation`;
      }
      // And: has the target had its budget of actions? An automatic step past it is not run; one
      // people approved runs all the same (they decided), noted here. Either way it counts.
      if (actionBudget && policy.actionBudget && step.acts !== false) {
        const approvedBy = step.risk === 'auto' ? undefined : action.approvals;
        const counted = await budget.reserve(step, policy.actionBudget, approvedBy);
        reservation = counted.reservation;
        if (!counted.answer.granted) {
          action.state = 'over-budget';
          action.detail = `not run: ${budgetSpentReason(input.target, counted.answer)}`;
          action.endedAt = nowIso();
          note(`${step.id} ${action.detail}`);
          return budgetSpentReason(input.target, counted.answer);
        }
        if (counted.answer.overBudget) {
          note(
            `${step.id} runs past the ${budgetName(input.target, counted.answer)} (${counted.answer.recent.length} in the last ${formatWindow(counted.answer.windowMs)}): ` +
              `approved by ${(approvedBy ?? []).join(', ')}`,
          );
        }
      }
      action.state = 'running';
      action.startedAt = nowIso();
      render();
      try {
        ran = true;
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
        if (!g.ok && approvals.abortedBy()) {
          action.state = 'done';
          action.detail = `${action.detail}; health gate not awaited: the incident was aborted (${g.detail})`;
          action.endedAt = nowIso();
          return undefined;
        }
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
      await lock.release(held, performed);
      // An action that began counts, even if it failed: it may have changed the target.
      if (reservation) await budget.release(reservation, ran);
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
      // An abort ends the wait: the incident stops rather than watching for a recovery nobody awaits.
      if (explicitAbort) {
        if (await condition(() => approvals.abortedBy() !== undefined, delay)) return c;
      } else await sleep(delay);
      delay = Math.min(delay * 2, 10_000);
    }
  }

  /** The incident stays open and escalated until a human closes it; it never closes by itself. */
  async function escalate(reason: string): Promise<IncidentRecord> {
    // In a maintenance window nobody is paged: the reason stays in the record, and the incident closes.
    if (rec.maintenance) {
      rec.escalations.push(reason);
      note(`not escalated (maintenance window ${rec.maintenance.id}): ${reason}`);
      return finish('maintenance');
    }
    if (!rec.dryRun) announce();
    rec.escalations.push(reason);
    setPhase('ESCALATED');
    note(`escalated: ${reason}`);
    const tier = policy.tiers[Math.min(1, policy.tiers.length - 1)];
    // With seed 002's first five minutes, an escalation also engages whom the severity names.
    const contacts = [...new Set([...(tier?.contacts ?? []), ...(comms.announced() ? severityContacts() : [])])];
    const notice = {
      kind: 'escalation' as const,
      ...(tier ? { tier: tier.name } : {}),
      ...(contacts.length > 0 ? { contacts } : {}),
      title: `${rec.scenario} ${rec.title} on ${rec.target} needs a human`,
      text: sealedDecisions
        ? `${reason}. Once handled, close it: signal "close" with {"incidentId":"${rec.incidentId}","note":"..."} signed in to the codec server (or: bin/remediate close ${rec.incidentId} --note "...")`
        : `${reason}. Close with signal "close" {"by":"<name>","note":"..."} once handled.`,
    };
    send(notice);
    // A child reports back; its parent escalates and holds the incident open. (One whose request
    // names a parent that did not start it is no child: it holds like any incident.)
    if (verifiedParent) return finish('escalated');
    while (!(await condition(() => approvals.closedBy() !== undefined, policy.escalatedHoldMs))) {
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
      if (remaining <= 0 || !(await condition(() => rec.alerts.count !== seen || approvals.abortedBy() !== undefined, remaining))) return undefined;
      if (approvals.abortedBy()) return undefined;
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

  /** Stops the incident an allowed approver aborted: steps not run yet are skipped, and it closes as aborted. */
  async function abort(notRun: ActionRecord[]): Promise<IncidentRecord> {
    const a = approvals.abortedBy() as { by: string; reason: string; at: string };
    rec.aborted = a;
    for (const action of notRun) {
      action.state = 'skipped';
      action.detail = `not run: the incident was aborted by ${a.by}`;
    }
    note(`aborted by ${a.by}: ${a.reason}`);
    send({ kind: 'status', title: `${rec.scenario} ${rec.title} on ${rec.target}: aborted by ${a.by}`, text: a.reason });
    return finish('aborted');
  }

  /** POST-MORTEM, then CLOSED: the outcome, the messages of the close, the record. */
  async function finish(outcome: IncidentOutcome): Promise<IncidentRecord> {
    const back = await settle(outcome);
    if (back) return escalate(back);
    rec.outcome = outcome;
    setPhase('POST-MORTEM');
    rec.closedAt = nowIso();
    await comms.closeOut(outcome);
    setPhase('CLOSED');
    note(`closed: ${outcome}`);
    return rec;
  }
}
