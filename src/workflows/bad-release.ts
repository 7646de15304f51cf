/**
 * INC-12 Bad release (seed 002). When was each service last deployed, how do request errors compare
 * before and after that moment, and did the release bring a schema migration. A release that raised
 * errors → child rollback of that service (approve), then the migration it brought downgraded one
 * step (approve). SEV-1 when the error rate is high or health fails, else SEV-2. Verify: health OK
 * and the error rate of the running release at baseline.
 *
 * Params: `windowMinutes` (a deploy this recent is a suspect, and errors are compared over this long
 * before it; default 60), `errorRatePct` (baseline; default 1 %, seed 001's alert threshold).
 */
import { patched, proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { acts, buildSteps, runIncident, type Check, type Plan, type Runbook, type RunbookContext, type StepWork } from './kernel';
import type { IncidentInput, IncidentRecord, Severity } from './contracts';
import type { RequestCounts } from '../activities/containers/release';
import { childIncidentStep } from './child-step';
import { revisionsBetween } from '../lib/migration-chain';
import { usesLogMetricSettings } from './log-metric-settings';
import { setting } from './threshold-settings';
import { defineRunbook, type Decision, type StepIdOf } from './shape';

/** What this runbook is: the catalog, routes, the client script and the README's table read it. */
export const meta = defineRunbook({
  name: 'badRelease',
  scenario: 'INC-12',
  title: 'Bad release',
  severity: 2,
  source: 'seed 002',
  alerts: ['AlfredBadRelease', 'BadRelease'],
  diagnostics: [
    'last deploy of each service (container created, image built)',
    'request errors before vs after the deploy (proxy and service logs)',
    'current migration revision and migrations applied by the release',
    'health',
  ],
  steps: [
    { id: 'rollback-release', title: 'Child rollback of the deployed service', risk: 'approve' },
    { id: 'migration-downgrade', title: 'Downgrade the migrations the release brought, one step at a time', risk: 'approve' },
  ],
  verify: 'health OK, error rate at baseline',
});

export interface ServiceRelease {
  service: string;
  tag: string;
  createdAt: string;
  lastGoodTag: string | null;
}

export interface ReleaseFacts {
  /** The most recently deployed service, if one was deployed within the window. */
  deployed?: ServiceRelease;
  healthOk: boolean;
  healthDetail: string;
  /** Before: from a component that outlives deploys (`logs.frontComponent`, the replica's proxy); after: the worse of it and the service itself. */
  before: RequestCounts;
  after: RequestCounts;
  /**
   * The revisions the release brought (newest first), reverted with that release's own code. Read
   * with alembic (the database's revision, the chain the deployed release ships, and the head of the
   * last good release); incidents started before that read the replica's admin API.
   */
  migration: { via: 'alembic' | 'admin-api'; available: boolean; current?: string; broughtByRelease: string[]; goodHead?: string; error?: string };
  errorRatePct: number;
  windowMinutes: number;
  now: number;
  /** `thresholds.releaseOutageErrorRatePct` (absent in facts of incidents begun before it was a setting). */
  outageErrorRatePct?: number;
}

/**
 * The downgrade request is not idempotent (a retry after a lost answer would revert a second
 * migration): one attempt, and a failure escalates.
 */
const downgradeOnce = proxyActivities<Activities>({ startToCloseTimeout: '1 minute', retry: { maximumAttempts: 1 } });

/** The default of `thresholds.releaseOutageErrorRatePct`, and its value in incidents begun before it was a setting. */
export const HIGH_ERROR_RATE_PCT = 25;
/** The default of `thresholds.recentDeployMinutes`, and the window of incidents begun before it was a setting. */
export const RECENT_DEPLOY_MINUTES = 60;
/** Migrations read and reverted with alembic in the service's containers (seed 002, INC-12). */
const ALEMBIC = 'alembic-migrations';
/** Clocks of the container engine and the database differ a little (engine tolerance, not a property of the target). */
const CLOCK_SLACK_MS = 5000;
/** The replica's front, as incidents begun before `logs.frontComponent` read it. */
const LEGACY_FRONT = 'proxy';

const rate = (c: RequestCounts): number => (c.requests === 0 ? 0 : Math.round((c.errors / c.requests) * 1000) / 10);
const describeCounts = (c: RequestCounts): string => `${c.errors}/${c.requests} (${rate(c)} %)`;

function numberParam(v: unknown, fallback: number): number {
  return typeof v === 'number' && v > 0 ? v : fallback;
}

/** The alembic way (seed 002, INC-12: `alembic ... current`, `history`): which revisions the release brought. */
async function alembicFacts(ctx: RunbookContext, deployed: ServiceRelease | undefined): Promise<ReleaseFacts['migration']> {
  const t = ctx.target;
  const st = await acts.alembicStatus({ target: t });
  const good = deployed?.lastGoodTag && deployed.lastGoodTag !== deployed.tag ? await acts.releaseMigrationHead({ target: t, tag: deployed.lastGoodTag }) : undefined;
  const current = st.current ?? undefined;
  let brought: string[] = [];
  let detail: string;
  if (!st.available) detail = `unknown: ${st.error ?? 'alembic did not answer'}`;
  else if (!deployed || !good) detail = `current ${current ?? 'none'}, head of the running release ${st.head ?? 'none'}`;
  else if (!good.available) detail = `current ${current ?? 'none'}; the head of ${deployed.lastGoodTag ?? '?'} is unknown: ${good.error ?? ''}`;
  else {
    const between = current ? revisionsBetween(st.history, good.head ?? null, current) : [];
    brought = between ?? [];
    detail = `current ${current ?? 'none'}; ${deployed.lastGoodTag ?? '?'} ships up to ${good.head ?? 'none'}${
      between === undefined ? `; ${current ?? ''} is not above it on the chain ${deployed.tag} ships` : brought.length ? `; brought by ${deployed.tag}: ${brought.join(', ')}` : ''
    }`;
  }
  ctx.finding('migration revision', st.available && brought.length === 0, detail);
  return {
    via: 'alembic',
    available: st.available,
    ...(current ? { current } : {}),
    broughtByRelease: brought,
    ...(good?.head ? { goodHead: good.head } : {}),
    ...(st.error ? { error: st.error } : {}),
  };
}

/** Incidents started before alembic was used: the replica's admin API and its applied-at times. */
async function adminApiMigrationFacts(ctx: RunbookContext, deployed: ServiceRelease | undefined): Promise<ReleaseFacts['migration']> {
  const mig = await acts.migrationStatus({ target: ctx.target });
  const broughtByRelease = deployed
    ? mig.history.filter((h) => Date.parse(h.appliedAt) >= Date.parse(deployed.createdAt) - CLOCK_SLACK_MS).map((h) => h.version)
    : [];
  ctx.finding(
    'migration revision',
    broughtByRelease.length === 0,
    mig.available ? `current ${mig.current ?? '?'}${broughtByRelease.length ? `; applied by this release: ${broughtByRelease.join(', ')}` : ''}` : `unknown: ${mig.error ?? ''}`,
  );
  return {
    via: 'admin-api',
    available: mig.available,
    ...(mig.current !== undefined ? { current: String(mig.current) } : {}),
    broughtByRelease: broughtByRelease.sort((a, b) => b - a).map(String),
  };
}

async function diagnose(ctx: RunbookContext): Promise<ReleaseFacts> {
  const t = ctx.target;
  const params = ctx.input.params ?? {};
  // seed 001: "Error rate > 1% → High alert" (the baseline a release must not exceed).
  const errorRatePct = numberParam(params.errorRatePct, 1);
  const now = Date.now();
  const info = await acts.describeTarget({ target: t });
  const windowMinutes = numberParam(params.windowMinutes, setting(info.thresholds.recentDeployMinutes, RECENT_DEPLOY_MINUTES));
  const outageErrorRatePct = setting(info.thresholds.releaseOutageErrorRatePct, HIGH_ERROR_RATE_PCT);

  const releases: ServiceRelease[] = [];
  for (const service of info.rollbackOrder) {
    const [r, good] = await Promise.all([acts.releaseInfo({ target: t, component: service }), acts.lastKnownGoodTag({ target: t, component: service })]);
    releases.push({ service, tag: r.tag, createdAt: r.containerCreatedAt, lastGoodTag: good.tag });
    ctx.finding(`${service} last deploy`, true, `${r.tag}, container created ${r.containerCreatedAt}${r.imageCreatedAt ? `, image built ${r.imageCreatedAt}` : ''}; last known good ${good.tag ?? 'none'}`);
  }
  const newest = [...releases].sort((a, b) => Date.parse(b.createdAt) - Date.parse(a.createdAt))[0];
  const deployed = newest && now - Date.parse(newest.createdAt) <= windowMinutes * 60_000 ? newest : undefined;

  const health = await acts.httpHealth({ target: t });
  const healthDetail = health.ok ? 'healthy' : `HTTP ${health.status || 'no answer'}${health.error ? ` (${health.error})` : ''}`;
  ctx.finding('/health', health.ok, healthDetail);

  const zero = { requests: 0, errors: 0 };
  let before: RequestCounts = zero;
  let after: RequestCounts = zero;
  if (deployed) {
    const frontComponent = usesLogMetricSettings() ? (info.frontComponent ?? LEGACY_FRONT) : LEGACY_FRONT;
    const since = new Date(Date.parse(deployed.createdAt) - windowMinutes * 60_000).toISOString();
    const [front, own] = await Promise.all([
      info.components.includes(frontComponent)
        ? acts.requestErrorCounts({ target: t, component: frontComponent, since, splitAt: deployed.createdAt })
        : Promise.resolve(undefined),
      acts.requestErrorCounts({ target: t, component: deployed.service, since: deployed.createdAt }),
    ]);
    before = front?.available ? front.before : zero;
    after = front?.available && rate(front.after) > rate(own.after) ? front.after : own.after;
    ctx.finding('errors before the deploy', rate(before) <= errorRatePct, front?.available ? `${describeCounts(before)} at the ${frontComponent}` : 'not observable');
    // No request line read since the deploy is not a 0 % error rate: logs that could not be read, or
    // lines in a format the log settings do not recognise, show nothing. (Incidents recorded before
    // this rule read them as at baseline, and replay so.)
    const unreadable = !own.available && !front?.available;
    if ((unreadable || after.requests === 0) && patched('evidence-before-conclusions')) {
      const read = [deployed.service, ...(front?.available ? [frontComponent] : [])].join(' and ');
      ctx.unknown(
        'errors after the deploy',
        unreadable
          ? `the ${deployed.service} logs could not be read: ${own.error ?? ''}`
          : `no request line recognised in the logs of ${read} since the deploy (settings logs.status, logs.path, logs.timestamp)`,
      );
    } else {
      ctx.finding('errors after the deploy', rate(after) <= errorRatePct, `${describeCounts(after)}; baseline ${errorRatePct} %`);
    }
  }

  const migration = patched(ALEMBIC) ? await alembicFacts(ctx, deployed) : await adminApiMigrationFacts(ctx, deployed);
  return {
    ...(deployed ? { deployed } : {}),
    healthOk: health.ok,
    healthDetail,
    before,
    after,
    migration,
    errorRatePct,
    windowMinutes,
    now,
    outageErrorRatePct,
  };
}

export type ReleaseStep = StepIdOf<typeof meta>;

/** Pure decision over the findings. */
export function planBadRelease(f: ReleaseFacts): Decision<ReleaseStep> {
  const afterRate = rate(f.after);
  const beforeRate = rate(f.before);
  const worse = afterRate > f.errorRatePct && afterRate > beforeRate + f.errorRatePct;
  if (!f.deployed) {
    if (f.healthOk) return { diagnosis: `no deploy in the last ${f.windowMinutes} min and health OK`, falseAlarm: true, steps: [] };
    return {
      diagnosis: `health fails (${f.healthDetail}) but nothing was deployed in the last ${f.windowMinutes} min`,
      escalate: 'not a release problem: no recent deploy to roll back',
      steps: [],
    };
  }
  const d = f.deployed;
  const summary = `${d.service} ${d.tag} deployed at ${d.createdAt}: errors ${beforeRate} % before, ${afterRate} % after; health ${f.healthDetail}`;
  if (f.healthOk && !worse) return { diagnosis: `${summary}: at baseline`, falseAlarm: true, steps: [] };
  const severity: Severity = !f.healthOk || afterRate >= setting(f.outageErrorRatePct, HIGH_ERROR_RATE_PCT) ? 1 : 2;
  if (!d.lastGoodTag || d.lastGoodTag === d.tag) {
    return { diagnosis: `${summary}: bad release`, severity, escalate: `no earlier release of ${d.service} to roll back to; a human must choose`, steps: [] };
  }
  const migrate = f.migration.broughtByRelease.length > 0;
  return {
    diagnosis: `${summary}: bad release; roll back to ${d.lastGoodTag}${migrate ? `, then downgrade migration ${f.migration.broughtByRelease.join(', ')}` : ''}`,
    rootCause: `Release ${d.tag} of ${d.service}`,
    severity,
    steps: migrate ? ['rollback-release', 'migration-downgrade'] : ['rollback-release'],
  };
}

/**
 * Reverts the revisions the release brought, newest first, each with `alembic downgrade -1` run by the
 * release's own code (a one-off container of its image: the older release cannot revert what it does
 * not know). Each downgrade first checks the database is still at that revision, so a repeat never
 * reverts one more.
 */
function alembicDowngradeWork(t: string, d: ServiceRelease, f: ReleaseFacts): StepWork<'migration-downgrade'> {
  const revs = f.migration.broughtByRelease;
  return {
    resource: 'db',
    describe: `revert schema migration ${revs.join(', ')}, which release ${d.tag} applied, down to ${f.migration.goodHead ?? '?'}`,
    precondition: async () => {
      const m = await acts.alembicStatus({ target: t });
      return { ok: m.available && revs.includes(m.current ?? ''), detail: `database at ${m.available ? m.current ?? 'no revision' : `unknown (${m.error ?? ''})`}` };
    },
    run: async () => {
      const done: string[] = [];
      for (const rev of revs) done.push((await downgradeOnce.alembicDowngrade({ target: t, tag: d.tag, expect: rev })).detail);
      return done.join('; ');
    },
  };
}

function adminApiDowngradeWork(t: string, d: ServiceRelease, f: ReleaseFacts): StepWork<'migration-downgrade'> {
  const newest = Math.max(...f.migration.broughtByRelease.map(Number));
  return {
    resource: 'db',
    describe: `revert schema migration ${newest}, which release ${d.tag} applied`,
    precondition: async () => {
      const m = await acts.migrationStatus({ target: t });
      return { ok: m.available && (m.current ?? 0) >= newest, detail: `schema at ${m.current ?? 'unknown'}` };
    },
    run: async () => {
      // "One step down" is relative: the step checks where the schema is and never repeats itself.
      const m = await acts.migrationStatus({ target: t });
      if (m.available && m.current !== undefined && m.current < newest) return `schema already at ${m.current}: migration ${newest} is reverted`;
      const r = await downgradeOnce.adminRequest({ target: t, method: 'POST', path: '/v1/admin/migrations/downgrade', body: { steps: 1 } });
      const body = r.body as { reverted?: number[]; current?: number };
      return `reverted migration ${(body.reverted ?? []).join(', ')}; schema now at ${body.current ?? '?'}`;
    },
  };
}

const runbook: Runbook<ReleaseFacts> = {
  meta,
  diagnose,
  plan(f, ctx): Plan {
    const t = ctx.target;
    const p = planBadRelease(f);
    // Both steps act on the release the decision found; it chooses none without one.
    const deployed = (): ServiceRelease => {
      if (!f.deployed) throw new Error('no recent deploy to act on');
      return f.deployed;
    };
    const steps = buildSteps(meta, p.steps, {
      'rollback-release': (id) => {
        const d = deployed();
        return childIncidentStep(ctx, id, {
          runbook: 'rollback',
          reason: `INC-12 on ${t}: ${p.diagnosis}`,
          params: { services: [d.service], tag: d.lastGoodTag, reason: `INC-12 bad release ${d.tag}` },
        });
      },
      'migration-downgrade': () => (f.migration.via === 'alembic' ? alembicDowngradeWork(t, deployed(), f) : adminApiDowngradeWork(t, deployed(), f)),
    });
    return { ...p, steps };
  },
  async verify(ctx, f): Promise<Check> {
    const service = f.deployed?.service ?? 'api';
    const [health, release] = await Promise.all([acts.httpHealth({ target: ctx.target }), acts.releaseInfo({ target: ctx.target, component: service })]);
    // The running container is the rolled-back one: its own log is the error rate of the good release.
    const now = await acts.requestErrorCounts({ target: ctx.target, component: service, since: release.containerCreatedAt });
    const ok = health.ok && rate(now.after) <= f.errorRatePct;
    const detail = `/health ${health.ok ? 'ok' : health.status}; ${service} ${release.tag} errors ${describeCounts(now.after)} (baseline ${f.errorRatePct} %)`;
    // No request served since the rollback is not an error rate at baseline. (Incidents recorded
    // before this rule read it as 0 %, and replay so.)
    if (health.ok && (!now.available || now.after.requests === 0) && patched('evidence-before-conclusions')) {
      const why = now.available
        ? `no request line recognised in the ${service} logs since ${release.containerCreatedAt} (settings logs.status, logs.path, logs.timestamp)`
        : `the ${service} logs could not be read: ${now.error ?? ''}`;
      return { ok: false, detail, unknown: `the error rate of ${service} ${release.tag}: ${why}` };
    }
    return { ok, detail };
  },
};

/** INC-12: bad release. */
export async function badRelease(input: IncidentInput): Promise<IncidentRecord> {
  return runIncident(runbook, input);
}
