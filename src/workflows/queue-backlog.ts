/**
 * Queue backlog (seeds 003, 004): "Scale worker horizontally, inspect stuck jobs, confirm Redis
 * memory and connection counts"; more than 1,000 queued jobs needs action. Diagnose-first: the
 * report says how deep the queue is, whether consumers take jobs at all, how old the oldest job is
 * and how Redis is doing. Remedy: a stopped worker is started (auto); worker replicas are added
 * (approve) and removed again once the queue has drained (auto).
 */
import { patched, sleep } from '@temporalio/workflow';
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
import type { IncidentInput, IncidentRecord, Severity } from './contracts';
import { renderSupportReport, reportStatus, type SupportCheck } from './support-report';
import { recordChecks } from './support-evidence';
import type { QueueConfig, QueueSnapshot } from '../activities/redis/queue';
import { setting } from './threshold-settings';
import { defineRunbook, type Decision, type StepIdOf } from './shape';

/** What this runbook is: the catalog, routes, the client script and the README's table read it. */
export const meta = defineRunbook({
  name: 'queueBacklog',
  scenario: 'SUP-QUEUE',
  title: 'Queue backlog',
  severity: 2,
  source: 'seeds 003, 004',
  alerts: ['QueueBacklog'],
  diagnostics: [
    'queue depth against the configured threshold (seed 004: more than 1,000 needs action)',
    'oldest job and its age; whether consumers take jobs at all (sampled)',
    'Redis memory and clients (connected, blocked consumers)',
    'worker container and its replicas',
  ],
  steps: [
    { id: 'start-worker', title: 'Start the stopped worker container', risk: 'auto' },
    { id: 'scale-out', title: 'Add worker replicas (created from the worker container)', risk: 'approve' },
    { id: 'scale-back', title: 'After the queue drains, remove the extra replicas', risk: 'auto' },
  ],
  verify: 'queue depth below the threshold',
});

/** The queue sample as the activity took it (depths, oldest job, clients), and what surrounds it. */
export interface QueueFacts extends Omit<QueueSnapshot, 'ok' | 'error'> {
  queue: QueueConfig;
  redisOk: boolean;
  redisError?: string;
  memoryUsedPct?: number;
  worker: { name: string; running: boolean; status: string };
  replicas: number;
  /**
   * A queue key that is no queue, and a job whose age its hash does not give, are unknown, never an
   * empty queue or a young job (absent in facts of incidents started before this rule).
   */
  evidenceRule?: boolean;
}

export type QueueStep = StepIdOf<typeof meta>;

export interface QueueDecision extends Decision<QueueStep> {
  /** Consumers are not taking jobs (nothing taken while sampling, or the oldest job is older than allowed). */
  stuck: boolean;
}

/** The defaults of `queue.drainedPct` and `queue.redisMemoryPct`, and their values in incidents begun before they were settings. */
export const DRAINED_PCT = 10;
export const REDIS_MEMORY_PCT = 90;

/** The queue is "drained" once it is down to `queue.drainedPct` of the threshold (default a tenth). */
export const drainedBelow = (q: QueueConfig): number => Math.ceil((q.depthThreshold * setting(q.drainedPct, DRAINED_PCT)) / 100);

async function diagnose(ctx: RunbookContext): Promise<QueueFacts> {
  const t = ctx.target;
  const queue = await acts.queueConfig({ target: t });
  const ref = { target: t, component: queue.component };
  const [stats, worker, set] = await Promise.all([
    acts.queueStats({ target: t, sampleMs: 3000 }),
    acts.containerState(ref),
    acts.listReplicas(ref),
  ]);
  const replicas = set.replicas.filter((r) => r.running).length;
  const { ok, error, ...sample } = stats;
  const facts: QueueFacts = {
    queue,
    redisOk: ok,
    ...(error ? { redisError: error } : {}),
    ...sample,
    worker: { name: worker.name, running: worker.running, status: worker.status },
    replicas,
    // Incidents recorded before this rule read a key that is no queue as an empty one, and replay so.
    ...(patched('evidence-before-conclusions') ? { evidenceRule: true } : {}),
  };
  recordChecks(ctx, queueChecks(facts));
  if (stats.ok) {
    const mem = await acts.redisMemory({ target: t });
    facts.memoryUsedPct = mem.usedPct;
    ctx.finding(
      'Redis memory',
      mem.maxmemoryBytes === 0 || mem.usedPct < setting(queue.redisMemoryPct, REDIS_MEMORY_PCT),
      `${(mem.usedBytes / 1048576).toFixed(1)} MB used (${mem.maxmemoryBytes ? `${mem.usedPct}% of maxmemory` : 'no maxmemory'})`,
    );
  }
  return facts;
}

