/**
 * Database pressure (seed 003): "Inspect Postgres metrics (connections, locks, slow queries). Scale
 * vertically or limit new writes". Diagnose-first: connections against max_connections by role,
 * sessions waiting on locks and the sessions blocking them, and slow queries, all in the target's
 * own database. Remedies, each approved and each acting only on the sessions its precondition
 * re-lists right before it runs: terminate the blockers; terminate the slow queries; lower the
 * busiest (configured) role's CONNECTION LIMIT and end its surplus idle sessions.
 */
import { patched } from '@temporalio/workflow';
import { acts, buildSteps, runIncident, type Check, type Plan, type Runbook, type RunbookContext } from './kernel';
import type { IncidentInput, IncidentRecord, Severity } from './contracts';
import { renderSupportReport, reportStatus } from './support-report';
import type { DbPressure, PressureSettings } from '../activities/postgres/pg-pressure';
import type { RunningQuery } from '../activities/postgres/pg-sessions';
import { setting } from './threshold-settings';
import { defineRunbook, type Decision, type StepIdOf } from './shape';

/** What this runbook is: the catalog, routes, the client script and the README's table read it. */
export const meta = defineRunbook({
  name: 'databasePressure',
  scenario: 'SUP-DB',
  title: 'Database pressure',
  severity: 2,
  source: 'seed 003',
  alerts: ['DatabasePressure'],
  diagnostics: [
    'connections against max_connections, by role',
    'lock waits (pg_locks via pg_blocking_pids, joined to pg_stat_activity) and their blockers',
    'slow queries of the target database',
  ],
  steps: [
    { id: 'terminate-blockers', title: 'Terminate the sessions blocking others (re-listed before acting)', risk: 'approve' },
    { id: 'terminate-slow-queries', title: 'Terminate the long-running queries (re-listed before acting)', risk: 'approve' },
    { id: 'limit-connections', title: "Lower the busiest role's CONNECTION LIMIT and end its surplus idle sessions", risk: 'approve' },
  ],
  verify: 'no lock waits, no slow queries, connections below the threshold',
});

export interface PressureFacts {
  settings: PressureSettings;
  pressure: DbPressure;
  /** Queries running longer than the threshold that are not merely waiting on a lock. */
  slow: RunningQuery[];
  /** Missing evidence is unknown, never health (absent in facts of incidents started before this rule). */
  evidenceRule?: boolean;
}

/** What the engine could not read about the database's pressure, and why; undefined when it read it all. */
export function pressureUnobserved(f: PressureFacts): string | undefined {
  if (!f.evidenceRule) return undefined;
  const p = f.pressure;
  if (!p.ok) {
    return `PostgreSQL did not answer the engine's session as postgres.adminUser: ${p.error ?? 'no answer'} (settings postgres.adminUser, postgres.database, postgres.component)`;
  }
  if (!(p.maxConnections > 0)) return 'SHOW max_connections gave no number';
  return undefined;
}

export type PressureStep = StepIdOf<typeof meta>;

export interface PressureDecision extends Decision<PressureStep> {
  /** The role whose connections would be limited. */
  role?: string;
}

/**
 * Sessions idle this long may be ended when a role's connections are trimmed to its new limit: the
 * default of `postgres.pressure.trimIdleSeconds`, and its value in incidents begun before it was a setting.
 */
export const TRIM_IDLE_SECONDS = 5;

/** Slow queries that are neither lock waiters nor blockers (those are the lock problem, not slowness). */
async function slowQueries(target: string, s: PressureSettings, p: DbPressure): Promise<RunningQuery[]> {
  const locks = new Set([...p.lockWaits.map((w) => w.pid), ...p.blockers.map((b) => b.pid)]);
  const all = await acts.runningQueries({ target, minSeconds: s.longQuerySeconds });
  return all.filter((q) => !locks.has(q.pid));
}

