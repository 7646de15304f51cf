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
import { acts, longActs, runIncident, type Check, type Plan, type Runbook, type RunbookContext, type Step } from './kernel';
import type { IncidentInput, IncidentRecord } from './contracts';
import { DEFAULT_PG, restoreBackupStep, type PostgresInfo } from './steps';

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

/** Pure: which services move, and whether the rollout can go ahead at all. */
export function planRollback(f: RollbackFacts): { diagnosis: string; escalate?: string; falseAlarm?: boolean; moves: ServiceFacts[] } {
  const unread = f.evidenceRule ? f.services.filter((s) => s.unobserved) : [];
  if (unread.length > 0) {
    return {
      diagnosis: `the release history of ${unread.map((s) => s.service).join(', ')} could not be read`,
      escalate: unread.map((s) => `could not observe ${s.service} release: ${s.unobserved ?? ''}`).join('; '),
      moves: [],
    };
  }
  const missing = f.services.filter((s) => s.goal === null);
  if (missing.length > 0) {
    return {
      diagnosis: `no release to roll back to for ${missing.map((s) => `${s.service} (${s.reason})`).join(', ')}`,
      escalate: 'no last known good release found; a human must choose the tag',
      moves: [],
    };
  }
  const moves = f.services.filter((s) => s.goal !== s.current);
  if (moves.length === 0 && !f.migrationDowngrade && !f.restoreBackup) {
    return { diagnosis: `every service already runs its target release (${f.services.map((s) => `${s.service} ${s.current}`).join(', ')})`, falseAlarm: true, moves };
  }
  return {
    diagnosis: `roll back ${moves.map((s) => `${s.service} ${s.current} → ${s.goal}`).join(', ') || 'no service'}${f.migrationDowngrade ? ', downgrade the newest migration' : ''}${f.restoreBackup ? ', restore the latest backup' : ''}`,
    moves,
  };
}

const runbook: Runbook<RollbackFacts> = {
  name: 'rollback',
  diagnose,
  plan(f, ctx): Plan {
    const t = ctx.target;
    const p = planRollback(f);
    const healthy = async (service: string): Promise<Check> => {
      const [c, h] = await Promise.all([acts.containerState({ target: t, component: service }), acts.httpHealth({ target: t })]);
      return { ok: c.running && h.ok, detail: `${service} ${c.status} on ${c.tag}; /health ${h.ok ? 'ok' : h.error ?? `HTTP ${h.status}`}` };
    };
    const steps: Step[] = p.moves.map((m, i) => ({
      id: `recreate-${m.service}`,
      title: `Recreate ${m.service} on ${m.goal}`,
      // The first approval covers the rollout; later services follow only if each health gate passes.
      risk: i === 0 ? 'approve' : 'auto',
      resource: m.service,
      describe: `recreate ${m.service} on tag ${m.goal} (now ${m.current}), then wait for health`,
      precondition: async () => {
        const c = await acts.containerState({ target: t, component: m.service });
        return { ok: c.tag !== m.goal || !c.running, detail: `${m.service} runs ${c.tag}` };
      },
      run: async () => (await longActs.recreateContainer({ target: t, component: m.service, tag: m.goal as string })).detail,
      gate: () => healthy(m.service),
      gateDeadlineMs: typeof ctx.input.params?.gateDeadlineMs === 'number' ? ctx.input.params.gateDeadlineMs : 60_000,
    }));
    if (f.migrationDowngrade) {
      const alembic = patched('alembic-migrations');
      steps.push({
        id: 'migration-downgrade',
        title: 'Downgrade the newest migration one step',
        risk: 'approve',
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
      });
    }
    if (f.restoreBackup) steps.push(restoreBackupStep(t, f.pg));
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