/** Why the queue's depth is not known although Redis answered (a key that is no queue), or undefined. Pure. */
export function depthUnobserved(s: { depth: number; known?: boolean }, key: string): string | undefined {
  return s.depth === 0 && s.known === false
    ? `${key} is neither a list in Redis nor among RQ's queues (rq:queues) (setting queue.key)`
    : undefined;
}

/** The checks of the report and the findings, from the facts; a signal not observed is unknown. */
export function queueChecks(f: QueueFacts): SupportCheck[] {
  if (!f.redisOk) return [{ check: 'Redis', ok: false, detail: `unreachable: ${f.redisError ?? 'no answer'}` }];
  const age = f.oldest?.ageSeconds;
  const depthUnknown = f.evidenceRule ? depthUnobserved(f, f.queue.key) : undefined;
  const ageUnknown = f.evidenceRule === true && f.oldest !== undefined && age === undefined;
  return [
    depthUnknown
      ? { check: `queue depth (LLEN ${f.queue.key})`, ok: false, unknown: true, detail: depthUnknown }
      : {
          check: `queue depth (LLEN ${f.queue.key})`,
          ok: f.depth < f.queue.depthThreshold,
          detail: `${f.depth} jobs (threshold ${f.queue.depthThreshold})`,
        },
    depthUnknown
      ? { check: 'consumers taking jobs', ok: false, unknown: true, detail: `the queue ${f.queue.key} was not read` }
      : {
          check: 'consumers taking jobs',
          ok: f.depth === 0 || f.oldestTaken || f.depthAfter < f.depth,
          detail: `${f.depth} → ${f.depthAfter} in ${f.sampleMs / 1000} s; oldest job ${f.oldestTaken ? 'taken' : 'not taken'}`,
        },
    ageUnknown
      ? {
          check: 'oldest job',
          ok: false,
          unknown: true,
          detail: `${f.oldest?.id ?? '?'} (${f.oldest?.kind ?? '?'}): its job hash gives no enqueued_at or created_at, so its age is not known`,
        }
      : {
          check: 'oldest job',
          ok: age === undefined || age < f.queue.stuckAfterSeconds,
          detail: f.oldest
            ? `${f.oldest.id ?? '?'} (${f.oldest.kind ?? '?'})${age !== undefined ? `, waiting ${age} s` : ''}`
            : 'queue empty',
        },
    {
      check: 'Redis clients',
      ok: true,
      detail: `${f.connectedClients} connected, ${f.blockedClients} blocked (waiting consumers)`,
    },
    {
      check: `${f.queue.component} container`,
      ok: f.worker.running,
      detail: `${f.worker.name} ${f.worker.status}; ${f.replicas} extra replica(s) running`,
    },
  ];
}