async function diagnose(ctx: RunbookContext): Promise<PressureFacts> {
  const t = ctx.target;
  const settings = await acts.pressureSettings({ target: t });
  const pressure = await acts.dbPressure({ target: t });
  const slow = pressure.ok ? await slowQueries(t, settings, pressure) : [];
  // Pressure that could not be read is unknown, not "no pressure". (Incidents recorded before this
  // rule read it so, and replay as they ran.)
  const evidence = patched('evidence-before-conclusions');
  const facts: PressureFacts = { settings, pressure, slow, ...(evidence ? { evidenceRule: true } : {}) };
  const unseen = pressureUnobserved(facts);
  if (unseen) ctx.unknown('connections, locks and slow queries', unseen);
  else for (const c of pressureChecks(facts)) ctx.finding(c.check, c.ok, c.detail);
  return facts;
}

const busiest = (p: DbPressure) => p.byRole[0];

/** Pure: recovery as a fresh reading shows it; a reading that could not be taken is unknown, not recovery. */
export function verifyPressure(now: PressureFacts): Check {
  const p = now.pressure;
  const s = now.settings;
  const unseen = pressureUnobserved(now);
  if (unseen) return { ok: false, detail: `PostgreSQL: ${p.error ?? 'no answer'}`, unknown: `connections, locks and slow queries: ${unseen}` };
  if (!p.ok) return { ok: false, detail: `PostgreSQL: ${p.error ?? 'no answer'}` };
  return {
    ok: p.lockWaits.length === 0 && now.slow.length === 0 && p.usedPct < s.connectionsPct,
    detail: `${p.lockWaits.length} lock wait(s), ${now.slow.length} slow quer${now.slow.length === 1 ? 'y' : 'ies'}, ${p.totalConnections}/${p.maxConnections} connections (${p.usedPct}%)`,
  };
}

/** The checks of the report and the findings, from the facts. */
export function pressureChecks(f: PressureFacts): Array<{ check: string; ok: boolean; detail: string }> {
  const p = f.pressure;
  const s = f.settings;
  if (!p.ok) return [{ check: 'PostgreSQL', ok: false, detail: `unreachable: ${p.error ?? 'no answer'}` }];
  const roles = p.byRole
    .map((r) => `${r.role} ${r.total} (${r.active} active, ${r.idle} idle, ${r.idleInTransaction} idle in tx)`)
    .join('; ');
  return [
    {
      check: 'connections / max_connections',
      ok: p.usedPct < s.connectionsPct,
      detail: `${p.totalConnections}/${p.maxConnections} (${p.usedPct}%, threshold ${s.connectionsPct}%); ${roles || 'no sessions'}`,
    },
    {
      check: `lock waits > ${s.lockWaitSeconds} s`,
      ok: p.lockWaits.length === 0,
      detail: p.lockWaits.length
        ? `${p.lockWaits.length} session(s) waiting, longest ${p.lockWaits[0]?.waitSeconds ?? 0} s`
        : 'none',
    },
    {
      check: 'blocking sessions',
      ok: p.blockers.length === 0,
      detail: p.blockers.length
        ? p.blockers
            .map(
              (x) =>
                `pid ${x.pid} (${x.role}, ${x.state}, transaction open ${x.xactSeconds} s, blocks ${x.blocking}): ${x.query}`,
            )
            .join('; ')
        : 'none',
    },
    {
      check: `slow queries > ${s.longQuerySeconds} s`,
      ok: f.slow.length === 0,
      detail: f.slow.length ? f.slow.map((q) => `pid ${q.pid} ${q.seconds} s: ${q.query}`).join('; ') : 'none',
    },
  ];
}

