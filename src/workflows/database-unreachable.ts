/**
 * INC-01 Database unreachable (seed 002). Pool exhausted → restart the api (auto); db down →
 * restart the db container (auto); disk full → VACUUM FULL (approve); corruption → restore the
 * latest dump (two-person).
 */
import { ActivityFailure, patched } from '@temporalio/workflow';
import { acts, buildSteps, longActs, runIncident, type Check, type Plan, type Runbook, type RunbookContext } from './kernel';
import type { IncidentInput, IncidentRecord } from './contracts';
import { poolUnobserved, readDbPool, usesLogMetricSettings } from './log-metric-settings';
import { DEFAULT_PG, restoreBackupWork, type PostgresInfo } from './steps';
import { defineRunbook, type Decision, type StepIdOf } from './shape';

/** What this runbook is: the catalog, routes, the client script and the README's table read it. */
export const meta = defineRunbook({
  name: 'databaseUnreachable',
  scenario: 'INC-01',
  title: 'Database unreachable',
  severity: 1,
  source: 'seed 002',
  alerts: ['AlfredDatabaseUnhealthy', 'AlfredDbPoolExhausted', 'DatabaseUnreachable'],
  diagnostics: [
    'SELECT 1 with a timeout',
    'server reachability (pg_isready equivalent)',
    'API pool gauge from /metrics',
    'data-dir disk usage (df in the db container)',
    'db container state',
  ],
  steps: [
    { id: 'restart-api', title: 'Restart the api container to release pooled connections', risk: 'auto' },
    { id: 'restart-db', title: 'Restart the db container', risk: 'auto' },
    { id: 'vacuum-full', title: 'VACUUM FULL to reclaim disk', risk: 'approve' },
    { id: 'restore-backup', title: 'pg_restore the latest dump', risk: 'two-person' },
  ],
  verify: '/health reports database healthy',
});

export type DbStep = StepIdOf<typeof meta>;

export interface DbFacts {
  selectOk: boolean;
  selectError?: string;
  corruption: boolean;
  reachable: boolean;
  dbRunning: boolean;
  dbStatus: string;
  apiDbHealthy?: boolean;
  pool?: { total: number; idle: number; waiting: number; max: number; usedPct: number };
  diskUsedPct?: number;
  thresholds: { diskUsagePct: number; poolUsagePct: number };
  pg: PostgresInfo;
  /** Signals that could not be observed, each `<check>: <why>` (absent in incidents started before this rule). */
  unobserved?: string[];
  /** SELECT 1 refused for the engine's own login: it says nothing about the server (absent before this rule). */
  selectUnobserved?: string;
  /** Missing evidence is unknown, never health (absent in facts of incidents started before this rule). */
  evidenceRule?: boolean;
}

/** seed 002: `curl -s http://localhost:8000/health | jq '.database'`. */
const HEALTH_DB = "GET /health (seed 002: jq '.database')";

