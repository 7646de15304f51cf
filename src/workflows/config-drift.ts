/**
 * Config drift (seed 004, "API authentication": `JWT_SECRET` must match across services). Compares
 * each configured shared secret between its reference component and the others, by hash from the
 * containers' environment; no value is ever read into the workflow. A drifted component is recreated
 * with the reference's value after approval; verification compares again.
 */
import { patched } from '@temporalio/workflow';
import { acts, buildSteps, longActs, runIncident, type Check, type Plan, type Runbook, type RunbookContext } from './kernel';
import type { IncidentInput, IncidentRecord, Severity } from './contracts';
import type { SecretComparison, SecretHolder } from '../activities/containers/shared-secrets';
import { renderSupportReport, type ReportStatus, type SupportCheck } from './support-report';
import { recordChecks, unobservedText } from './support-evidence';
import { defineRunbook, stepIdOf, type Decision, type StepIdOf, type StepRef } from './shape';

/** What this runbook is: the catalog, routes, the client script and the README's table read it. */
export const meta = defineRunbook({
  name: 'configDrift',
  scenario: 'SUP-DRIFT',
  title: 'Config drift: shared secrets differ between services',
  severity: 2,
  source: 'seed 004',
  alerts: [],
  diagnostics: ['each shared secret (e.g. JWT_SECRET) compared by sha256 between the reference and the other containers (Docker inspect)'],
  steps: [{ id: 'align-<secret>-<component>', title: "Recreate the drifted container with the reference's value", risk: 'approve' }],
  verify: 'every shared secret equal in every component (compared by hash)',
});

export interface DriftFacts {
  comparisons: SecretComparison[];
  /**
   * A secret the reference component's environment lacks, and a target without shared secrets, are
   * unknown, never "no drift" (absent in facts of incidents started before this rule).
   */
  evidenceRule?: boolean;
}

export interface DriftItem {
  env: string;
  reference: string;
  component: string;
  why: 'different' | 'missing';
}

export type DriftStep = StepIdOf<typeof meta>;

export interface DriftDecision extends Decision<DriftStep> {
  status: ReportStatus;
  /** Components to align, one step each (`steps`, in the same order). */
  drifted: DriftItem[];
}

async function diagnose(ctx: RunbookContext): Promise<DriftFacts> {
  const { comparisons } = await acts.compareSharedSecrets({ target: ctx.target });
  // Incidents recorded before this rule called nothing compared "no drift", and replay so.
  const facts: DriftFacts = { comparisons, ...(patched('evidence-before-conclusions') ? { evidenceRule: true } : {}) };
  recordChecks(ctx, checksOf(facts));
  return facts;
}

function describeHolder(h: SecretHolder): string {
  return h.present ? `fingerprint ${h.fingerprint ?? '?'}` : 'not set';
}

/** The checks behind the verdict; a signal not observed is unknown. */
export function checksOf(f: DriftFacts): SupportCheck[] {
  const out: SupportCheck[] = [];
  if (f.evidenceRule && f.comparisons.length === 0) {
    return [{ check: 'shared secrets', ok: false, unknown: true, detail: 'no shared secret is configured for this target, so nothing was compared (setting support.sharedSecrets)' }];
  }
  for (const c of f.comparisons) {
    if (f.evidenceRule && !c.reference.present) {
      out.push({
        check: `${c.env} in ${c.reference.component} (reference)`,
        ok: false,
        unknown: true,
        detail: `${c.env} is not in the container environment of ${c.reference.component}, so there is no value to compare with (setting support.sharedSecrets: env, reference)`,
      });
      continue;
    }
    out.push({ check: `${c.env} in ${c.reference.component} (reference)`, ok: c.reference.present, detail: describeHolder(c.reference) });
    for (const o of c.others) {
      out.push({
        check: `${c.env} in ${o.component}`,
        ok: o.matches,
        detail: `${o.matches ? 'matches' : o.present ? 'DIFFERS from' : 'missing; expected'} the reference (${describeHolder(o)})`,
      });
    }
  }
  return out;
}

/** Pure decision over the comparisons. */
export function planConfigDrift(f: DriftFacts): DriftDecision {
  const unseen = f.evidenceRule ? unobservedText(checksOf(f)) : '';
  if (unseen) {
    return {
      status: 'escalated',
      diagnosis: `config drift could not be determined: ${unseen}`,
      rootCause: 'Not determined: the secrets could not be compared.',
      drifted: [],
      escalate: unseen,
      steps: [],
    };
  }
  const noReference = f.comparisons.filter((c) => !c.reference.present);
  if (noReference.length > 0) {
    const names = noReference.map((c) => `${c.env} in ${c.reference.component}`).join(', ');
    return {
      status: 'escalated',
      diagnosis: `the reference value is missing (${names}): nothing to align to`,
      rootCause: 'A service runs without a secret it needs.',
      drifted: [],
      escalate: `reference secret missing: ${names}; set it by hand, then re-run`,
      steps: [],
    };
  }
  const drifted: DriftItem[] = f.comparisons.flatMap((c) =>
    c.others.filter((o) => !o.matches).map((o) => ({ env: c.env, reference: c.reference.component, component: o.component, why: o.present ? ('different' as const) : ('missing' as const) })),
  );
  if (drifted.length === 0) {
    const what = f.comparisons.map((c) => `${c.env} (${[c.reference, ...c.others].map((h) => h.component).join(', ')})`).join('; ');
    return { status: 'nothing-wrong', diagnosis: `no drift: ${what || 'no shared secrets configured'} match`, falseAlarm: true, drifted: [], steps: [] };
  }
  return {
    status: 'mitigation-proposed',
    diagnosis: `config drift: ${drifted.map((d) => `${d.env} in ${d.component} ${d.why === 'missing' ? 'is missing' : `differs from ${d.reference}`}`).join('; ')}`,
    rootCause: `${drifted.map((d) => d.component).join(', ')} ${drifted.length > 1 ? 'were' : 'was'} started with a different ${[...new Set(drifted.map((d) => d.env))].join(', ')} than ${[...new Set(drifted.map((d) => d.reference))].join(', ')}: tokens signed by one are refused by the other (401 Invalid session token).`,
    drifted,
    steps: drifted.map(alignStep),
  };
}

