/**
 * What a runbook gives the kernel and what it gets back: its diagnostics, a pure plan of steps (each
 * with a risk level) and a verification; the context it runs in; how the steps its metadata declares
 * are built from the references a decision chose.
 */
import type { StatusStage } from '../../comms/templates';
import type { RunbookName } from '../catalog';
import type { IncidentInput, IncidentPolicy, IncidentRecord, Risk, Severity } from '../contracts';
import { stepIdOf, stepKindOf, type AnyStepRef, type Placeholders, type RunbookMeta, type StepIdOf, type StepRef } from '../shape';

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
  /**
   * `false` for a step that changes nothing on the target itself (it opens a child incident, whose
   * own steps count, or it only waits): it does not count against the target's action budget.
   */
  acts?: false;
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

export type { StatusStage } from '../../comms/templates';

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
