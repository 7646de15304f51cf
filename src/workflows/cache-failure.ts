/**
 * INC-05 Redis / cache failure (seed 002). Crashed → restart the redis container (auto); at
 * maxmemory → evict cache keys by pattern, then raise maxmemory if still needed (each approved);
 * reachable container but no answer, or api and redis not both on the compose project's network
 * (`docker network inspect alfred_default`) → network partition, escalated to humans. Verify: PONG,
 * a write, the api seeing Redis, then the SLA cache hit rate recovering within the window (seed 002:
 * window_seconds, 300 s; param `hitRateWindowSeconds`, setting limits.cacheRecoverySeconds).
 */
import { patched, sleep } from '@temporalio/workflow';
import { acts, buildSteps, longActs, runIncident, type Check, type Plan, type Runbook, type RunbookContext } from './kernel';
import type { IncidentInput, IncidentRecord } from './contracts';
import type { RedisMemory } from '../activities/redis/redis';
import type { DependencyView, HealthResult } from '../activities/target-api/http';
import { setting } from './threshold-settings';
import type { NetworkView } from '../activities/containers/network';
import type { SlaMetrics } from '../activities/target-api/providers';
import { defineRunbook, type Decision, type StepIdOf } from './shape';

/** What this runbook is: the catalog, routes, the client script and the README's table read it. */
export const meta = defineRunbook({
  name: 'cacheFailure',
  scenario: 'INC-05',
  title: 'Redis / cache failure',
  severity: 2,
  source: 'seed 002',
  alerts: ['AlfredRedisDown', 'AlfredCacheHitRateZero', 'CacheFailure'],
  diagnostics: ['PING', 'INFO memory (used, peak)', 'CONFIG GET maxmemory', 'SLOWLOG GET 10', 'redis container state'],
  steps: [
    { id: 'restart-redis', title: 'Restart the redis container', risk: 'auto' },
    { id: 'raise-maxmemory', title: 'Raise maxmemory by half', risk: 'approve' },
    { id: 'evict-cache', title: 'Evict cache keys by pattern (SCAN + UNLINK, bounded batches)', risk: 'approve' },
  ],
  verify: 'PONG, writes accepted, /health reports redis healthy',
});

export type CacheStep = StepIdOf<typeof meta>;

export interface CacheFacts {
  pingOk: boolean;
  pingError?: string;
  containerRunning: boolean;
  containerStatus: string;
  oomKilled: boolean;
  memory?: RedisMemory;
  writeOk: boolean;
  writeError?: string;
  slowlogEntries: number;
  apiSeesRedis?: boolean;
  memoryThresholdPct: number;
  keyPattern: string;
  /** `limits.maxmemoryRaiseFactor` (absent in facts of incidents begun before it was a setting). */
  maxmemoryRaiseFactor?: number;
  /** Signals that could not be observed, each `<check>: <why>` (absent in incidents started before this rule). */
  unobserved?: string[];
  /** Seed 002's network check (absent in incidents started before the runbook made it). */
  network?: NetworkView;
  /**
   * How long, once Redis answers again, the SLA cache hit rate gets to recover (seed 002:
   * window_seconds, 300 s). Absent in incidents started before verification watched it.
   */
  hitRateWindowSeconds?: number;
}

/** Redis refuses a write for memory (`OOM command not allowed when used memory > 'maxmemory'`). */
const OOM_REFUSAL = /\bOOM\b/;

const MB = 1024 * 1024;
/** The default of `limits.maxmemoryRaiseFactor`, and its value in incidents begun before it was a setting. */
export const MAXMEMORY_RAISE_FACTOR = 1.5;

/**
 * The api's view of Redis, read by the activity through `api.fields.health.redis`. Results recorded
 * before the activity read it carry only the body: the replica's field `redis` is read there, as
 * those incidents did, so they replay unchanged.
 */
export function apiRedisView(health: HealthResult): DependencyView {
  if (health.apiRedis) return health.apiRedis;
  if (!health.body) return { state: 'unknown', detail: 'n/a' };
  const v = health.body.redis;
  return { state: v === 'healthy' ? 'healthy' : 'unhealthy', detail: String(v) };
}