/** The step that aligns one drifted secret in one component: JWT_SECRET in worker is `align-jwt-secret-worker`. */
export function alignStep(d: DriftItem): StepRef<DriftStep> {
  return { id: 'align-<secret>-<component>', args: { secret: d.env.toLowerCase().replace(/_/g, '-'), component: d.component } };
}

export function stepId(d: DriftItem): string {
  return stepIdOf(alignStep(d));
}

/** The ticket report. */
export function driftReport(f: DriftFacts, v: DriftDecision, meta: { incidentId: string; at: string; severity: Severity; target: string }): string {
  return renderSupportReport({
    title: `Config drift on ${meta.target}`,
    incidentId: meta.incidentId,
    at: meta.at,
    severity: meta.severity,
    issue: '401 Unauthorized / Invalid session token between services',
    status: v.status,
    verdict: v.diagnosis,
    ...(v.rootCause ? { rootCause: v.rootCause } : {}),
    ...(v.drifted.length
      ? { solution: `Recreate ${v.drifted.map((d) => d.component).join(', ')} with the reference value (after approval; the value is copied between containers and never shown).` }
      : {}),
    verification: 'The secrets are compared again by hash after the change.',
    facts: [['secrets compared', f.comparisons.map((c) => c.env).join(', ') || 'none configured']],
    checks: checksOf(f),
    nextSteps: v.drifted.map((d) => `Approve step ${stepId(d)} to align ${d.env} in ${d.component}.`),
  });
}

/** Is this secret still drifted in this component? (Re-checked right before acting.) */
async function stillDrifted(target: string, d: DriftItem): Promise<Check> {
  const { comparisons } = await acts.compareSharedSecrets({ target });
  const o = comparisons.find((c) => c.env === d.env)?.others.find((x) => x.component === d.component);
  return { ok: o !== undefined && !o.matches, detail: o ? `${d.env} in ${d.component} ${o.matches ? 'matches' : 'still differs from'} ${d.reference}` : 'no longer configured' };
}

const runbook: Runbook<DriftFacts> = {
  meta,
  diagnose,
  plan(f, ctx): Plan {
    const p = planConfigDrift(f);
    const steps = buildSteps(meta, p.steps, {
      'align-<secret>-<component>': (ref) => {
        const d = p.drifted.find((x) => stepId(x) === stepIdOf(ref));
        if (!d) throw new Error(`no drifted secret for step ${stepIdOf(ref)}`);
        return {
          title: `Recreate ${d.component} with ${d.reference}'s ${d.env}`,
          resource: d.component,
          describe: `recreate the ${d.component} container of ${ctx.target} with the ${d.env} of ${d.reference} (copied inside the activity, never shown)`,
          precondition: () => stillDrifted(ctx.target, d),
          run: async () => (await longActs.alignSharedSecret({ target: ctx.target, env: d.env, component: d.component })).detail,
        };
      },
    });
    return {
      diagnosis: p.diagnosis,
      ...(p.rootCause ? { rootCause: p.rootCause } : {}),
      ...(p.falseAlarm ? { falseAlarm: true } : {}),
      ...(p.escalate ? { escalate: p.escalate } : {}),
      report: driftReport(f, p, { incidentId: ctx.incidentId, at: new Date().toISOString(), severity: ctx.input.severity ?? meta.severity, target: ctx.target }),
      steps,
    };
  },
  async verify(ctx, f): Promise<Check> {
    const { comparisons } = await acts.compareSharedSecrets({ target: ctx.target });
    if (f.evidenceRule) return verifyAligned(comparisons);
    const bad = comparisons.flatMap((c) => c.others.filter((o) => !o.matches || !o.running).map((o) => `${c.env} in ${o.component}`));
    return { ok: bad.length === 0, detail: bad.length ? `still drifted or not running: ${bad.join(', ')}` : `${comparisons.map((c) => c.env).join(', ')} equal in every component` };
  },
};

/** Pure: every component holds the reference's value, as a comparison that could be made shows it. */
export function verifyAligned(comparisons: SecretComparison[]): Check {
  const unseen = unobservedText(checksOf({ comparisons, evidenceRule: true })).replace(/^could not observe /, '');
  const bad = comparisons.flatMap((c) => c.others.filter((o) => !o.matches || !o.running).map((o) => `${c.env} in ${o.component}`));
  const detail = bad.length ? `still drifted or not running: ${bad.join(', ')}` : `${comparisons.map((c) => c.env).join(', ')} equal in every component`;
  if (unseen) return { ok: false, detail, unknown: unseen };
  return { ok: bad.length === 0, detail };
}

/** Support: secrets that must match across services, compared by hash and aligned after approval. */
export async function configDrift(input: IncidentInput): Promise<IncidentRecord> {
  return runIncident(runbook, input);
}
