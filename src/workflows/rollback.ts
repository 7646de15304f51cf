/**
 * Rollback (seed 000): find the last known good release, recreate each service on it one at a time,
 * health-gated (a failed gate stops the rollout and escalates), optionally downgrade the newest
 * migration (approve) or restore the latest backup (two-person), then verify health.
 *
 * Params: `services` (default: the target's rollback order), `tag` (default: last known good),
 * `migrationDowngrade` (boolean), `restoreBackup` (boolean), `gateDeadlineMs` (health gate per service,
 * default 60 s), `reason`.
 */
import { patched } from '@temporalio/workflow';
import { acts, buildSteps, longActs, runIncident, type Check, type Plan, type Runbook, type RunbookContext } from './kernel';
import type { IncidentInput, IncidentRecord } from './contracts';
import { DEFAULT_PG, restoreBackupWork, type PostgresInfo } from './steps';
import { defineRunbook, type Decision, type StepIdOf, type StepRef } from './shape';

/** What this runbook is: the catalog, routes, the client script and the README's table read it. */
export const meta = defineRunbook({
  name: 'rollback',
  scenario: 'ROLLBACK',
  title: 'Roll back to the last known good release',
  severity: 2,
  source: 'seed 000',
  alerts: [],
  diagnostics: ['current image tag of each service', 'image tag history (last known good)', 'health before rollback'],
  steps: [
    { id: 'recreate-<service>', title: 'Recreate each service on the good tag, one at a time, health-gated', risk: 'approve', rollout: true },
    { id: 'migration-downgrade', title: 'Downgrade the newest migration one step', risk: 'approve' },
    { id: 'restore-backup', title: 'Restore the latest backup', risk: 'two-person' },
  ],
  verify: 'health OK on every service after each recreate',
});

export type RollbackStep = StepIdOf<typeof meta>;

interface ServiceFacts {
  service: string;
  current: string;
  goal: string | null;
  reason: string;
  /** The release history could not be read: why (the goal is then null, never a guess). */
  unobserved?: string;
}

export interface RollbackFacts {
  services: ServiceFacts[];
  healthOk: boolean;
  migrationDowngrade: boolean;
  restoreBackup: boolean;
  pg: PostgresInfo;
  /** Incidents that record unobserved signals as such (absent in incidents recorded before). */
  evidenceRule?: boolean;
}

/** What an activity failure says (its cause holds the activity's own message). */
function failureText(err: unknown): string {
  const e = err as { message?: string; cause?: { message?: string } } | null;
  return e?.cause?.message ?? e?.message ?? String(err);
}

function stringList(v: unknown): string[] | undefined {
  return Array.isArray(v) && v.every((x) => typeof x === 'string') ? v : undefined;
}

async function diagnose(ctx: RunbookContext): Promise<RollbackFacts> {
  const t = ctx.target;
  const params = ctx.input.params ?? {};
  const info = await acts.describeTarget({ target: t });
  const services = stringList(params.services) ?? info.rollbackOrder;
  const wanted = typeof params.tag === 'string' && params.tag ? params.tag : undefined;
  const out: ServiceFacts[] = [];
  // A release history that cannot be read is not observed: the incident escalates naming it instead
  // of failing its diagnosis. (Incidents recorded before this rule failed, and replay so.)
  const evidence = patched('evidence-before-conclusions');
  for (const service of services) {
    let good: Awaited<ReturnType<typeof acts.lastKnownGoodTag>>;
    try {
      good = await acts.lastKnownGoodTag({ target: t, component: service });
    } catch (err) {
      if (!evidence) throw err;
      const why = `release history of ${service} unreadable: ${failureText(err)} (settings containers.services, rollbackOrder)`;
      out.push({ service, current: '?', goal: null, reason: 'not observed', unobserved: why });
      ctx.unknown(`${service} release`, why);
      continue;
    }
    if (wanted) {
      const tags = await acts.imageTags({ target: t, component: service });
      const present = tags.tags.includes(wanted);
      out.push({ service, current: good.current, goal: present ? wanted : null, reason: present ? 'requested' : `tag ${wanted} not present` });
    } else {
      out.push({ service, current: good.current, goal: good.tag, reason: good.reason });
    }
    const last = out[out.length - 1] as ServiceFacts;
    ctx.finding(`${service} release`, last.goal !== null, `running ${last.current}; target ${last.goal ?? 'none'} (${last.reason})`);
  }
  const health = await acts.httpHealth({ target: t });
  ctx.finding('health before rollback', health.ok, health.ok ? 'healthy' : `unhealthy: ${health.error ?? `HTTP ${health.status}`}`);
  return {
    services: out,
    healthOk: health.ok,
    migrationDowngrade: params.migrationDowngrade === true,
    restoreBackup: params.restoreBackup === true,
    pg: info.postgres ?? DEFAULT_PG,
    ...(evidence ? { evidenceRule: true } : {}),
  };
}

