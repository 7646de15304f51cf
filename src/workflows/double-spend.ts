/**
 * INC-08 Credit leakage / double-spend (seed 002). Diagnoses deductions that share one request id,
 * reconciles each affected user's charges against their requests, verifies the audit chain and looks
 * for a recent deploy the double charges began after. Confirmed → maintenance mode on (approve),
 * roll that deploy back through a child rollback (approve), refund each duplicate charge, referencing
 * the charge it reverses and the original it duplicates (two-person; refunds are keyed by the charge,
 * so a retry or a dead worker never refunds twice), tell the ledger owner, then lift maintenance mode
 * (approve: the owner's review). Verify: the audit chain is valid and no duplicate is left unrefunded.
 */
import { patched } from '@temporalio/workflow';
import { chainVerdict, type ChainVerdict } from './audit-chain-break';
import { readsTargetApiSettings } from './target-api';
import { acts, buildSteps, runIncident, type Check, type Plan, type Runbook, type RunbookContext } from './kernel';
import type { IncidentInput, IncidentRecord } from './contracts';
import type { DuplicateGroup, UserReconciliation } from '../activities/postgres/charges';
import { defineRunbook, type Decision, type StepIdOf, type StepRef } from './shape';

/** What this runbook is: the catalog, routes, the client script and the README's table read it. */
export const meta = defineRunbook({
  name: 'doubleSpend',
  scenario: 'INC-08',
  title: 'Credit leakage / double-spend',
  severity: 1,
  source: 'seed 002',
  alerts: ['DoubleSpend', 'LedgerDuplicateCharges'],
  diagnostics: [
    'duplicate request_id deductions in the last hour (SQL)',
    'per-user reconciliation: charges vs requests, deducted vs refunded',
    'audit chain verify',
    'last deploy of the api and the release it replaced',
  ],
  steps: [
    { id: 'maintenance-on', title: 'Maintenance mode on', risk: 'approve' },
    { id: 'rollback', title: 'Roll back the deploy the double charges began after (child rollback)', risk: 'approve' },
    { id: 'refund-duplicates', title: 'Idempotent refunds, each referencing the charge it reverses; notify the owner', risk: 'two-person' },
    { id: 'maintenance-off', title: 'Maintenance mode off after the owner reviewed the refunds', risk: 'approve' },
  ],
  verify: 'audit chain valid and no unrefunded duplicate charge',
});

/** seed 002 INC-08: "WHERE created_at > now() - interval '1 hour' GROUP BY request_id HAVING count(*) > 1". */
export const WINDOW_MINUTES = 60;
/**
 * Seed 002: "ESCALATE TO SERGEY BAR — All ledger issues require owner review": the target's owner
 * contacts (`security.contacts.owner`). Incidents started before those reached the workflow named this.
 */
export function ledgerOwner(ctx: RunbookContext): string[] {
  return ctx.policy.roleContacts?.owner ?? ['@ledger-owner'];
}

export interface DeployFacts {
  service: string;
  current: string;
  /** The release the service ran before the current one, if its history records one. */
  previous?: string;
  deployedAt: string;
}

export interface DoubleSpendFacts {
  groups: DuplicateGroup[];
  reconciliation: UserReconciliation[];
  audit?: ChainVerdict;
  maintenance?: boolean;
  deploy?: DeployFacts;
  /** Incidents that record unobserved signals as such (absent in incidents recorded before). */
  evidenceRule?: boolean;
  /** Signals that could not be read, and why. */
  unobserved?: { duplicates?: string; audit?: string; maintenance?: string; deploy?: string };
}

/** What an activity failure says, for an unobserved signal (its cause holds the activity's own message). */
function failureText(err: unknown): string {
  const e = err as { message?: string; cause?: { message?: string } } | null;
  return e?.cause?.message ?? e?.message ?? String(err);
}

/** A promise's value, or the failure's text: a read that fails is an unobserved signal, not a failed diagnosis. */
function settle<T>(p: Promise<T>): Promise<{ value: T } | { error: string }> {
  return p.then(
    (value) => ({ value }),
    (err: unknown) => ({ error: failureText(err) }),
  );
}

export type DoubleSpendStep = StepIdOf<typeof meta>;

