/**
 * The step kernel every runbook runs on: DETECT → TRIAGE → MITIGATE → RESOLVE → POST-MORTEM.
 *
 * A runbook declares its diagnostics, a pure decision over their findings (a plan of steps, each with
 * a risk level), and a verification. The kernel owns everything that must be the same for all of
 * them: approvals with escalation tiers, dry-run, the per-target lock and cooldown, precondition
 * re-checks, verification with a deadline, escalation that keeps the incident open, the UI's current
 * details, search attributes and the final incident record.
 *
 *   runbook.ts     what a runbook declares and the context it runs in; steps built from its metadata
 *   lifecycle.ts   one incident through its phases, escalation and close (runIncident)
 *   approvals.ts   who may decide (sealed decisions, refusals) and the tiered wait for approval
 *   lock.ts        the per-target resource lock, through the guard workflows
 *   comms.ts       notifications, the incident channel and announcements, status pages and their cadence
 *   render.ts      the UI's current details (Markdown)
 *   proxies.ts     the activity proxies; common.ts the clock and failure messages
 *
 * Workflow code: deterministic. Time comes from the workflow clock, waits are durable timers.
 */
export { acts, longActs } from './proxies';
export { buildSteps, type Check, type Plan, type Runbook, type RunbookContext, type StatusStage, type Step, type StepBuilders, type StepWork } from './runbook';
export { DECISION_MAX_AGE_MS } from './approvals';
export { incidentChannel } from './comms';
export { renderDetails } from './render';
export { runIncident } from './lifecycle';