/** Pure decision over the findings. */
export function planQueueBacklog(f: QueueFacts): QueueDecision {
  const q = f.queue;
  if (!f.redisOk) {
    return {
      diagnosis: `the queue's Redis does not answer (${f.redisError ?? 'no reply'})`,
      escalate: 'Redis is unreachable, so the queue cannot be read: run the cacheFailure runbook first',
      steps: [],
      stuck: false,
    };
  }
  const unseen = f.evidenceRule ? depthUnobserved(f, q.key) : undefined;
  if (unseen) {
    return {
      diagnosis: `the depth of queue ${q.key} could not be read: ${unseen}`,
      escalate: `could not observe queue depth (LLEN ${q.key}): ${unseen}`,
      steps: [],
      stuck: false,
    };
  }
  const noProgress = f.depth > 0 && !f.oldestTaken && f.depthAfter >= f.depth;
  const tooOld = (f.oldest?.ageSeconds ?? 0) >= q.stuckAfterSeconds;
  const stuck = noProgress || tooOld;
  if (f.depth < q.depthThreshold) {
    return {
      diagnosis: `queue ${q.key} holds ${f.depth} jobs, below the threshold of ${q.depthThreshold}${stuck ? '; its consumers look stalled, watch it' : ''}`,
      falseAlarm: true,
      steps: [],
      stuck,
    };
  }
  const why = stuck
    ? `consumers are not taking jobs (${noProgress ? `none taken in ${f.sampleMs / 1000} s` : ''}${noProgress && tooOld ? ', ' : ''}${tooOld ? `oldest job waiting ${f.oldest?.ageSeconds} s` : ''})`
    : `consumers are slower than producers (${f.depth} → ${f.depthAfter} in ${f.sampleMs / 1000} s)`;
  const base = `queue ${q.key} holds ${f.depth} jobs (threshold ${q.depthThreshold}); ${why}`;
  const rootCause = !f.worker.running
    ? `the ${q.component} container is ${f.worker.status}`
    : stuck
      ? `${f.worker.name} is running but not consuming (a hung worker or stuck jobs)`
      : 'not enough consumers for the incoming jobs';
  if (f.worker.running && f.replicas >= q.maxReplicas) {
    return {
      diagnosis: `${base}; already ${f.replicas} extra replicas (the configured maximum)`,
      rootCause,
      escalate: `backlog persists with ${f.replicas} extra ${q.component} replicas: look at the jobs and the consumers`,
      steps: [],
      stuck,
    };
  }
  const steps: QueueStep[] = [];
  if (!f.worker.running) steps.push('start-worker');
  if (f.replicas < q.maxReplicas) steps.push('scale-out');
  steps.push('scale-back');
  return { diagnosis: base, rootCause, steps, stuck };
}

/** The ticket report (seed 001 templates), from the facts and the plan. Pure. */
export function queueReport(
  f: QueueFacts,
  p: QueueDecision,
  meta: { target: string; incidentId: string; at: string; severity: Severity },
): string {
  const q = f.queue;
  const status = reportStatus(p);
  const solution = p.steps
    .map((s) =>
      s === 'start-worker'
        ? `start ${f.worker.name}`
        : s === 'scale-out'
          ? `add ${q.maxReplicas - f.replicas} ${q.component} replica(s) (after approval)`
          : `remove the extra replicas once fewer than ${drainedBelow(q)} jobs wait`,
    )
    .join('; then ');
  // The customer reply of an open case has no solution line: the proposal goes to the next steps.
  const nextSteps: string[] = solution && status === 'mitigation-proposed' ? [`Proposed fix: ${solution}.`] : [];
  if (p.stuck && f.worker.running)
    nextSteps.push(
      `Inspect ${f.worker.name}'s logs: it runs but does not take jobs; restart it once the backlog is gone.`,
    );
  if ((f.memoryUsedPct ?? 0) >= 90)
    nextSteps.push(`Redis memory at ${f.memoryUsedPct}% of maxmemory: a growing queue may soon refuse writes.`);
  if (p.escalate) nextSteps.push(p.escalate);
  return renderSupportReport({
    title: `Queue backlog on ${meta.target}`,
    incidentId: meta.incidentId,
    at: meta.at,
    severity: meta.severity,
    issue: `background jobs on ${q.key} are delayed (${f.depth} waiting)`,
    status,
    verdict: p.diagnosis,
    ...(p.rootCause ? { rootCause: p.rootCause } : {}),
    ...(solution ? { solution } : {}),
    verification: `queue depth below ${q.depthThreshold}`,
    facts: [
      ['queue', q.key],
      ['threshold', `${q.depthThreshold} jobs; a job waiting ${q.stuckAfterSeconds} s is stuck`],
    ],
    checks: [
      ...queueChecks(f),
      ...(f.memoryUsedPct !== undefined
        ? [{ check: 'Redis memory', ok: f.memoryUsedPct < setting(f.queue.redisMemoryPct, REDIS_MEMORY_PCT), detail: `${f.memoryUsedPct}% of maxmemory` }]
        : []),
    ],
    ...(nextSteps.length ? { nextSteps } : {}),
  });
}