/** Pure: which services move (each a step of the rollout), and whether the rollout can go ahead at all. */
export function planRollback(f: RollbackFacts): Decision<RollbackStep> & { moves: ServiceFacts[] } {
  // A downgrade or a restore asked for is listed with whatever else the decision says.
  const asked: StepRef<RollbackStep>[] = [...(f.migrationDowngrade ? (['migration-downgrade'] as const) : []), ...(f.restoreBackup ? (['restore-backup'] as const) : [])];
  const unread = f.evidenceRule ? f.services.filter((s) => s.unobserved) : [];
  if (unread.length > 0) {
    return {
      diagnosis: `the release history of ${unread.map((s) => s.service).join(', ')} could not be read`,
      escalate: unread.map((s) => `could not observe ${s.service} release: ${s.unobserved ?? ''}`).join('; '),
      moves: [],
      steps: asked,
    };
  }
  const missing = f.services.filter((s) => s.goal === null);
  if (missing.length > 0) {
    return {
      diagnosis: `no release to roll back to for ${missing.map((s) => `${s.service} (${s.reason})`).join(', ')}`,
      escalate: 'no last known good release found; a human must choose the tag',
      moves: [],
      steps: asked,
    };
  }
  const moves = f.services.filter((s) => s.goal !== s.current);
  const steps: StepRef<RollbackStep>[] = [...moves.map((m) => ({ id: 'recreate-<service>' as const, args: { service: m.service } })), ...asked];
  if (steps.length === 0) {
    return { diagnosis: `every service already runs its target release (${f.services.map((s) => `${s.service} ${s.current}`).join(', ')})`, falseAlarm: true, moves, steps };
  }
  return {
    diagnosis: `roll back ${moves.map((s) => `${s.service} ${s.current} → ${s.goal}`).join(', ') || 'no service'}${f.migrationDowngrade ? ', downgrade the newest migration' : ''}${f.restoreBackup ? ', restore the latest backup' : ''}`,
    moves,
    steps,
  };
}

const runbook: Runbook<RollbackFacts> = {
  meta,
  diagnose,
  plan(f, ctx): Plan {
    const t = ctx.target;
    const p = planRollback(f);
    const healthy = async (service: string): Promise<Check> => {
      const [c, h] = await Promise.all([acts.containerState({ target: t, component: service }), acts.httpHealth({ target: t })]);
      return { ok: c.running && h.ok, detail: `${service} ${c.status} on ${c.tag}; /health ${h.ok ? 'ok' : h.error ?? `HTTP ${h.status}`}` };
    };
    const gateDeadlineMs = typeof ctx.input.params?.gateDeadlineMs === 'number' ? ctx.input.params.gateDeadlineMs : 60_000;
    const steps = buildSteps(meta, p.steps, {
      'recreate-<service>': ({ args }) => {
        const m = p.moves.find((x) => x.service === args.service);
        if (!m?.goal) throw new Error(`no release to move ${args.service} to`);
        const goal = m.goal;
        return {
          title: `Recreate ${m.service} on ${goal}`,
          resource: m.service,
          describe: `recreate ${m.service} on tag ${goal} (now ${m.current}), then wait for health`,
          precondition: async () => {
            const c = await acts.containerState({ target: t, component: m.service });
            return { ok: c.tag !== goal || !c.running, detail: `${m.service} runs ${c.tag}` };
          },
          run: async () => (await longActs.recreateContainer({ target: t, component: m.service, tag: goal })).detail,
          gate: () => healthy(m.service),
          gateDeadlineMs,
        };
      },
      'migration-downgrade': () => {
        const alembic = patched('alembic-migrations');
        return {
          resource: 'db',
          describe: 'alembic downgrade -1, with the code of the release rolled back from (it knows the newest migration)',
          run: async () => {
            if (!alembic) {
              const r = await acts.adminRequest({ target: t, method: 'POST', path: '/v1/admin/migrations/downgrade', body: { steps: 1 } });
              return `migration downgraded: ${JSON.stringify(r.body).slice(0, 200)}`;
            }
            const m = await acts.alembicStatus({ target: t });
            if (!m.available || !m.current) throw new Error(`no revision to downgrade: ${m.error ?? 'the database has none'}`);
            // The running release may be the older one now; the one rolled back from shipped the newest migration.
            const from = f.services.find((s) => s.service === m.component)?.current;
            const running = await acts.containerState({ target: t, component: m.component });
            return (await acts.alembicDowngrade({ target: t, tag: from ?? running.tag, expect: m.current })).detail;
          },
        };
      },
      'restore-backup': () => restoreBackupWork(t, f.pg),
    });
    return { diagnosis: p.diagnosis, ...(p.escalate ? { escalate: p.escalate } : {}), ...(p.falseAlarm ? { falseAlarm: true } : {}), steps };
  },
  async verify(ctx, f): Promise<Check> {
    const h = await acts.httpHealth({ target: ctx.target });
    if (f.evidenceRule && !h.ok && h.status === 0) {
      // No answer at all is not an unhealthy answer: recovery is not observed either way.
      return { ok: false, detail: `/health did not answer: ${h.error ?? 'no answer'}`, unknown: `/health: no answer (${h.error ?? 'unreachable'}; setting baseUrl)` };
    }
    return { ok: h.ok, detail: h.ok ? `/health ok (${String(h.body?.version ?? '')})` : `/health ${h.error ?? h.status}` };
  },
};

/** Roll back services to the last known good (or a given) release. */
export async function rollback(input: IncidentInput): Promise<IncidentRecord> {
  return runIncident(runbook, input);
}