const NETWORK_COMPONENTS = ['api', 'redis'];

/** The check's name for the network finding. */
export const networkCheck = (n: Pick<NetworkView, 'network'>): string => `docker network ${n.network}`;

/** Components not attached to the network, or undefined when it could not be inspected. */
export function detached(n: NetworkView | undefined): string[] {
  return n?.available ? Object.entries(n.attached).filter(([, a]) => !a).map(([c]) => c) : [];
}

function describeNetwork(n: NetworkView): string {
  if (!n.available) return `not inspected: ${n.error ?? ''}`;
  if (n.hostNetwork) return `${Object.keys(n.attached).join(' and ')} share the host network (network_mode: host): no Docker network between them`;
  return Object.entries(n.attached)
    .map(([c, a]) => `${c} ${a ? 'attached' : 'NOT attached'}`)
    .join(', ');
}

function numberParam(params: Record<string, unknown> | undefined, key: string): number | undefined {
  const v = params?.[key];
  return typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : undefined;
}

async function diagnose(ctx: RunbookContext): Promise<CacheFacts> {
  const ref = { target: ctx.target, component: 'redis' };
  const [info, ping, container, health] = await Promise.all([
    acts.describeTarget({ target: ctx.target }),
    acts.redisPing({ target: ctx.target }),
    acts.containerState(ref),
    acts.httpHealth({ target: ctx.target }),
  ]);
  // Seed 002's network partition check and hit-rate verification. (Incidents recorded before them
  // did neither, and replay so.)
  const seedSteps = patched('seed-steps');
  // A signal that could not be read is unknown, not healthy. (Incidents recorded before this rule
  // read it as healthy, and replay so.)
  const evidence = patched('evidence-before-conclusions');
  const unobserved: string[] = [];
  ctx.finding('PING', ping.ok, ping.ok ? `${ping.reply} in ${ping.latencyMs} ms` : `no answer: ${ping.error ?? 'unknown'}`);
  ctx.finding(
    'redis container',
    container.running,
    `${container.name} ${container.status}${container.oomKilled ? ' (OOM-killed)' : ''}, exit code ${container.exitCode}`,
  );
  const view = apiRedisView(health);
  const apiSeesRedis = view.state === 'unknown' ? undefined : view.state === 'healthy';
  if (apiSeesRedis !== undefined) ctx.finding('api /health redis', apiSeesRedis, view.detail);
  else if (evidence) {
    // No answer, or an answer without the configured field: the api's view is unknown, and says which setting names it.
    ctx.unknown('api /health redis', view.detail);
    unobserved.push(`api /health redis: ${view.detail}`);
  }
  // A /health answer without the configured field: the api's view is unknown, and the finding says which setting names it.
  else if (health.body && health.apiRedis) ctx.finding('api /health redis', false, `unknown: ${view.detail}`);

  const facts: CacheFacts = {
    pingOk: ping.ok,
    ...(ping.error ? { pingError: ping.error } : {}),
    containerRunning: container.running,
    containerStatus: container.status,
    oomKilled: container.oomKilled,
    writeOk: false,
    slowlogEntries: 0,
    ...(apiSeesRedis !== undefined ? { apiSeesRedis } : {}),
    memoryThresholdPct: info.thresholds.redisMemoryPct,
    keyPattern: info.cacheKeyPattern,
    // Results recorded before describeTarget returned limits have none.
    maxmemoryRaiseFactor: setting(info.limits?.maxmemoryRaiseFactor, MAXMEMORY_RAISE_FACTOR),
    ...(evidence ? { unobserved } : {}),
  };
  if (seedSteps) {
    // PING runs inside the redis container and says nothing about the path from the api: the
    // network of the compose project does.
    const network = await acts.composeNetwork({ target: ctx.target, components: NETWORK_COMPONENTS });
    facts.network = network;
    const hitRateWindow = numberParam(ctx.input.params, 'hitRateWindowSeconds') ?? info.limits.cacheRecoverySeconds;
    if (hitRateWindow > 0) facts.hitRateWindowSeconds = hitRateWindow;
    else ctx.note('recovery will not wait for the cache hit rate (limits.cacheRecoverySeconds: 0)');
    if (network.available) ctx.finding(networkCheck(network), detached(network).length === 0, describeNetwork(network));
    else {
      ctx.unknown(networkCheck(network), network.error ?? 'not inspected');
      unobserved.push(`${networkCheck(network)}: ${network.error ?? 'not inspected'}`);
    }
  }
  if (!ping.ok) return facts;

  const [memory, write, slowlog] = await Promise.all([
    acts.redisMemory({ target: ctx.target }),
    acts.redisWriteProbe({ target: ctx.target }),
    acts.redisSlowlog({ target: ctx.target, count: 10 }), // seed 002 INC-05: "redis-cli slowlog get 10"
  ]);
  facts.memory = memory;
  facts.writeOk = write.ok;
  if (write.error) facts.writeError = write.error;
  facts.slowlogEntries = slowlog.entries.length;
  const memOk = memory.maxmemoryBytes === 0 || memory.usedPct < facts.memoryThresholdPct;
  ctx.finding(
    'INFO memory / maxmemory',
    memOk,
    `used ${(memory.usedBytes / MB).toFixed(1)} MB, peak ${(memory.peakBytes / MB).toFixed(1)} MB, ` +
      `maxmemory ${(memory.maxmemoryBytes / MB).toFixed(1)} MB (${memory.usedPct}%), policy ${memory.policy}`,
  );
  ctx.finding('write probe', write.ok, write.ok ? 'SET accepted' : `SET refused: ${write.error ?? ''}`);
  ctx.finding('SLOWLOG GET 10', true, `${slowlog.entries.length} entries${slowlog.entries[0] ? `, e.g. ${slowlog.entries[0].command} ${slowlog.entries[0].micros} µs` : ''}`);
  return facts;
}