async function diagnose(ctx: RunbookContext): Promise<DbFacts> {
  const t = ctx.target;
  const useSettings = usesLogMetricSettings();
  // A signal that could not be read is unknown, not healthy. (Incidents recorded before this rule
  // read it as healthy, and replay so.)
  const evidence = patched('evidence-before-conclusions');
  const [info, ping, reach, db, health, metrics] = await Promise.all([
    acts.describeTarget({ target: t }),
    acts.pgPing({ target: t }),
    acts.pgReachable({ target: t }),
    acts.containerState({ target: t, component: 'db' }),
    acts.httpHealth({ target: t }),
    readDbPool(t, useSettings),
  ]);
  const unobserved: string[] = [];
  const unknown = (check: string, why: string): void => {
    ctx.unknown(check, why);
    unobserved.push(`${check}: ${why}`);
  };
  if (evidence && !ping.ok && ping.unobservable) unknown('SELECT 1', ping.unobservable);
  else ctx.finding('SELECT 1', ping.ok, ping.ok ? `ok in ${ping.latencyMs} ms` : `failed: ${ping.error ?? ''}`);
  ctx.finding('server reachable (pg_isready)', reach.reachable, reach.reachable ? `accepting connections (${reach.method ?? 'tcp'})` : `not reachable: ${reach.error ?? ''}`);
  ctx.finding('db container', db.running, `${db.name} ${db.status}, exit code ${db.exitCode}${db.oomKilled ? ', OOM-killed' : ''}`);
  const facts: DbFacts = {
    selectOk: ping.ok,
    ...(ping.error ? { selectError: ping.error } : {}),
    corruption: ping.corruption,
    reachable: reach.reachable,
    dbRunning: db.running,
    dbStatus: db.status,
    thresholds: info.thresholds,
    pg: info.postgres ?? DEFAULT_PG,
    ...(evidence ? { evidenceRule: true, unobserved } : {}),
    ...(evidence && !ping.ok && ping.unobservable ? { selectUnobserved: ping.unobservable } : {}),
  };
  if (health.body && typeof health.body.database === 'string') {
    facts.apiDbHealthy = health.body.database === 'healthy';
    ctx.finding('api /health database', facts.apiDbHealthy, String(health.body.database));
  } else if (evidence) {
    unknown('api /health database', health.error ? `no answer from ${HEALTH_DB}: ${health.error}` : `${HEALTH_DB} answered HTTP ${health.status} without a \`database\` field`);
  } else {
    ctx.finding('api /health', false, health.error ?? `HTTP ${health.status}`);
  }
  const poolWhy = evidence && useSettings ? poolUnobserved(metrics) : undefined;
  if (poolWhy) unknown('api DB pool', poolWhy);
  else if (metrics.available) {
    const max = metrics.max || 1;
    const used = metrics.total - metrics.idle;
    const pool = { total: metrics.total, idle: metrics.idle, waiting: metrics.waiting, max, usedPct: Math.round((used / max) * 100) };
    facts.pool = pool;
    const poolOk = pool.usedPct < info.thresholds.poolUsagePct && pool.waiting === 0;
    ctx.finding('api DB pool', poolOk, `${used}/${max} in use (${pool.usedPct}%), ${pool.waiting} waiting`);
  }
  if (db.running) {
    try {
      const disk = await acts.diskUsage({ target: t, component: 'db', path: facts.pg.dataDir });
      facts.diskUsedPct = disk.usedPct;
      ctx.finding('data-dir disk', disk.usedPct < info.thresholds.diskUsagePct, `${disk.usedPct}% used, ${Math.round(disk.availableKb / 1024)} MB free`);
    } catch (err) {
      const why = err instanceof ActivityFailure && err.cause ? err.cause.message : (err as Error).message;
      if (evidence) unknown('data-dir disk', `df -P ${facts.pg.dataDir} failed in the db container: ${why} (setting postgres.dataDir)`);
      else ctx.finding('data-dir disk', false, `df failed: ${(err as Error).message}`);
    }
  }
  return facts;
}

/** Pure: recovery is `/health` reporting the database healthy; an answer without the field shows nothing. */
export function verifyDatabase(h: { status: number; body: Record<string, unknown> | null; error?: string }, f: Pick<DbFacts, 'evidenceRule'>): Check {
  const db = h.body?.database;
  const detail = `/health database: ${String(db ?? h.error ?? h.status)}`;
  if (f.evidenceRule && typeof db !== 'string') {
    const why = h.error ? `no answer from ${HEALTH_DB}: ${h.error}` : `${HEALTH_DB} answered HTTP ${h.status} without a \`database\` field`;
    return { ok: false, detail, unknown: `api /health database: ${why}` };
  }
  return { ok: db === 'healthy', detail };
}

