/**
 * The one place that names every signal, query and update an incident workflow answers, and the
 * shapes that cross the workflow boundary. Scripts, tests and the alert receiver import these
 * constants; nobody types a handler name as a raw string.
 *
 * Every handler takes exactly one object argument: the Temporal Web UI sends its JSON textarea as a
 * single payload, so `{"incidentId": "...", "stepId": "..."}` pasted there is the whole call (sealed by
 * the codec server for whoever is signed in).
 */
import type { SealFields } from '../lib/codec/sealed';
import type { ActiveWindow, MaintenanceMode, OpenedWindow } from '../lib/maintenance';
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/** Lifecycle phases, in order (seed 002): DETECT → TRIAGE → MITIGATE → RESOLVE → POST-MORTEM. */
export type Phase = 'DETECT' | 'TRIAGE' | 'MITIGATE' | 'RESOLVE' | 'POST-MORTEM' | 'ESCALATED' | 'CLOSED';

/** SEV-1 (complete outage) … SEV-4 (cosmetic), as in the seed's severity matrix. */
export type Severity = 1 | 2 | 3 | 4;

/** How much a human must be involved before a mitigation runs. */
export type Risk = 'auto' | 'approve' | 'two-person';

export type IncidentOutcome =
  | 'resolved' // mitigated and verified
  | 'false-alarm' // diagnostics found nothing wrong; nothing was done
  | 'dry-run' // diagnostics ran, mitigations were only described
  | 'escalated' // a step failed, was rejected or expired, or verification missed its deadline; a human closed it
  | 'closed' // (never produced; kept for records that name it)
  | 'aborted' // an allowed approver stopped it before the runbook finished, with a reason (IncidentRecord.aborted)
  | 'maintenance'; // opened in a maintenance window of its target: diagnosed only, or only recorded (IncidentRecord.maintenance)

/** The alert that opened (or re-fired into) an incident, as normalised by the receiver. */
export interface AlertEvent {
  source: 'alertmanager' | 'pagerduty' | 'grafana' | 'generic' | 'client';
  name: string;
  status: 'firing' | 'resolved';
  fingerprint?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  startsAt?: string;
  receivedAt: string;
  /**
   * How many identical alerts this signal stands for (absent: one). The receiver sends repeats that
   * arrive while a call for the same incident is in flight as one signal.
   */
  repeats?: number;
}

/** Escalation tiers for approvals that nobody answers (seed 001: tier 1 → 2 → 3). */
export interface EscalationTier {
  name: string;
  contacts: string[];
  /** How long an approval waits at this tier before moving to the next. */
  waitMs: number;
}

/** Who may decide, and how long things may take: the worker's configuration, resolved when an incident starts. */
export interface IncidentPolicy {
  approvers: string[];
  tiers: EscalationTier[];
  /** How long verification may poll before the incident escalates. */
  verifyDeadlineMs: number;
  /** A mitigation on the same target and action is not repeated within this window. */
  cooldownMs: number;
  /** How long a mitigation may wait for the per-target lock before escalating. */
  lockWaitMs: number;
  /** How long an escalated incident stays open waiting for a human to close it. */
  escalatedHoldMs: number;
  /** How long a resolved (or false-alarm) incident keeps absorbing repeats of its alert before closing. */
  settleMs?: number;
  /** Status update cadence by severity ("1".."4"), ms; 0 = no scheduled updates. */
  updateCadenceMs?: Partial<Record<'1' | '2' | '3' | '4', number>>;
  /** Where incidents are announced (seed 002: `#incidents`). */
  announceChannel?: string;
  /** Who is engaged at each severity (seed 002's matrix: SEV-1 IC + Sergey Bar + SRE, ...). */
  severityContacts?: Partial<Record<'1' | '2' | '3' | '4', string[]>>;
  /**
   * The people seed 002 names by role (the owner, Sergey Bar; the Security Lead; Legal), from the
   * target's `security.contacts`. Absent in incidents started before the worker resolved it.
   */
  roleContacts?: Record<'owner' | 'security' | 'legal', string[]>;
  /** How old a sealed decision may be when it reaches the incident (default 15 min). */
  decisionMaxAgeMs?: number;
  /**
   * At most this many actions on the target within the window, counted across its incidents (the
   * target's `actionBudget`, else the policy's). Absent in incidents started before the budget.
   */
  actionBudget?: ActionBudget;
}

/** Automated actions allowed per target: `maxActions` within any `windowMs`. */
export interface ActionBudget {
  maxActions: number;
  windowMs: number;
}