export interface DoubleSpendDecision extends Decision<DoubleSpendStep> {
  /** The release the deploy the double charges began after replaced: what the rollback step moves back to. */
  rollbackTag?: string;
}

const unrefunded = (groups: DuplicateGroup[]) => groups.flatMap((g) => g.duplicates.filter((d) => !d.refundId).map((d) => ({ ...d, group: g })));

/** Numeric release comparison ("1.10.0" > "1.9.2"); a pre-release sorts before its release. */
export function compareReleases(a: string, b: string): number {
  const parse = (v: string) => {
    const [core = '', pre] = v.replace(/^v/, '').split('-', 2);
    return { nums: core.split('.').map((n) => Number.parseInt(n, 10) || 0), pre };
  };
  const x = parse(a);
  const y = parse(b);
  for (let i = 0; i < Math.max(x.nums.length, y.nums.length); i++) {
    const d = (x.nums[i] ?? 0) - (y.nums[i] ?? 0);
    if (d !== 0) return d;
  }
  if (x.pre && !y.pre) return -1;
  if (!x.pre && y.pre) return 1;
  return 0;
}

/** The release to roll back to: only if the service moved up from an older one before the double charges began. */
export function rollbackTarget(f: DoubleSpendFacts): string | undefined {
  const d = f.deploy;
  const first = f.groups.map((g) => g.firstAt).sort()[0];
  if (!d?.previous || !first) return undefined;
  const upgraded = compareReleases(d.previous, d.current) < 0;
  return upgraded && Date.parse(d.deployedAt) <= Date.parse(first) ? d.previous : undefined;
}

/** Whether the target is in maintenance mode; `unreadable` says why it is not known. */
async function maintenanceReading(target: string): Promise<{ on?: boolean; unreadable?: string }> {
  if (readsTargetApiSettings()) {
    const g = await acts.governanceSettings({ target });
    return g.maintenanceMode !== undefined ? { on: g.maintenanceMode } : { unreadable: g.unreadable.join('; ') };
  }
  const r = await acts.adminRequest({ target, method: 'GET', path: '/v1/governance/settings' });
  const s = (r.body as { settings?: { maintenance_mode?: unknown } } | null)?.settings?.maintenance_mode;
  return typeof s === 'boolean' ? { on: s } : {};
}

async function maintenanceOn(target: string): Promise<boolean | undefined> {
  return (await maintenanceReading(target)).on;
}

async function setMaintenance(ctx: RunbookContext, on: boolean): Promise<string> {
  await acts.adminRequest({
    target: ctx.target,
    method: 'POST',
    path: '/v1/governance/settings',
    body: { maintenance_mode: on, reason: `${ctx.incidentId}: ${on ? 'ledger integrity check' : 'ledger reconciled'}` },
  });
  return `maintenance mode ${on ? 'on: traffic paused' : 'off: traffic resumed'}`;
}

async function deployFacts(ctx: RunbookContext, service: string): Promise<DeployFacts | string> {
  try {
    const [state, tags] = await Promise.all([acts.containerState({ target: ctx.target, component: service }), acts.imageTags({ target: ctx.target, component: service })]);
    const previous = [...tags.history].reverse().find((h) => h !== tags.current);
    return { service, current: tags.current, deployedAt: state.createdAt, ...(previous ? { previous } : {}) };
  } catch (err) {
    ctx.note(`deploy history of ${service} unavailable: ${(err as Error).message}`);
    return `deploy history of ${service} unavailable: ${failureText(err)} (setting rollbackOrder names the service)`;
  }
}

