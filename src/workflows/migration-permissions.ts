/**
 * Migration permissions (seed 004, "Database migrations"): a migration fails with `permission denied
 * for table` / SQLSTATE 42501. Diagnose-first: the migration role's privileges on the migrations
 * table (has_table_privilege, information_schema.role_table_grants), the migration status against
 * what the release expects, and the permission errors in the migrating component's logs. Remedy: GRANT
 * the missing privileges (approve; idempotent), then re-run the pending migrations (auto: it is the
 * release's own migration, already part of the approved deploy).
 */
import {
  acts,
  buildSteps,
  longActs,
  runIncident,
  type Check,
  type Plan,
  type Runbook,
  type RunbookContext,
} from './kernel';
import { patched } from '@temporalio/workflow';
import type { IncidentInput, IncidentRecord, Severity } from './contracts';
import { renderSupportReport, reportStatus } from './support-report';
import type { MigrationSettings, TableGrants } from '../activities/postgres/pg-grants';
import { setting } from './threshold-settings';
import { defineRunbook, type Decision, type StepIdOf } from './shape';

/** What this runbook is: the catalog, routes, the client script and the README's table read it. */
export const meta = defineRunbook({
  name: 'migrationPermissions',
  scenario: 'SUP-MIGRATION',
  title: 'Migration permissions',
  severity: 3,
  source: 'seed 004',
  alerts: ['MigrationFailed', 'MigrationPermissions'],
  diagnostics: [
    'migration status (current vs the release target) from the admin API',
    "the migration role's privileges on the migrations table (has_table_privilege, the table's grants)",
    'permission errors (42501) in the migrating component logs',
  ],
  steps: [
    { id: 'apply-grants', title: 'GRANT the missing privileges to the migration role', risk: 'approve' },
    { id: 'rerun-migration', title: 'Re-run the pending migrations', risk: 'auto' },
  ],
  verify: 'the migration role has every privilege it needs and no migration is pending',
});

/** `3600` → `1 h`, `900` → `15 min`, as the check has always been named for the default. */
const logWindowText = (s: number): string => (s % 3600 === 0 ? `${s / 3600} h` : s % 60 === 0 ? `${s / 60} min` : `${s} s`);

export interface MigrationFacts {
  settings: MigrationSettings;
  grants: TableGrants;
  /**
   * Read with alembic in the migrating component (`current`, `heads`); incidents started before
   * that read the replica's admin API.
   */
  via: 'alembic' | 'admin-api';
  /** The database's revision, the one the running release migrates to, and whether it is pending. */
  status?: MigrationStatus;
  statusError?: string;
  /** Permission errors in the migrating component's logs, last hour. */
  permissionErrors: number;
  lastError?: string;
  /**
   * Incidents that take a migration status that could not be read as unobserved (absent in incidents
   * recorded before, which read it as "nothing pending").
   */
  evidenceRule?: boolean;
}

export type MigrationStep = StepIdOf<typeof meta>;

interface MigrationStatusBody {
  current?: unknown;
  target?: unknown;
}

export interface MigrationStatus {
  current: string;
  target: string;
  pending: boolean;
}

/** Migrations read with alembic in the migrating component (seed 002: `alembic ... current`). */
const ALEMBIC = 'alembic-migrations';
/** The default of `postgres.migrations.logWindowSeconds`, and the window of incidents begun before it was a setting. */
export const LOG_WINDOW_SECONDS = 3600;
const RETIRED_STATUS_PATH = '/v1/admin/migrations';
const RETIRED_UPGRADE_PATH = '/v1/admin/migrations/upgrade';

async function alembicMigrationStatus(target: string): Promise<MigrationStatus> {
  const m = await acts.alembicStatus({ target });
  if (!m.available) throw new Error(`alembic in ${m.component}: ${m.error ?? 'no answer'}`);
  const current = m.current ?? 'none';
  const head = m.head ?? 'none';
  // A revision the running release does not know is newer than it: nothing is pending.
  return { current, target: head, pending: m.known !== false && current !== head };
}

async function adminMigrationStatus(target: string, path: string): Promise<MigrationStatus> {
  const r = await acts.adminRequest({ target, method: 'GET', path });
  const b = (r.body ?? {}) as MigrationStatusBody;
  if (typeof b.current !== 'number' || typeof b.target !== 'number')
    throw new Error(`${path} did not report current and target versions`);
  return { current: String(b.current), target: String(b.target), pending: b.current < b.target };
}

function migrationStatus(f: Pick<MigrationFacts, 'via' | 'settings'>, target: string): Promise<MigrationStatus> {
  return f.via === 'alembic' ? alembicMigrationStatus(target) : adminMigrationStatus(target, f.settings.statusPath ?? RETIRED_STATUS_PATH);
}