/** Pure decision over the findings. */
export function planCacheFailure(f: CacheFacts, target: string): Decision<CacheStep> {
  if (!f.containerRunning) {
    return {
      diagnosis: `redis container is ${f.containerStatus}${f.oomKilled ? ' (OOM-killed)' : ''}: crashed`,
      rootCause: f.oomKilled ? 'Redis was killed for memory' : 'Redis process exited',
      steps: ['restart-redis'],
    };
  }
  const cut = detached(f.network);
  const net = f.network ? `; ${networkCheck(f.network)}: ${describeNetwork(f.network)}` : '';
  if (!f.pingOk) {
    return {
      diagnosis: `redis container is running but does not answer PING (${f.pingError ?? 'no reply'}): network partition or hung process${net}`,
      rootCause: 'Redis unreachable while its container runs',
      escalate: `Redis on ${target} is running but unreachable: check the container network (no automatic remedy)`,
      steps: [],
    };
  }
  if (f.network && cut.length > 0) {
    return {
      diagnosis: `Redis answers PONG in its container, but ${cut.join(' and ')} ${cut.length > 1 ? 'are' : 'is'} not attached to ${f.network.network}: network partition${net}`,
      rootCause: `network partition: ${cut.join(' and ')} off the ${f.network.network} network`,
      escalate: `${cut.join(' and ')} of ${target} not attached to the Docker network ${f.network.network}: reconnect (docker network connect ${f.network.network} <container>) or recreate the service (no automatic remedy)`,
      steps: [],
    };
  }
  const memoryFull = f.memory !== undefined && f.memory.maxmemoryBytes > 0 && f.memory.usedPct >= f.memoryThresholdPct;
  if (f.unobserved && !f.writeOk && !memoryFull && !OOM_REFUSAL.test(f.writeError ?? '')) {
    // A write refused for something else than memory (read-only replica, failed snapshots, ACL):
    // evicting keys or raising maxmemory would not fix it.
    return {
      diagnosis: `redis refuses writes, but not for memory (${f.memory?.usedPct ?? '?'}% of maxmemory used): ${f.writeError ?? 'no reason given'}`,
      rootCause: 'Redis refuses writes',
      escalate: `Redis on ${target} refuses writes for another reason than memory (${f.writeError ?? 'no reason given'}): no automatic remedy`,
      steps: [],
    };
  }
  const atLimit = !f.writeOk || memoryFull;
  if (atLimit) {
    return {
      diagnosis: `redis at maxmemory (${f.memory?.usedPct ?? '?'}% used${f.writeOk ? '' : ', writes refused'})`,
      rootCause: 'Redis memory exhausted (OOM): cache keys filled maxmemory',
      steps: ['evict-cache', 'raise-maxmemory'],
    };
  }
  if (f.apiSeesRedis === false) {
    // Nothing to fix in Redis; the api reconnects by itself. Verification waits for it (and escalates if it never does).
    return { diagnosis: 'Redis is healthy but the api has not reconnected to it yet: waiting for recovery', steps: [] };
  }
  if (f.unobserved?.length) {
    // Healthy where observed; the kernel escalates a false alarm while anything is unobserved.
    return { diagnosis: `Redis healthy where observed: PONG, writes accepted, memory within limits; could not observe ${f.unobserved.join('; ')}`, falseAlarm: true, steps: [] };
  }
  return { diagnosis: `Redis healthy: PONG, writes accepted, memory within limits`, falseAlarm: true, steps: [] };
}