async function diagnose(ctx: RunbookContext): Promise<DoubleSpendFacts> {
  const t = ctx.target;
  const info = await acts.describeTarget({ target: t });
  const service = info.rollbackOrder[0] ?? 'api';
  // A read that fails or lacks its field is not observed: never "no duplicates", "chain valid" or
  // "maintenance off". (Incidents recorded before this rule failed the diagnosis instead, and replay so.)
  const evidence = patched('evidence-before-conclusions');
  const unobserved: NonNullable<DoubleSpendFacts['unobserved']> = {};
  const duplicatesRead = acts.findDuplicateCharges({ target: t, windowMinutes: WINDOW_MINUTES });
  const auditRead = chainVerdict(t);
  const [groupsRead, auditSettled, reading, deployRead] = await Promise.all([
    evidence ? settle(duplicatesRead) : duplicatesRead.then((value) => ({ value })),
    evidence ? settle(auditRead) : auditRead.then((value) => ({ value })),
    maintenanceReading(t),
    deployFacts(ctx, service),
  ]);
  const duplicatesCheck = `duplicate request_id deductions (last ${WINDOW_MINUTES} min)`;
  let groups: DuplicateGroup[] = [];
  if ('value' in groupsRead) groups = groupsRead.value;
  else {
    unobserved.duplicates = `request_logs not readable: ${groupsRead.error}`;
    ctx.unknown(duplicatesCheck, unobserved.duplicates);
  }
  const audit = 'value' in auditSettled ? auditSettled.value : undefined;
  if (!('value' in auditSettled)) unobserved.audit = `POST /v1/admin/audit-logs/verify: ${auditSettled.error}`;
  const deploy = typeof deployRead === 'string' ? undefined : deployRead;
  if (typeof deployRead === 'string' && evidence) unobserved.deploy = deployRead;
  const open = unrefunded(groups);
  if (!unobserved.duplicates) ctx.finding(
    `duplicate request_id deductions (last ${WINDOW_MINUTES} min)`,
    open.length === 0,
    groups.length === 0
      ? 'none'
      : `${groups.length} requests charged more than once: ` +
          groups.map((g) => `${g.requestId} (user ${g.userId}: charge ${g.originalId} + ${g.duplicates.map((d) => `${d.id}${d.refundId ? ` refunded by ${d.refundId}` : ''}`).join(', ')})`).join('; '),
  );
  const reconciliation = await acts.reconcileCharges({ target: t, windowMinutes: WINDOW_MINUTES, userIds: [...new Set(groups.map((g) => g.userId))] });
  for (const r of reconciliation) {
    const over = open.filter((d) => d.group.userId === r.userId).reduce((a, d) => a + d.amount, 0);
    ctx.finding(
      `reconciliation user ${r.userId}`,
      over === 0,
      `${r.charges} charges for ${r.requests} requests, deducted ${r.deducted}, refunded ${r.refunded}; overcharged by ${over}`,
    );
  }
  if (audit) {
    ctx.finding(
      'audit chain verify',
      audit.valid,
      audit.valid ? 'valid' : `broken at entry ${audit.firstBreakAt ?? '?'} (${audit.breakKind ?? 'unknown'}, ${audit.breaks ?? '?'} breaks)`,
    );
  } else if (unobserved.audit) ctx.unknown('audit chain verify', unobserved.audit);
  const maintenance = reading.on;
  if (maintenance !== undefined) ctx.finding('maintenance mode', true, maintenance ? 'on' : 'off');
  else if (evidence) {
    unobserved.maintenance = `not reported: ${reading.unreadable || 'GET /v1/governance/settings gave no maintenance_mode'} (setting api.fields.governanceSettings.maintenanceMode)`;
    ctx.unknown('maintenance mode', unobserved.maintenance);
  } else if (reading.unreadable) ctx.finding('maintenance mode', false, `not reported: ${reading.unreadable}`);
  if (deploy) {
    ctx.finding('last deploy', true, `${deploy.service} ${deploy.current} deployed ${deploy.deployedAt}${deploy.previous ? ` (ran ${deploy.previous} before)` : ''}`);
  } else if (unobserved.deploy) ctx.unknown('last deploy', unobserved.deploy);
  const facts: DoubleSpendFacts = {
    groups,
    reconciliation,
    ...(audit ? { audit } : {}),
    ...(maintenance !== undefined ? { maintenance } : {}),
    ...(deploy ? { deploy } : {}),
    ...(evidence ? { evidenceRule: true, unobserved } : {}),
  };
  if (open.length > 0) {
    ctx.notify({
      title: `Double charges confirmed on ${t}`,
      text: `${open.length} duplicate charges (${open.reduce((a, d) => a + d.amount, 0)} credits) on ${groups.length} requests; owner review required (${ctx.incidentId})`,
      contacts: ledgerOwner(ctx),
      kind: 'escalation',
    });
  }
  return facts;
}