async function diagnose(ctx: RunbookContext): Promise<MigrationFacts> {
  const t = ctx.target;
  const settings = await acts.migrationSettings({ target: t });
  const [grants, logs] = await Promise.all([
    acts.tableGrants({ target: t }),
    acts.containerLogs({
      target: t,
      component: settings.component,
      sinceSeconds: setting(settings.logWindowSeconds, LOG_WINDOW_SECONDS),
      // The target's `logs.migrationPermissionError`: the lines kept are those it matches.
      count: { permission: { pattern: 'migrationPermissionError' } },
      limit: 3,
    }),
  ]);
  const facts: MigrationFacts = { settings, via: patched(ALEMBIC) ? 'alembic' : 'admin-api', grants, permissionErrors: logs.matched };
  if (patched('evidence-before-conclusions')) facts.evidenceRule = true;
  const last = logs.lines[logs.lines.length - 1];
  if (last) facts.lastError = last.slice(0, 240);
  try {
    facts.status = await migrationStatus(facts, t);
  } catch (err) {
    // An activity failure's own message is generic; its cause says what the API answered.
    const e = err as { message?: string; cause?: { message?: string } };
    facts.statusError = e.cause?.message ?? e.message ?? String(err);
  }
  for (const c of migrationChecks(facts)) {
    if (c.check === 'migration status' && !facts.status && facts.evidenceRule) ctx.unknown(c.check, statusUnreadable(facts));
    else ctx.finding(c.check, c.ok, c.detail);
  }
  return facts;
}

const pendingOf = (f: MigrationFacts): boolean => f.status?.pending === true;

/** Why the migration status is not known, naming the setting that points at it. */
function statusUnreadable(f: MigrationFacts): string {
  const setting = f.via === 'alembic' ? 'settings postgres.migrations.command, postgres.migrations.component' : 'setting postgres.migrations.statusPath';
  return `${f.statusError ?? 'no answer'} (${setting})`;
}

/** The checks of the report and the findings, from the facts. */
export function migrationChecks(f: MigrationFacts): Array<{ check: string; ok: boolean; detail: string }> {
  const g = f.grants;
  const explicit = Object.entries(g.grants)
    .map(([who, privs]) => `${who}: ${privs.join(', ')}`)
    .join('; ');
  return [
    {
      check: `${g.role} privileges on ${g.table}`,
      ok: g.tableExists && g.missing.length === 0,
      detail: !g.tableExists
        ? `table ${g.table} does not exist`
        : g.missing.length
          ? `missing ${g.missing.join(', ')} (has ${g.granted.join(', ') || 'none'})`
          : `has ${g.granted.join(', ')}`,
    },
    { check: `grants on ${g.table}`, ok: true, detail: explicit || 'no explicit grants (owner defaults)' },
    {
      check: 'migration status',
      ok: f.status !== undefined && !pendingOf(f),
      detail: f.status
        ? `schema at ${f.status.current}, release expects ${f.status.target}`
        : `unknown: ${f.statusError ?? 'no answer'}`,
    },
    {
      check: `permission errors in ${f.settings.component} logs (${logWindowText(setting(f.settings.logWindowSeconds, LOG_WINDOW_SECONDS))})`,
      ok: f.permissionErrors === 0,
      detail: f.permissionErrors ? `${f.permissionErrors} line(s), latest: ${f.lastError ?? ''}` : 'none',
    },
  ];
}

/** Pure decision over the findings. */
export function planMigrationPermissions(f: MigrationFacts): Decision<MigrationStep> {
  const g = f.grants;
  const pending = pendingOf(f);
  if (!g.tableExists) {
    return {
      diagnosis: `the migrations table ${g.table} does not exist for ${g.role}`,
      escalate: `${g.table} is missing: the migrations never ran here, or the connection points at the wrong database`,
      steps: [],
    };
  }
  if (!f.status && f.evidenceRule) {
    // Whether a migration is pending decides both the re-run and "nothing wrong": neither is read from
    // a status that could not be observed.
    return {
      diagnosis: `the migration status could not be read${g.missing.length ? `; ${g.role} lacks ${g.missing.join(', ')} on ${g.table}` : ''}`,
      escalate: `could not observe migration status: ${statusUnreadable(f)}`,
      steps: [],
    };
  }
  if (g.missing.length > 0) {
    const version = f.status ? ` (schema at ${f.status.current}, release expects ${f.status.target})` : '';
    return {
      diagnosis: `${g.role} lacks ${g.missing.join(', ')} on ${g.table}${pending ? `: the pending migration cannot be recorded${version}` : ''}`,
      rootCause: `missing grant${g.missing.length > 1 ? 's' : ''} ${g.missing.join(', ')} on ${g.table} for the migration role ${g.role}`,
      steps: pending ? ['apply-grants', 'rerun-migration'] : ['apply-grants'],
    };
  }
  if (pending) {
    return {
      diagnosis: `a migration is pending (schema at ${f.status?.current}, release expects ${f.status?.target}) although ${g.role} has every privilege on ${g.table}`,
      escalate: `the migration fails for a reason other than grants on ${g.table}: read the ${f.settings.component} logs`,
      steps: [],
    };
  }
  return {
    diagnosis: `${g.role} has ${g.granted.join(', ')} on ${g.table}${f.status ? ` and the schema is at the release's version ${f.status.target}` : ''}`,
    falseAlarm: true,
    steps: [],
  };
}