/** Input of every runbook workflow. Carries no secrets: activities resolve the target by name. */
export interface IncidentInput {
  /** Configured target name (e.g. `alfred`). Unknown names are refused before a workflow starts. */
  target: string;
  /** Who asked: a person for the client script, `alertmanager` etc. for alerts. Never an approver. */
  requestedBy: string;
  severity?: Severity;
  dryRun?: boolean;
  alert?: AlertEvent;
  /**
   * Ignored: the worker resolves the policy from its own configuration (`policy` in engine.yaml).
   * Incidents started before it did carried their policy here, and replay with it.
   */
  policy?: IncidentPolicy;
  /** Runbook-specific parameters (e.g. `{ "tag": "1.0.0" }` for a rollback). */
  params?: Record<string, unknown>;
  /** Short human summary, shown in the UI. */
  summary?: string;
  /**
   * Set when this incident runs as a child of another (a hand-off or a sub-runbook such as a
   * rollback): it does not hold itself open on escalation (the parent does), and its single-approver
   * steps count as approved by the parent step's approvers. Two-person steps still ask again.
   */
  parent?: { incidentId: string; stepId: string; approvers: string[] };
}

/**
 * One JSON object from the UI or the client script: approve or reject a pending step. It counts for
 * the identity the codec server sealed it with (`__sealedBy`, set only by the worker's codec), and only
 * in the incident it names. `approver` is what incidents recorded before sealed decisions read.
 */
export interface ApprovalDecision extends SealFields {
  incidentId?: string;
  stepId: string;
  approver?: string;
  comment?: string;
}

export interface DecisionRequest extends ApprovalDecision {
  decision: 'approve' | 'reject';
}

export interface DecisionResult {
  stepId: string;
  /** Step state after this decision: still `pending` when a second approver is needed. */
  state: StepState;
  approvals: string[];
}

/** Close an escalated incident after handling it: sealed like a decision, naming the incident. */
export interface CloseRequest extends SealFields {
  incidentId?: string;
  /** What incidents recorded before sealed decisions read. */
  by?: string;
  note?: string;
  /** Stop the incident before it escalates (an allowed approver, with a reason): it closes as aborted. */
  abort?: boolean;
  reason?: string;
}

export type StepState =
  | 'planned'
  | 'pending' // waiting for approval
  | 'approved'
  | 'running'
  | 'done'
  | 'skipped' // precondition no longer holds: nothing to do
  | 'would-do' // dry-run
  | 'rejected'
  | 'expired'
  | 'cooldown'
  | 'over-budget' // an automatic step not run: the target's action budget was spent
  | 'failed';

export interface Finding {
  check: string;
  /** Positively observed healthy. A problem and an unobserved signal both read `false`. */
  ok: boolean;
  detail: string;
  /** The signal could not be observed (absent metric, unreadable answer, ...): neither healthy nor a problem; `detail` says why. */
  unknown?: true;
  /**
   * Told to people, but no conclusion rests on it (a provider's status page beside the measured error
   * rates): unknown, it does not keep an incident from closing as a false alarm.
   */
  aside?: true;
}

export interface ActionRecord {
  stepId: string;
  title: string;
  risk: Risk;
  resource: string;
  state: StepState;
  detail?: string;
  approvals: string[];
  rejectedBy?: string;
  startedAt?: string;
  endedAt?: string;
}

export interface TimelineEntry {
  at: string;
  phase: Phase;
  event: string;
}

export interface PendingApproval {
  stepId: string;
  title: string;
  risk: Risk;
  needed: number;
  approvals: string[];
  tier: string;
  since: string;
}

/** What the `status` query returns and what the workflow finally returns (its incident record). */
export interface IncidentRecord {
  incidentId: string;
  runbook: string;
  scenario: string;
  title: string;
  severity: Severity;
  target: string;
  requestedBy: string;
  dryRun: boolean;
  phase: Phase;
  outcome?: IncidentOutcome;
  openedAt: string;
  closedAt?: string;
  /** Who stopped the incident before its runbook finished, why, and when (outcome `aborted`). */
  aborted?: { by: string; reason: string; at: string };
  /** The maintenance window the incident opened in (outcome `maintenance`): it only diagnosed, or only recorded. */
  maintenance?: ActiveWindow;
  /** The incident's chat channel, `#inc-YYYY-MM-DD-<short-name>` (seed 002), once people were told. */
  channel?: string;
  /** Seed 002: "Schedule post-mortem within 48 hours" of the resolution. */
  postmortemDueBy?: string;
  diagnosis?: string;
  rootCause?: string;
  findings: Finding[];
  actions: ActionRecord[];
  pending: PendingApproval[];
  timeline: TimelineEntry[];
  /** Alert signals received: every repeat counts; `flaps` counts firing ↔ resolved changes. */
  alerts: {
    count: number;
    resolved: number;
    flaps: number;
    lastStatus?: 'firing' | 'resolved';
    lastAnnotations?: Record<string, string>;
  };
  escalations: string[];
  /** Incidents started on this incident's behalf (child runbooks), by workflow id. */
  children: string[];
  /** What the incident is about, as given by whoever opened it. */
  summary?: string;
  /** Status-page updates posted and seed 001's messages rendered for this incident. */
  comms?: { updates: number; lastStage?: string; initialResponse?: string; resolution?: string };
  /** A report for people (Markdown), from runbooks whose main output is a diagnosis. */
  report?: string;
  /** Set on a child incident: the incident that started it. */
  parentIncidentId?: string;
}