/** Pure decision over the findings. */
export function planDoubleSpend(f: DoubleSpendFacts): DoubleSpendDecision {
  const open = unrefunded(f.groups);
  const u = f.evidenceRule ? f.unobserved ?? {} : {};
  if (u.duplicates) {
    return {
      diagnosis: `the deductions of the last ${WINDOW_MINUTES} min could not be read: ${u.duplicates}`,
      escalate: `could not observe duplicate request_id deductions: ${u.duplicates}`,
      steps: [],
    };
  }
  if (open.length > 0 && (u.maintenance || u.deploy)) {
    // Whether traffic is already paused (and by whom), and whether a deploy explains the double charges,
    // choose the steps: neither is chosen from a signal that could not be read.
    const what = u.maintenance ? `maintenance mode: ${u.maintenance}` : `last deploy: ${u.deploy ?? ''}`;
    return {
      diagnosis: `double-spend: ${open.length} duplicate charges on ${f.groups.length} requests; the steps cannot be chosen`,
      rootCause: 'deductions applied twice for one request id',
      escalate: `could not observe ${what}`,
      steps: [],
    };
  }
  if (open.length === 0 && u.audit) {
    return {
      diagnosis: `no unrefunded duplicate charges, but the audit chain verification could not be read`,
      escalate: `could not observe audit chain verify: ${u.audit}`,
      steps: [],
    };
  }
  const chain = f.audit ? (f.audit.valid ? 'audit chain valid' : `audit chain broken at entry ${f.audit.firstBreakAt ?? '?'}`) : 'audit chain not checked';
  if (open.length > 0) {
    const users = new Set(open.map((d) => d.group.userId)).size;
    const total = open.reduce((a, d) => a + d.amount, 0);
    const tag = rollbackTarget(f);
    const steps: StepRef<DoubleSpendStep>[] = [];
    if (f.maintenance !== true) steps.push('maintenance-on');
    if (tag) steps.push('rollback');
    steps.push('refund-duplicates');
    if (f.maintenance !== true) steps.push('maintenance-off');
    return {
      diagnosis:
        `double-spend: ${open.length} duplicate charges (${total} credits) on ${f.groups.length} requests for ${users} users; ${chain}` +
        `${tag && f.deploy ? `; the charges began after ${f.deploy.service} ${f.deploy.current} replaced ${tag}` : ''}`,
      rootCause: tag && f.deploy ? `deductions applied twice per request since the deploy of ${f.deploy.service} ${f.deploy.current}` : 'deductions applied twice for one request id',
      steps,
      ...(tag ? { rollbackTag: tag } : {}),
    };
  }
  if (f.audit && !f.audit.valid) {
    return {
      diagnosis: `no unrefunded duplicate charges, but the ${chain} (${f.audit.breakKind ?? 'unknown'})`,
      escalate: `the audit chain is broken at entry ${f.audit.firstBreakAt ?? '?'}: run auditChainBreak (INC-09); the ledger itself reconciles`,
      steps: [],
    };
  }
  return {
    diagnosis: `ledger reconciles: ${f.groups.length === 0 ? 'no request charged twice' : `all ${f.groups.length} double-charged requests already refunded`}; ${chain}`,
    falseAlarm: true,
    steps: [],
  };
}