/** Pure decision over the findings. */
export function planDatabasePressure(f: PressureFacts): PressureDecision {
  const p = f.pressure;
  const s = f.settings;
  const unseen = pressureUnobserved(f);
  if (unseen) {
    return {
      diagnosis: `the database's pressure could not be read: ${unseen}`,
      escalate: `could not observe connections, locks and slow queries: ${unseen}; if PostgreSQL is down, run the databaseUnreachable runbook`,
      steps: [],
    };
  }
  if (!p.ok) {
    return {
      diagnosis: `PostgreSQL does not answer (${p.error ?? 'no reply'})`,
      escalate: 'the database is unreachable: run the databaseUnreachable runbook',
      steps: [],
    };
  }
  const steps: PressureStep[] = [];
  const found: string[] = [];
  const causes: string[] = [];
  if (p.blockers.length > 0) {
    steps.push('terminate-blockers');
    found.push(
      `${p.lockWaits.length} session(s) wait on locks held by ${p.blockers.map((b) => `pid ${b.pid}`).join(', ')}`,
    );
    const idle = p.blockers.filter((b) => b.state.startsWith('idle in transaction'));
    causes.push(
      idle.length
        ? 'a transaction left open (idle in transaction) holds locks others need'
        : 'a long transaction holds locks others need',
    );
  }
  if (f.slow.length > 0) {
    steps.push('terminate-slow-queries');
    found.push(
      `${f.slow.length} quer${f.slow.length === 1 ? 'y runs' : 'ies run'} longer than ${s.longQuerySeconds} s`,
    );
    causes.push('slow queries hold connections and CPU');
  }
  let role: string | undefined;
  let escalate: string | undefined;
  if (p.usedPct >= s.connectionsPct) {
    const top = busiest(p);
    found.push(
      `${p.totalConnections} of ${p.maxConnections} connections in use (${p.usedPct}%)${top ? `, most by ${top.role} (${top.total})` : ''}`,
    );
    causes.push(`connections near max_connections${top ? `, driven by ${top.role}` : ''}`);
    if (top && s.limitRoles.includes(top.role)) {
      steps.push('limit-connections');
      role = top.role;
    } else {
      escalate = `connections at ${p.usedPct}% and ${top ? `the busiest role ${top.role} is not one this runbook may limit` : 'no role to limit'}: scale the database vertically or limit the client`;
    }
  }
  if (found.length === 0) {
    return {
      diagnosis: `no pressure: ${p.totalConnections}/${p.maxConnections} connections (${p.usedPct}%), no lock waits, no queries over ${s.longQuerySeconds} s`,
      falseAlarm: true,
      steps: [],
    };
  }
  // Connections no role may be limited for: escalate rather than act halfway on the rest.
  if (escalate) return { diagnosis: found.join('; '), rootCause: causes.join('; '), escalate, steps: [] };
  return { diagnosis: found.join('; '), rootCause: causes.join('; '), steps, ...(role ? { role } : {}) };
}

/** The ticket report (seed 001 templates), from the facts and the plan. Pure. */
export function pressureReport(
  f: PressureFacts,
  p: PressureDecision,
  meta: { target: string; incidentId: string; at: string; severity: Severity },
): string {
  const s = f.settings;
  const status = reportStatus(p);
  const what: Record<PressureStep, string> = {
    'terminate-blockers': `terminate the blocking session(s) ${f.pressure.blockers.map((b) => b.pid).join(', ')} (after approval, if still blocking)`,
    'terminate-slow-queries': `terminate the queries running over ${s.longQuerySeconds} s (after approval, if still running)`,
    'limit-connections': `limit ${p.role ?? '?'} to ${s.connectionLimit} connections and end its surplus idle sessions (after approval)`,
  };
  const solution = p.steps.map((x) => what[x]).join('; then ');
  // The customer reply of an open case has no solution line: the proposal goes to the next steps.
  const nextSteps = [
    ...(solution && status === 'mitigation-proposed' ? [`Proposed fix: ${solution}.`] : []),
    ...(p.escalate ? [p.escalate] : []),
    ...(p.steps.includes('terminate-blockers')
      ? ['Find the code path that leaves its transaction open (idle in transaction) and fix it.']
      : []),
    ...(p.steps.includes('limit-connections')
      ? [`Raise ${p.role ?? 'the role'}'s CONNECTION LIMIT again once its client is fixed.`]
      : []),
  ];
  return renderSupportReport({
    title: `Database pressure on ${meta.target}`,
    incidentId: meta.incidentId,
    at: meta.at,
    severity: meta.severity,
    issue: 'the database is slow or refuses connections',
    status,
    verdict: p.diagnosis,
    ...(p.rootCause ? { rootCause: p.rootCause } : {}),
    ...(solution ? { solution } : {}),
    verification: `no lock waits over ${s.lockWaitSeconds} s, no queries over ${s.longQuerySeconds} s, connections below ${s.connectionsPct}% of max_connections`,
    facts: [
      [
        'thresholds',
        `connections ${s.connectionsPct}%, lock wait ${s.lockWaitSeconds} s, slow query ${s.longQuerySeconds} s`,
      ],
    ],
    checks: pressureChecks(f),
    ...(nextSteps.length ? { nextSteps } : {}),
  });
}