/** The attempts an incident's opening (incidentOpening) is given: the last answers a window it cannot read as not known. */
export const OPENING_ATTEMPTS = 3;

// ---- handlers (names are part of the public API: scripts, the UI and the receiver use them) ----

/**
 * Approve a pending step. From the Temporal UI, signed in to the codec server:
 * `{"stepId":"restart-redis","incidentId":"<incident>"}` (the approver is the identity that sealed it).
 */
export const approveSignal = defineSignal<[ApprovalDecision]>('approve');
/** Reject a pending step; the incident escalates. */
export const rejectSignal = defineSignal<[ApprovalDecision]>('reject');
/** Approve or reject with an answer: refuses unknown steps, strangers and the requester. */
export const decideUpdate = defineUpdate<DecisionResult, [DecisionRequest]>('decide');
/** A repeat of the alert (firing or resolved), added by the receiver through signalWithStart. */
export const alertSignal = defineSignal<[AlertEvent]>('alert');
/** An operator closes an escalated incident after handling it by hand. */
export const closeSignal = defineSignal<[CloseRequest]>('close');
/** The incident record so far. */
export const statusQuery = defineQuery<IncidentRecord>('status');

/** Handler descriptions, shown in the UI's signal/update dropdown. */
export const HANDLER_DESCRIPTIONS = {
  approve: 'Approve a pending step, signed in to the codec server (it counts for who is signed in): {"incidentId": "<incident>", "stepId": "<step>", "comment": "optional"}',
  reject: 'Reject a pending step (the incident escalates), signed in to the codec server: {"incidentId": "<incident>", "stepId": "<step>", "comment": "why"}',
  decide: 'Approve or reject with a reply, signed in to the codec server: {"incidentId": "<incident>", "stepId": "<step>", "decision": "approve" | "reject"}',
  alert: 'A repeat or resolution of the alert that opened this incident (sent by the receiver)',
  close: 'Close an escalated incident after handling it: {"incidentId": "<incident>", "note": "what you did"}; or stop it before then: {"incidentId": "<incident>", "abort": true, "reason": "why"}',
  status: 'The incident record: phase, findings, pending approvals, actions, timeline',
} as const;

// ---- search attributes (registered by scripts/stack.sh) ----
export const SA_SCENARIO = defineSearchAttributeKey('IncidentScenario', SearchAttributeType.KEYWORD);
export const SA_SEVERITY = defineSearchAttributeKey('IncidentSeverity', SearchAttributeType.INT);
export const SA_TARGET = defineSearchAttributeKey('IncidentTarget', SearchAttributeType.KEYWORD);
export const SA_PHASE = defineSearchAttributeKey('IncidentPhase', SearchAttributeType.KEYWORD);
export const SA_RUNBOOK = defineSearchAttributeKey('IncidentRunbook', SearchAttributeType.KEYWORD);

// ---- the per-target guard (lock + cooldown), one workflow per target resource ----

export interface LockRequest {
  /** Workflow id of the incident asking; the grant is signalled back to it. */
  requester: string;
  requestId: string;
  /** What will be done (the step id); cooldowns are kept per action. */
  actionKey: string;
}

export interface LockGrant {
  requestId: string;
  resource: string;
  /** When this action last had an effect on this resource, for the requester's cooldown check. */
  lastPerformedAt?: string;
}

export interface LockRelease {
  requestId: string;
  actionKey: string;
  performed: boolean;
}

export interface GuardInput {
  target: string;
  resource: string;
  /** A holder that does not release within this time loses the lock (its worker may be gone). */
  leaseMs: number;
  /** The guard ends after this long without requests (longer than any cooldown it must remember). */
  idleMs: number;
  lastPerformed?: Record<string, string>;
  queue?: LockRequest[];
}

export interface GuardState {
  holder?: LockRequest;
  queue: LockRequest[];
  lastPerformed: Record<string, string>;
  grants: number;
}

export const acquireLockSignal = defineSignal<[LockRequest]>('acquireLock');
export const releaseLockSignal = defineSignal<[LockRelease]>('releaseLock');
export const lockGrantedSignal = defineSignal<[LockGrant]>('lockGranted');
export const guardStateQuery = defineQuery<GuardState>('guardState');

export function guardWorkflowId(target: string, resource: string): string {
  return `guard-${target}-${resource}`;
}

