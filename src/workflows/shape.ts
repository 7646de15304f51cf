/**
 * The one shape every runbook has: its metadata (what it is, what it checks, the steps it may take)
 * written once beside its code; a pure decision over its facts that names those steps by typed id;
 * and the steps built from that metadata, so a step's title and risk are never restated.
 * Pure: imported by workflow and non-workflow code alike.
 */
import type { Risk, Severity } from './contracts';

export interface StepMeta {
  /** The id approvals name: `{"stepId": "<id>"}`. A family of steps has placeholders: `recreate-<service>`. */
  readonly id: string;
  readonly title: string;
  readonly risk: Risk;
  /**
   * A family rolled out one instance at a time: the first instance takes `risk`, each later one
   * runs under that approval once the previous instance's health gate passed.
   */
  readonly rollout?: boolean;
}

export interface RunbookMeta {
  /** The workflow type, and the name routes, the client script and approvals use. */
  readonly name: string;
  readonly scenario: string;
  readonly title: string;
  readonly severity: Severity;
  readonly source: string;
  /** Alert names that route to this runbook by default (config/routes.yaml may add more). */
  readonly alerts: readonly string[];
  readonly diagnostics: readonly string[];
  readonly steps: readonly StepMeta[];
  readonly verify: string;
}

/** Declares a runbook's metadata, keeping its literal types (step ids above all) for its decision. */
export function defineRunbook<const M extends RunbookMeta>(meta: M): M {
  return meta;
}

/** The step ids a runbook's metadata declares. */
export type StepIdOf<M extends RunbookMeta> = M['steps'][number]['id'];

/** The placeholders of a family's id: `align-<secret>-<component>` → `secret` | `component`. */
export type Placeholders<S extends string> = S extends `${string}<${infer P}>${infer Rest}` ? P | Placeholders<Rest> : never;

/**
 * A step a decision chose: a plain step by its id; one of a family with the values of its
 * placeholders (`{ id: 'recreate-<service>', args: { service: 'api' } }`).
 */
export type StepRef<Id extends string> = Id extends unknown
  ? [Placeholders<Id>] extends [never]
    ? Id
    : { readonly id: Id; readonly args: { readonly [P in Placeholders<Id>]: string } }
  : never;

/** Any step reference, whatever runbook's: what code that only reads ids takes. */
export type AnyStepRef = string | { readonly id: string; readonly args: Readonly<Record<string, string>> };

/** What every runbook's pure plan returns: the branch of the playbook its facts put it on. */
export interface Decision<Id extends string> {
  diagnosis: string;
  rootCause?: string;
  /** Diagnostics found positive evidence of health: no mitigation, the incident closes as a false alarm. */
  falseAlarm?: boolean;
  /** No safe automatic remedy (or something could not be observed): escalate with this reason. */
  escalate?: string;
  /** Raised above the runbook's own severity by what was found (never lowered). */
  severity?: Severity;
  /** A report for people (Markdown), kept in the incident record and printed by `remediate show`. */
  report?: string;
  /** The steps, in order, by the ids the runbook's metadata declares. */
  steps: StepRef<Id>[];
}

/** The id a step is declared under: a family's with its placeholders. */
export function stepKindOf(ref: AnyStepRef): string {
  return typeof ref === 'string' ? ref : ref.id;
}

/** The id a chosen step runs under, and approvals name: a family's placeholders filled in. */
export function stepIdOf(ref: AnyStepRef): string {
  if (typeof ref === 'string') return ref;
  return ref.id.replace(/<([a-zA-Z]+)>/g, (whole: string, p: string) => ref.args[p] ?? whole);
}

/** The ids of the steps a decision chose, in order. */
export function stepIds(d: { steps: readonly AnyStepRef[] }): string[] {
  return d.steps.map(stepIdOf);
}