const runbook: Runbook<PressureFacts> = {
  meta,
  diagnose,
  plan(f, ctx): Plan {
    const s = f.settings;
    const t = ctx.target;
    const p = planDatabasePressure(f);
    const report = pressureReport(f, p, {
      target: t,
      incidentId: ctx.incidentId,
      at: new Date().toISOString(),
      severity: ctx.input.severity ?? meta.severity,
    });
    // Each step acts only on the sessions its precondition listed last, right before it runs.
    let blockers: number[] = [];
    let slow: number[] = [];
    const role = p.role ?? '';
    const steps = buildSteps(meta, p.steps, {
      'terminate-blockers': () => ({
        resource: 'db',
        describe: `terminate blocking session(s) ${f.pressure.blockers.map((b) => `${b.pid} (${b.role}, ${b.state})`).join(', ')} if they still block`,
        precondition: async () => {
          const now = await acts.dbPressure({ target: t });
          blockers = now.blockers.map((b) => b.pid);
          return {
            ok: blockers.length > 0,
            detail: blockers.length ? `still blocking: ${blockers.join(', ')}` : 'no session blocks another now',
          };
        },
        run: async () => {
          const r = await acts.terminateBlockers({ target: t, pids: blockers });
          return `terminated ${r.terminated.join(', ') || 'none'}${r.spared.length ? `; spared ${r.spared.join(', ')} (no longer blocking)` : ''}`;
        },
      }),
      'terminate-slow-queries': () => ({
        resource: 'db',
        describe: `terminate ${f.slow.map((q) => `pid ${q.pid} (${q.seconds} s)`).join(', ')} if still running`,
        precondition: async () => {
          const now = await acts.dbPressure({ target: t });
          slow = (await slowQueries(t, s, now)).map((q) => q.pid);
          return {
            ok: slow.length > 0,
            detail: slow.length ? `still running: ${slow.join(', ')}` : 'no slow query runs now',
          };
        },
        run: async () => {
          const r = await acts.terminateQueries({ target: t, pids: slow, minSeconds: s.longQuerySeconds });
          return `terminated ${r.terminated.join(', ') || 'none'}${r.spared.length ? `; spared ${r.spared.join(', ')} (finished)` : ''}`;
        },
      }),
      'limit-connections': () => ({
        resource: 'db',
        describe: `ALTER ROLE ${role} CONNECTION LIMIT ${s.connectionLimit}, then end its idle sessions beyond that`,
        precondition: async () => {
          const now = await acts.dbPressure({ target: t });
          return {
            ok: now.usedPct >= s.connectionsPct,
            detail: `${now.totalConnections}/${now.maxConnections} connections (${now.usedPct}%)`,
          };
        },
        run: async () => {
          const limited = await acts.limitRoleConnections({ target: t, role });
          const trimmed = await acts.trimIdleSessions({ target: t, role, minIdleSeconds: setting(f.settings.trimIdleSeconds, TRIM_IDLE_SECONDS) });
          return `${limited.detail}; ended ${trimmed.terminated} idle ${role} session(s)`;
        },
      }),
    });
    return { ...p, report, steps };
  },
  async verify(ctx, f): Promise<Check> {
    const s = f.settings;
    const p = await acts.dbPressure({ target: ctx.target });
    const slow = p.ok ? await slowQueries(ctx.target, s, p) : [];
    return verifyPressure({ ...f, pressure: p, slow });
  },
};

/** Database pressure (seed 003): end what blocks or drags, limit who floods, prove it is gone. */
export async function databasePressure(input: IncidentInput): Promise<IncidentRecord> {
  return runIncident(runbook, input);
}