const runbook: Runbook<DoubleSpendFacts> = {
  meta,
  diagnose,
  plan(f, ctx): Plan {
    const t = ctx.target;
    const p = planDoubleSpend(f);
    const open = unrefunded(f.groups);
    const stillOpen = async (): Promise<number> => unrefunded(await acts.findDuplicateCharges({ target: t, windowMinutes: WINDOW_MINUTES })).length;
    const steps = buildSteps(meta, p.steps, {
      'maintenance-on': () => ({
        resource: 'api',
        describe: 'set maintenance_mode=true through the governance API (chat completions and transfers answer 503)',
        precondition: async () => {
          const [on, n] = await Promise.all([maintenanceOn(t), stillOpen()]);
          return { ok: on !== true && n > 0, detail: `maintenance mode ${on ? 'on' : 'off'}, ${n} unrefunded duplicate charges` };
        },
        run: () => setMaintenance(ctx, true),
      }),
      rollback: () => ({
        resource: 'child:rollback',
        describe: `roll ${f.deploy?.service ?? 'the service'} back from ${f.deploy?.current ?? '?'} to ${p.rollbackTag ?? '?'} as a child incident`,
        run: async () => {
          const child = await ctx.child('rollback', {
            reason: `double charges began after ${f.deploy?.service ?? ''} ${f.deploy?.current ?? ''}`,
            stepId: 'rollback',
            params: { services: [f.deploy?.service ?? 'api'], tag: p.rollbackTag },
          });
          if (child.outcome !== 'resolved' && child.outcome !== 'false-alarm') throw new Error(`child rollback ended ${child.outcome ?? 'without an outcome'}`);
          return `rolled back: ${child.diagnosis ?? child.outcome}`;
        },
      }),
      'refund-duplicates': () => ({
        resource: 'db',
        describe: `refund ${open.length} duplicate charges (${open.map((d) => `${d.id}: ${d.amount}`).join(', ')}), each keyed by the charge it reverses`,
        precondition: async () => {
          const n = await stillOpen();
          return { ok: n > 0, detail: `${n} unrefunded duplicate charges` };
        },
        run: async () => {
          // Re-read: only what is still unrefunded now, one activity per charge so each is retried alone.
          const todo = unrefunded(await acts.findDuplicateCharges({ target: t, windowMinutes: WINDOW_MINUTES }));
          const done: string[] = [];
          let already = 0;
          for (const d of todo) {
            const r = await acts.refundDuplicateCharge({ target: t, chargeId: d.id, originalId: d.group.originalId, reason: `${ctx.incidentId}: duplicate charge for ${d.group.requestId}` });
            if (r.applied) done.push(`${d.id}→${r.refundId}`);
            else already++;
          }
          ctx.notify({
            title: `Duplicate charges refunded on ${t}`,
            text: `${done.length} refunds applied (${done.join(', ') || 'none'}), ${already} already refunded; please review the reconciliation (${ctx.incidentId})`,
            contacts: ledgerOwner(ctx),
          });
          return `refunded ${done.length} duplicate charges (${done.join(', ') || 'none'})${already ? `, ${already} were already refunded` : ''}`;
        },
      }),
      'maintenance-off': () => ({
        resource: 'api',
        describe: 'set maintenance_mode=false through the governance API after the owner reviewed the refunds',
        precondition: async () => {
          const [on, n] = await Promise.all([maintenanceOn(t), stillOpen()]);
          return { ok: on === true && n === 0, detail: `maintenance mode ${on ? 'on' : 'off'}, ${n} unrefunded duplicate charges` };
        },
        run: () => setMaintenance(ctx, false),
      }),
    });
    return { ...p, steps };
  },
  async verify(ctx, f): Promise<Check> {
    const auditRead = chainVerdict(ctx.target);
    const groupsRead = acts.findDuplicateCharges({ target: ctx.target, windowMinutes: WINDOW_MINUTES });
    if (f.evidenceRule) {
      // Recovery is a valid chain and no unrefunded duplicate, both read: an unreadable one is not recovery.
      const [a, g] = await Promise.all([settle(auditRead), settle(groupsRead)]);
      if (!('value' in a)) return { ok: false, detail: `audit chain verify unreadable: ${a.error}`, unknown: `audit chain verify: ${a.error}` };
      if (!('value' in g)) return { ok: false, detail: `request_logs unreadable: ${g.error}`, unknown: `duplicate request_id deductions: ${g.error}` };
    }
    const [audit, groups] = await Promise.all([auditRead, groupsRead]);
    const open = unrefunded(groups).length;
    return {
      ok: audit.valid && open === 0,
      detail: `audit chain ${audit.valid ? 'valid' : `broken at entry ${audit.firstBreakAt ?? '?'}`}, ${open} unrefunded duplicate charges`,
    };
  },
};

/** INC-08: credit leakage / double-spend. */
export async function doubleSpend(input: IncidentInput): Promise<IncidentRecord> {
  return runIncident(runbook, input);
}