/**
 * Pure: recovery is PONG, a write accepted, and the api seeing Redis healthy. Under the evidence rule
 * an api view that cannot be read (no answer, or no such field) is not recovery: it is unknown.
 * (Incidents started before the rule let it neither pass nor fail, and replay so.)
 */
export function verifyCache(
  ping: { ok: boolean; reply?: string },
  write: { ok: boolean },
  view: DependencyView,
  f: Pick<CacheFacts, 'unobserved'>,
): Check {
  const detail = `PING ${ping.ok ? ping.reply : 'failed'}, write ${write.ok ? 'ok' : 'refused'}, api sees redis ${view.state === 'unknown' ? `n/a (${view.detail})` : view.detail}`;
  if (f.unobserved && view.state === 'unknown') {
    if (!ping.ok || !write.ok) return { ok: false, detail };
    return { ok: false, detail, unknown: `api /health redis: ${view.detail}` };
  }
  return { ok: ping.ok && write.ok && view.state !== 'unhealthy', detail };
}

/** One reading of the SLA cache hit rate (seed 002: `jq '.metrics.cache_hit_rate_pct'`), or why there is none. */
export interface HitRateReading {
  pct?: number;
  why?: string;
}

/** Pure: the hit rate in an SLA answer; no answer, no field, or no requests in the window is no reading. */
export function readHitRate(m: Pick<SlaMetrics, 'available' | 'error' | 'cacheHitRatePct' | 'requestCount' | 'windowSeconds'>): HitRateReading {
  const src = 'GET /v1/notifications/sla/metrics';
  if (!m.available) return { why: `${src} unavailable: ${m.error ?? 'no answer'}` };
  if (m.cacheHitRatePct === undefined) return { why: `${src} answered without cache_hit_rate_pct` };
  if (m.requestCount === 0) return { why: `no requests in the SLA window (${m.windowSeconds || 300} s): a hit rate of nothing` };
  return { pct: m.cacheHitRatePct };
}

/**
 * Pure: has the hit rate been seen recovering (above 0 %, or rising since the first reading)? Undefined
 * while it has not and the window is still open; at its end, a failure when it was read and stayed at
 * 0 %, unknown when it was never read.
 */
export function hitRateVerdict(readings: HitRateReading[], windowSeconds: number, windowOver: boolean): Check | undefined {
  const seen = readings.filter((r): r is { pct: number } => r.pct !== undefined).map((r) => r.pct);
  const first = seen[0];
  const last = seen[seen.length - 1];
  if (last !== undefined && first !== undefined && (last > 0 || last > first)) {
    return { ok: true, detail: `cache hit rate ${last}%${seen.length > 1 && last > first ? ` (from ${first}%)` : ''}: recovering` };
  }
  if (!windowOver) return undefined;
  if (last === undefined) {
    const why = readings[readings.length - 1]?.why ?? 'not read';
    return { ok: false, detail: `cache hit rate not observed in ${windowSeconds} s: ${why}`, unknown: `cache hit rate (SLA cache_hit_rate_pct): ${why}` };
  }
  return { ok: false, detail: `cache hit rate stayed at ${last}% for ${windowSeconds} s (${seen.length} readings)` };
}