const runbook: Runbook<QueueFacts> = {
  meta,
  diagnose,
  plan(f, ctx): Plan {
    const q = f.queue;
    const p = planQueueBacklog(f);
    const ref = { target: ctx.target, component: q.component };
    const report = queueReport(f, p, {
      target: ctx.target,
      incidentId: ctx.incidentId,
      at: new Date().toISOString(),
      severity: ctx.input.severity ?? meta.severity,
    });
    const backlogged = async (): Promise<Check> => {
      const s = await acts.queueStats({ target: ctx.target, sampleMs: 0 });
      return {
        ok: s.ok && s.depth >= q.depthThreshold,
        detail: s.ok ? `${s.depth} jobs queued` : `Redis: ${s.error ?? 'no answer'}`,
      };
    };
    const steps = buildSteps(meta, p.steps, {
      'start-worker': () => ({
        resource: q.component,
        describe: `start ${f.worker.name} (${f.worker.status})`,
        precondition: async () => {
          const c = await acts.containerState(ref);
          return { ok: !c.running, detail: `${c.name} ${c.status}` };
        },
        run: async () => (await acts.startContainer(ref)).detail,
      }),
      'scale-out': () => ({
        resource: q.component,
        describe: `run ${q.maxReplicas} extra ${q.component} replica(s) created from ${f.worker.name} (now ${f.replicas})`,
        precondition: backlogged,
        run: async () => (await longActs.scaleReplicas({ ...ref, replicas: q.maxReplicas, max: q.maxReplicas })).detail,
      }),
      'scale-back': () => ({
        resource: q.component,
        describe: `wait until fewer than ${drainedBelow(q)} jobs are queued, then remove the extra ${q.component} replicas`,
        precondition: async () => {
          const set = await acts.listReplicas(ref);
          return { ok: set.replicas.length > 0, detail: `${set.replicas.length} extra replica(s)` };
        },
        run: async () => {
          const waited = await waitForDrain(ctx, q, ctx.policy.verifyDeadlineMs);
          const r = await longActs.scaleReplicas({ ...ref, replicas: 0, max: q.maxReplicas });
          return `queue down to ${waited} jobs; ${r.detail}`;
        },
      }),
    });
    return { ...p, report, steps };
  },
  async verify(ctx, f): Promise<Check> {
    const s = await acts.queueStats({ target: ctx.target, sampleMs: 0 });
    if (f.evidenceRule) return verifyQueue(s, f.queue);
    return {
      ok: s.ok && s.depth < f.queue.depthThreshold,
      detail: s.ok
        ? `${s.depth} jobs queued (threshold ${f.queue.depthThreshold})`
        : `Redis: ${s.error ?? 'no answer'}`,
    };
  },
};

/** Pure: the queue is below its threshold, as a readable sample shows it; an unreadable one shows nothing. */
export function verifyQueue(s: Pick<QueueSnapshot, 'ok' | 'error' | 'depth' | 'known'>, q: QueueConfig): Check {
  if (!s.ok)
    return {
      ok: false,
      detail: `Redis: ${s.error ?? 'no answer'}`,
      unknown: `queue depth (LLEN ${q.key}): Redis did not answer: ${s.error ?? 'no answer'}`,
    };
  const unseen = depthUnobserved(s, q.key);
  if (unseen) return { ok: false, detail: `LLEN ${q.key} = 0`, unknown: `queue depth (LLEN ${q.key}): ${unseen}` };
  return { ok: s.depth < q.depthThreshold, detail: `${s.depth} jobs queued (threshold ${q.depthThreshold})` };
}

/**
 * Durable wait (workflow timers) until the queue is drained; the replicas stay until then. A queue
 * that does not drain in time fails the step, so the incident escalates with the replicas in place.
 */
async function waitForDrain(ctx: RunbookContext, q: QueueConfig, deadlineMs: number): Promise<number> {
  const until = Date.now() + deadlineMs;
  let depth = Number.POSITIVE_INFINITY;
  for (;;) {
    const s = await acts.queueStats({ target: ctx.target, sampleMs: 0 });
    if (s.ok) depth = s.depth;
    if (depth < drainedBelow(q)) return depth;
    if (Date.now() >= until) throw new Error(`queue still holds ${depth} jobs after ${deadlineMs} ms; replicas kept`);
    await sleep(2000);
  }
}

/** Queue backlog (seeds 003, 004): scale the consumers out, and back once the queue drains. */
export async function queueBacklog(input: IncidentInput): Promise<IncidentRecord> {
  return runIncident(runbook, input);
}