// ---- the per-target action budget, one keeper workflow per target ----

/** One step's request to count an action against its target's budget. */
export interface BudgetRequest {
  /** The incident's step (`<workflowId>/<runId>/<stepId>`): a retried request is answered, not counted, again. */
  requestId: string;
  incidentId: string;
  stepId: string;
  resource: string;
  /** The budget of the requesting incident's policy. */
  maxActions: number;
  windowMs: number;
  /** Who approved the step, for a step people approved: it may run past a spent budget (and counts). */
  approvedBy?: string[];
}

/** An action counted against the budget: reserved when granted, kept once it ran, dropped if it did not. */
export interface BudgetEntry {
  requestId: string;
  incidentId: string;
  stepId: string;
  resource: string;
  /** When it was granted (the keeper's clock). */
  at: string;
  approvedBy?: string[];
  /** `reserved` until the incident says whether the action ran; one never released keeps counting. */
  state: 'reserved' | 'performed';
}

export interface BudgetAnswer {
  /** May run: within the budget, or approved by people past it (`overBudget`). */
  granted: boolean;
  overBudget: boolean;
  maxActions: number;
  windowMs: number;
  /** The actions counted in the window before this one, oldest first. */
  recent: BudgetEntry[];
}

export interface BudgetRelease {
  requestId: string;
  /** The action ran (or began running): it stays counted. */
  performed: boolean;
}

export interface BudgetKeeperInput {
  target: string;
  /** The keeper ends after this long without requests, at least as long as the longest window it counts. */
  idleMs: number;
  entries?: BudgetEntry[];
}

export interface BudgetKeeperState {
  target: string;
  entries: BudgetEntry[];
  requests: number;
}

/** Counts an action against the target's budget, or refuses it: the answer says which. */
export const reserveActionUpdate = defineUpdate<BudgetAnswer, [BudgetRequest]>('reserveAction');
/** After the step: whether the action it reserved ran. */
export const releaseActionSignal = defineSignal<[BudgetRelease]>('releaseAction');
export const budgetStateQuery = defineQuery<BudgetKeeperState>('budgetState');

export function budgetWorkflowId(target: string): string {
  return `budget-${target}`;
}

// ---- maintenance windows opened by people, one keeper workflow per target ----

/**
 * What `remediate maintenance start|stop` sends (sealed by the codec server: who sends it is the
 * seal's). Start: `forMs` from `from` (default now), `mode` (default the target's), a `reason`.
 * Stop: the window `id` (default: every open one), with an optional `reason`.
 */
export interface MaintenanceRequest {
  target: string;
  action: 'start' | 'stop';
  forMs?: number;
  from?: string;
  mode?: MaintenanceMode;
  reason?: string;
  id?: string;
}

/** The keeper's answer: the windows it opened or stopped. */
export interface MaintenanceAnswer {
  target: string;
  windows: OpenedWindow[];
}

/** Who may open and stop windows on a target, and for how long (the worker's configuration). */
export interface MaintenanceAuthority {
  known: boolean;
  approvers: string[];
  maxDurationMs: number;
  mode: MaintenanceMode;
}

export interface MaintenanceKeeperInput {
  target: string;
  windows?: OpenedWindow[];
  /** Windows opened so far (ids `mw-N` stay unique across continue-as-new). */
  opened?: number;
}

export interface MaintenanceKeeperState {
  target: string;
  windows: OpenedWindow[];
  /** Requests refused, newest last (at most 20): who, what and why. */
  refused: { at: string; by?: string; why: string }[];
}

export const maintenanceUpdate = defineUpdate<MaintenanceAnswer, [MaintenanceRequest]>('maintenance');
export const maintenanceStateQuery = defineQuery<MaintenanceKeeperState>('maintenanceState');

export function maintenanceWorkflowId(target: string): string {
  return `maintenance-${target}`;
}

/**
 * The long-lived workflows that serve every incident of a target (its lock and cooldowns, its action
 * budget, its maintenance windows), as opposed to incidents. An upgrade moves them to the new build
 * (scripts/rollout.ts promote): an incident finishes on the build it started on, they do not wait.
 */
export const KEEPER_WORKFLOW_TYPES = ['targetGuard', 'actionBudget', 'maintenanceWindows'] as const;

/** The task queue the engine's worker polls. */
export const DEFAULT_TASK_QUEUE = 'remediation';

/**
 * Workflow ids make repeats of the same alert join the running incident (signalWithStart): one
 * incident per runbook and target at a time, unless the alert source gives a stable group key.
 */
export function incidentWorkflowId(runbook: string, target: string, groupKey?: string): string {
  return groupKey ? `incident-${runbook}-${target}-${groupKey}` : `incident-${runbook}-${target}`;
}