/** Reads the SLA hit rate on durable timers until it is seen recovering or the window ends. */
async function watchHitRate(ctx: RunbookContext, windowSeconds: number): Promise<Check> {
  const start = Date.now();
  const every = Math.max(1000, Math.min(10_000, Math.floor((windowSeconds * 1000) / 10)));
  const readings: HitRateReading[] = [];
  for (;;) {
    readings.push(readHitRate(await acts.slaMetrics({ target: ctx.target })));
    const over = Date.now() + every > start + windowSeconds * 1000;
    const v = hitRateVerdict(readings, windowSeconds, over);
    if (v) return v;
    await sleep(every);
  }
}

const runbook: Runbook<CacheFacts> = {
  meta,
  diagnose,
  plan(f, ctx): Plan {
    const keyPattern = f.keyPattern;
    const p = planCacheFailure(f, ctx.target);
    const ref = { target: ctx.target, component: 'redis' };
    const atLimit = async (): Promise<Check> => {
      const [m, w] = await Promise.all([acts.redisMemory({ target: ctx.target }), acts.redisWriteProbe({ target: ctx.target })]);
      const still = !w.ok || (m.maxmemoryBytes > 0 && m.usedPct >= f.memoryThresholdPct);
      return { ok: still, detail: `${m.usedPct}% of maxmemory used, writes ${w.ok ? 'accepted' : 'refused'}` };
    };
    const steps = buildSteps(meta, p.steps, {
      'restart-redis': () => ({
        resource: 'redis',
        describe: `restart the redis container of ${ctx.target}`,
        precondition: async () => {
          const [c, ping] = await Promise.all([acts.containerState(ref), acts.redisPing({ target: ctx.target })]);
          return { ok: !c.running || !ping.ok, detail: `container ${c.status}, PING ${ping.ok ? 'ok' : 'failing'}` };
        },
        run: async (notBefore) => (await acts.restartContainer({ ...ref, notBefore })).detail,
      }),
      'evict-cache': () => ({
        resource: 'redis',
        describe: `delete keys matching ${keyPattern} with SCAN + UNLINK in bounded batches`,
        precondition: atLimit,
        run: async () => {
          const r = await longActs.unlinkByPattern({ target: ctx.target, pattern: keyPattern });
          return `unlinked ${r.deleted} keys matching ${keyPattern}${r.done ? '' : ' (stopped at the cap)'}`;
        },
      }),
      'raise-maxmemory': () => ({
        resource: 'redis',
        describe: `raise maxmemory from ${((f.memory?.maxmemoryBytes ?? 0) / MB).toFixed(0)} MB to ${(((f.memory?.maxmemoryBytes ?? 0) * setting(f.maxmemoryRaiseFactor, MAXMEMORY_RAISE_FACTOR)) / MB).toFixed(0)} MB`,
        precondition: atLimit,
        run: async () => (await acts.raiseMaxmemory({ target: ctx.target, bytes: Math.round((f.memory?.maxmemoryBytes ?? 0) * setting(f.maxmemoryRaiseFactor, MAXMEMORY_RAISE_FACTOR)) })).detail,
      }),
    });
    return { ...p, steps };
  },
  async verify(ctx, f): Promise<Check> {
    const [ping, write, health] = await Promise.all([
      acts.redisPing({ target: ctx.target }),
      acts.redisWriteProbe({ target: ctx.target }),
      acts.httpHealth({ target: ctx.target }),
    ]);
    const redisBack = verifyCache(ping, write, apiRedisView(health), f);
    if (!redisBack.ok || f.hitRateWindowSeconds === undefined) return redisBack;
    // Seed 002: "Cache hit rate should recover within window_seconds (300s)".
    const hits = await watchHitRate(ctx, f.hitRateWindowSeconds);
    return { ...hits, detail: `${redisBack.detail}; ${hits.detail}` };
  },
};

/** INC-05: Redis / cache failure. */
export async function cacheFailure(input: IncidentInput): Promise<IncidentRecord> {
  return runIncident(runbook, input);
}