/** Pure decision over the findings: which branch of the playbook applies. */
export function planDatabaseUnreachable(f: DbFacts): Decision<DbStep> {
  if (!f.dbRunning) {
    return { diagnosis: `db container is ${f.dbStatus}: PostgreSQL crashed or was stopped`, rootCause: 'PostgreSQL not running', steps: ['restart-db'] };
  }
  if (!f.reachable) {
    return { diagnosis: 'db container runs but PostgreSQL does not accept connections: hung server', rootCause: 'PostgreSQL not accepting connections', steps: ['restart-db'] };
  }
  if (f.diskUsedPct !== undefined && f.diskUsedPct >= f.thresholds.diskUsagePct) {
    return { diagnosis: `data directory ${f.diskUsedPct}% full`, rootCause: 'disk full on the database host', steps: ['vacuum-full'] };
  }
  if (f.selectUnobserved) {
    // Restarting the server for a login it refuses would change nothing, and hide the cause.
    return {
      diagnosis: `the database could not be queried: ${f.selectUnobserved}`,
      escalate: `could not observe SELECT 1: ${f.selectUnobserved}`,
      steps: [],
    };
  }
  if (f.corruption) {
    return { diagnosis: `SELECT 1 fails with a corruption error: ${f.selectError ?? ''}`, rootCause: 'data corruption', steps: ['restore-backup'] };
  }
  const poolBad = f.pool !== undefined && (f.pool.usedPct >= f.thresholds.poolUsagePct || f.pool.waiting > 0);
  if (f.selectOk && (poolBad || f.apiDbHealthy === false)) {
    return {
      diagnosis: `database answers, but the api cannot get connections (pool ${f.pool ? `${f.pool.usedPct}% used, ${f.pool.waiting} waiting` : 'unknown'}): pool exhaustion`,
      rootCause: 'api connection pool exhausted',
      steps: ['restart-api'],
    };
  }
  if (!f.selectOk) {
    return { diagnosis: `database reachable but SELECT 1 fails: ${f.selectError ?? ''}`, steps: ['restart-db'] };
  }
  if (f.unobserved?.length) {
    // Healthy where observed; the kernel escalates a false alarm while anything is unobserved.
    return { diagnosis: `database healthy where observed; could not observe ${f.unobserved.join('; ')}`, falseAlarm: true, steps: [] };
  }
  return { diagnosis: 'database healthy: SELECT 1 ok, reachable, pool and disk within limits', falseAlarm: true, steps: [] };
}

const runbook: Runbook<DbFacts> = {
  meta,
  diagnose,
  plan(f, ctx): Plan {
    const p = planDatabaseUnreachable(f);
    const t = ctx.target;
    const dbDown = async (): Promise<Check> => {
      const [c, ping] = await Promise.all([acts.containerState({ target: t, component: 'db' }), acts.pgPing({ target: t })]);
      return { ok: !c.running || !ping.ok, detail: `db container ${c.status}, SELECT 1 ${ping.ok ? 'ok' : 'failing'}` };
    };
    const steps = buildSteps(meta, p.steps, {
      'restart-db': () => ({
        resource: 'db',
        describe: `restart the db container of ${t}`,
        precondition: dbDown,
        run: async (notBefore) => (await acts.restartContainer({ target: t, component: 'db', notBefore })).detail,
        gate: async () => {
          const ping = await acts.pgPing({ target: t });
          return { ok: ping.ok, detail: ping.ok ? 'SELECT 1 ok' : `SELECT 1 failing: ${ping.error ?? ''}` };
        },
        gateDeadlineMs: 60_000,
      }),
      'restart-api': () => ({
        resource: 'api',
        describe: `restart the api container of ${t}`,
        precondition: async () => {
          const h = await acts.httpHealth({ target: t });
          const ok = h.body?.database !== 'healthy';
          return { ok, detail: `api reports database ${String(h.body?.database ?? h.error ?? h.status)}` };
        },
        run: async (notBefore) => (await acts.restartContainer({ target: t, component: 'api', notBefore })).detail,
      }),
      'vacuum-full': () => ({
        resource: 'db',
        describe: 'run VACUUM FULL on the database (locks tables while it runs)',
        precondition: async () => {
          const d = await acts.diskUsage({ target: t, component: 'db', path: f.pg.dataDir });
          return { ok: d.usedPct >= f.thresholds.diskUsagePct, detail: `data dir ${d.usedPct}% used` };
        },
        run: async () => (await longActs.vacuumFull({ target: t })).detail,
      }),
      'restore-backup': () =>
        restoreBackupWork(t, f.pg, async () => {
          const ping = await acts.pgPing({ target: t });
          return { ok: !ping.ok, detail: ping.ok ? 'SELECT 1 works again' : `still failing: ${ping.error ?? ''}` };
        }),
    });
    return { ...p, steps };
  },
  async verify(ctx, f): Promise<Check> {
    const h = await acts.httpHealth({ target: ctx.target });
    return verifyDatabase(h, f);
  },
};

/** INC-01: database unreachable. */
export async function databaseUnreachable(input: IncidentInput): Promise<IncidentRecord> {
  return runIncident(runbook, input);
}