/** The ticket report (seed 001 templates), from the facts and the plan. Pure. */
export function migrationReport(
  f: MigrationFacts,
  p: Decision<MigrationStep>,
  meta: { target: string; incidentId: string; at: string; severity: Severity },
): string {
  const g = f.grants;
  const status = reportStatus(p);
  const solution = p.steps
    .map((s) =>
      s === 'apply-grants'
        ? `GRANT ${g.missing.join(', ')} ON ${g.table} TO ${g.role} (after approval)`
        : 're-run the pending migrations',
    )
    .join('; then ');
  // The customer reply of an open case has no solution line: the proposal goes to the next steps.
  const nextSteps = [
    ...(solution && status === 'mitigation-proposed' ? [`Proposed fix: ${solution}.`] : []),
    ...(p.escalate ? [p.escalate] : []),
    ...(p.steps.includes('apply-grants')
      ? [`Add the grant to the database's grants script so a rebuilt database keeps it.`]
      : []),
  ];
  return renderSupportReport({
    title: `Migration permissions on ${meta.target}`,
    incidentId: meta.incidentId,
    at: meta.at,
    severity: meta.severity,
    issue: `database migration${f.permissionErrors ? ' fails with permission denied (SQLSTATE 42501)' : ' permissions check'}`,
    status,
    verdict: p.diagnosis,
    ...(p.rootCause ? { rootCause: p.rootCause } : {}),
    ...(solution ? { solution } : {}),
    verification: `${g.role} has ${f.settings.privileges.join(', ')} on ${g.table} and no migration is pending`,
    facts: [
      ['migration role', g.role],
      ['migrations table', g.table],
    ],
    checks: migrationChecks(f),
    ...(nextSteps.length ? { nextSteps } : {}),
  });
}

const runbook: Runbook<MigrationFacts> = {
  meta,
  diagnose,
  plan(f, ctx): Plan {
    const p = planMigrationPermissions(f);
    const s = f.settings;
    const report = migrationReport(f, p, {
      target: ctx.target,
      incidentId: ctx.incidentId,
      at: new Date().toISOString(),
      severity: ctx.input.severity ?? meta.severity,
    });
    const steps = buildSteps(meta, p.steps, {
      'apply-grants': () => ({
        resource: 'db',
        describe: `GRANT ${f.grants.missing.join(', ')} ON TABLE ${s.table} TO ${s.role}`,
        precondition: async () => {
          const g = await acts.tableGrants({ target: ctx.target });
          return {
            ok: g.missing.length > 0,
            detail: g.missing.length
              ? `${s.role} lacks ${g.missing.join(', ')}`
              : `${s.role} has every privilege it needs`,
          };
        },
        run: async () => (await acts.grantMissingPrivileges({ target: ctx.target })).detail,
      }),
      'rerun-migration': () => ({
        resource: s.component,
        describe: f.via === 'alembic' ? `${s.command.join(' ')} upgrade head in ${s.component}` : `POST ${s.upgradePath ?? RETIRED_UPGRADE_PATH} on ${ctx.target}`,
        precondition: async () => {
          const st = await migrationStatus(f, ctx.target);
          return { ok: st.pending, detail: `schema at ${st.current}, release expects ${st.target}` };
        },
        run: async () => {
          if (f.via === 'alembic') return (await longActs.alembicUpgrade({ target: ctx.target })).detail;
          const r = await longActs.adminRequest({ target: ctx.target, method: 'POST', path: s.upgradePath ?? RETIRED_UPGRADE_PATH, body: {} });
          const b = (r.body ?? {}) as { applied?: number[]; current?: number };
          return `applied migration ${(b.applied ?? []).join(', ') || 'none'}; schema at ${String(b.current ?? '?')}`;
        },
      }),
    });
    return { ...p, report, steps };
  },
  async verify(ctx, f): Promise<Check> {
    // Grants first, then the status: the order the commands were always issued in.
    const grantsRead = acts.tableGrants({ target: ctx.target });
    const statusRead = migrationStatus(f, ctx.target);
    const [g, st] = await Promise.all([
      grantsRead,
      f.evidenceRule
        ? statusRead.catch((err: unknown) => {
            const e = err as { message?: string; cause?: { message?: string } };
            return { unreadable: e.cause?.message ?? e.message ?? String(err) };
          })
        : statusRead,
    ]);
    if ('unreadable' in st) {
      return { ok: false, detail: `migration status unreadable: ${st.unreadable}`, unknown: `migration status: ${statusUnreadable({ ...f, statusError: st.unreadable })}` };
    }
    return {
      ok: g.missing.length === 0 && !st.pending,
      detail: `${g.role} ${g.missing.length ? `lacks ${g.missing.join(', ')}` : `has ${g.granted.join(', ')}`} on ${g.table}; schema at ${st.current}, release expects ${st.target}`,
    };
  },
};

/** Migration permissions (seed 004): grant what the migration role lacks, then re-run the migration. */
export async function migrationPermissions(input: IncidentInput): Promise<IncidentRecord> {
  return runIncident(runbook, input);
}
