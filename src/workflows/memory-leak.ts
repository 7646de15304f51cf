/**
 * INC-11 Memory leak / OOM (seed 002). Diagnoses the api container's memory trend (sampled stats),
 * its OOM-killed flag, restart count and limit, and the service's own resident-memory gauge. A leak
 * (steady growth, an OOM kill, or memory at its limit) → restart the api with a memory limit
 * (approve): the container is recreated with HostConfig.Memory and everything else kept, so the
 * leak can no longer starve the other containers. Verify: memory stays under the limit, with no OOM
 * kill or restart, for a watch window sampled on durable timers.
 *
 * Params: `memoryLimitMb` (default: the target's limits.apiMemoryMb), `watchMs` (default
 * limits.memoryWatchMs), `component` (default api).
 */
import { patched, sleep } from '@temporalio/workflow';
import { acts, buildSteps, longActs, runIncident, type Check, type Plan, type Runbook, type RunbookContext } from './kernel';
import type { IncidentInput, IncidentRecord } from './contracts';
import type { MemoryTrend } from '../activities/containers/probes';
import type { ContainerState } from '../activities/containers/docker';
import { usesLogMetricSettings } from './log-metric-settings';
import { setting } from './threshold-settings';
import { defineRunbook, type Decision, type StepIdOf } from './shape';

/** What this runbook is: the catalog, routes, the client script and the README's table read it. */
export const meta = defineRunbook({
  name: 'memoryLeak',
  scenario: 'INC-11',
  title: 'Memory leak / OOM',
  severity: 2,
  source: 'seed 002',
  alerts: ['AlfredMemoryLeak'],
  diagnostics: [
    'container memory trend (sampled stats)',
    'OOMKilled flag and restart count',
    'current memory limit',
    'service resident memory from /metrics',
  ],
  steps: [{ id: 'restart-with-limit', title: 'Restart the api with a memory limit (recreate with HostConfig.Memory)', risk: 'approve' }],
  verify: 'memory stays under the limit, no OOM kill or restart, for the watch window (durable timers)',
});

export type MemoryStep = StepIdOf<typeof meta>;

export interface MemoryFacts {
  component: string;
  running: boolean;
  status: string;
  oomKilled: boolean;
  restartCount: number;
  limitBytes: number;
  trend: MemoryTrend;
  /** What the service itself reports (`metrics.residentMemory`), if it exposes it. */
  serviceRssBytes?: number;
  growthThresholdMbPerMin: number;
  wantedLimitMb: number;
  watchMs: number;
  /** `limits.memoryHighPct` / 100 (absent in facts of incidents begun before it was a setting). */
  highShare?: number;
  /** Signals that could not be observed, each `<check>: <why>` (absent in incidents started before this rule). */
  unobserved?: string[];
  /**
   * Seed 002's "mem_limit: 512m, memswap_limit: 512m": the limit counts only with swap equal to it
   * (no swap to leak into). The container's memory + swap limit; absent in incidents started before.
   */
  swapBytes?: number;
}

const MB = 1024 * 1024;
/** The replica's series, as incidents begun before the metric settings read it. */
const LEGACY_RSS = 'process_resident_memory_bytes';
/** Memory at this share of its limit counts as "at the limit": `limits.memoryHighPct` / 100 by default, and in incidents begun before it was a setting. */
export const MEMORY_HIGH_PCT = 90;
export const HIGH_SHARE = MEMORY_HIGH_PCT / 100;
const highShare = (f: { highShare?: number } | undefined): number => setting(f?.highShare, HIGH_SHARE);

const mb = (bytes: number): string => `${(bytes / MB).toFixed(0)} MB`;

function numberParam(params: Record<string, unknown> | undefined, key: string): number | undefined {
  const v = params?.[key];
  return typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : undefined;
}

/** HostConfig.MemorySwap in words: -1 unlimited, 0 unset (Docker then allows twice the memory limit). */
export function describeSwap(bytes: number): string {
  return bytes < 0 ? 'unlimited' : bytes === 0 ? 'unset' : mb(bytes);
}

/**
 * Pure: is the container limited as seed 002 asks, `mem_limit` at the wanted size and `memswap_limit`
 * equal to it? Without the swap rule (incidents started before it) the memory limit alone counts.
 */
export function limitInPlace(c: { memoryLimitBytes: number; memorySwapBytes?: number }, wantedBytes: number, swapRule: boolean): boolean {
  return c.memoryLimitBytes === wantedBytes && (!swapRule || c.memorySwapBytes === wantedBytes);
}

/** Growth fast and steady enough to be a leak rather than noise. */
export function isGrowing(t: MemoryTrend, thresholdMbPerMin: number): boolean {
  return t.running && t.rising && t.growthMbPerMin >= thresholdMbPerMin;
}

function nearLimit(t: MemoryTrend, share = HIGH_SHARE): boolean {
  return t.limitBytes > 0 && t.lastBytes >= t.limitBytes * share;
}

async function diagnose(ctx: RunbookContext): Promise<MemoryFacts> {
  const t = ctx.target;
  const params = ctx.input.params;
  const component = typeof params?.component === 'string' ? params.component : 'api';
  const ref = { target: t, component };
  const useSettings = usesLogMetricSettings();
  // A signal that could not be read is unknown, not healthy. (Incidents recorded before this rule
  // read it as healthy, and replay so.)
  const evidence = patched('evidence-before-conclusions');
  const [info, state, trend, metrics] = await Promise.all([
    acts.describeTarget({ target: t }),
    acts.containerState(ref),
    acts.memoryTrend({ ...ref, samples: 6, intervalMs: 1500 }),
    useSettings
      ? acts.httpMetrics({ target: t, prefixes: [], gauges: ['residentMemory'] })
      : acts.httpMetrics({ target: t, prefixes: [LEGACY_RSS] }),
  ]);
  const facts: MemoryFacts = {
    component,
    running: state.running,
    status: state.status,
    oomKilled: state.oomKilled,
    restartCount: state.restartCount,
    limitBytes: state.memoryLimitBytes,
    trend,
    growthThresholdMbPerMin: info.thresholds.memoryGrowthMbPerMin,
    wantedLimitMb: numberParam(params, 'memoryLimitMb') ?? info.limits.apiMemoryMb,
    watchMs: numberParam(params, 'watchMs') ?? info.limits.memoryWatchMs,
    highShare: setting(info.limits.memoryHighPct, MEMORY_HIGH_PCT) / 100,
  };
  const unobserved: string[] = [];
  const unknown = (check: string, why: string): void => {
    ctx.unknown(check, why);
    unobserved.push(`${check}: ${why}`);
  };
  if (evidence) facts.unobserved = unobserved;
  // Seed 002's memswap_limit beside mem_limit. (Incidents recorded before it looked at the memory limit
  // only, and replay so.)
  const swapRule = patched('seed-steps');
  if (swapRule) facts.swapBytes = state.memorySwapBytes ?? 0;
  ctx.finding(
    `${component} container`,
    state.running && !state.oomKilled,
    `${state.name} ${state.status}${state.oomKilled ? ', OOM-killed' : ''}, ${state.restartCount} restarts, memory limit ${state.memoryLimitBytes ? mb(state.memoryLimitBytes) : 'none'}` +
      (swapRule ? `, memory + swap ${describeSwap(state.memorySwapBytes ?? 0)}` : ''),
  );
  if (evidence && (!trend.running || trend.unreadable)) {
    unknown('memory trend (container stats)', trend.unreadable ?? `no running ${component} container to sample (${state.status})`);
  } else if (trend.running) {
    ctx.finding(
      'memory trend (container stats)',
      !isGrowing(trend, facts.growthThresholdMbPerMin) && !nearLimit(trend, highShare(facts)),
      `${trend.samples.map(mb).join(' → ')}: ${trend.growthMbPerMin} MB/min${trend.rising ? ', rising steadily' : ''} (threshold ${facts.growthThresholdMbPerMin} MB/min)`,
    );
  }
  const rss = useSettings ? metrics.gauges?.residentMemory : metrics.values[LEGACY_RSS];
  if (metrics.available && rss !== undefined) {
    facts.serviceRssBytes = rss;
    ctx.finding('service resident memory (/metrics)', true, mb(rss));
  } else if (evidence && useSettings) {
    unknown('service resident memory (/metrics)', metrics.available ? (metrics.missing ?? []).join('; ') : `/metrics unavailable: ${metrics.error ?? 'no answer'}`);
  }
  return facts;
}

/** Pure decision over the findings. */
export function planMemoryLeak(f: MemoryFacts): Decision<MemoryStep> {
  const limit = f.limitBytes ? `limit ${mb(f.limitBytes)}` : 'no memory limit';
  if (f.oomKilled) {
    return {
      diagnosis: `${f.component} was OOM-killed (${f.restartCount} restarts, ${limit}, now ${f.status})`,
      rootCause: `memory leak in ${f.component}: killed for memory`,
      steps: ['restart-with-limit'],
    };
  }
  if (isGrowing(f.trend, f.growthThresholdMbPerMin)) {
    return {
      diagnosis: `${f.component} memory grows ${f.trend.growthMbPerMin} MB/min without falling back (now ${mb(f.trend.lastBytes)}, ${limit})`,
      rootCause: `memory leak in ${f.component}`,
      steps: ['restart-with-limit'],
    };
  }
  if (nearLimit(f.trend, highShare(f))) {
    return {
      diagnosis: `${f.component} uses ${mb(f.trend.lastBytes)} of its ${mb(f.limitBytes)} limit`,
      rootCause: `${f.component} memory at its limit`,
      steps: ['restart-with-limit'],
    };
  }
  if (f.unobserved?.length) {
    // Steady where observed; the kernel escalates a false alarm while anything is unobserved.
    return {
      diagnosis: `${f.component} never OOM-killed (${limit}); could not observe ${f.unobserved.join('; ')}`,
      falseAlarm: true,
      steps: [],
    };
  }
  return {
    diagnosis: `${f.component} memory steady at ${mb(f.trend.lastBytes)} (${f.trend.growthMbPerMin} MB/min, ${limit}), never OOM-killed`,
    falseAlarm: true,
    steps: [],
  };
}

/**
 * Pure: one sample of the watch, or undefined while memory stays under the limit. Stats without a
 * memory usage are no measurement: "under the limit" would be read from nothing. (Incidents started
 * before this rule read them as 0 bytes, and replay so.)
 */
export function watchRound(
  state: Pick<ContainerState, 'name' | 'status' | 'running' | 'oomKilled' | 'startedAt' | 'memoryLimitBytes'> & { memorySwapBytes?: number },
  stats: { memoryBytes: number; unreadable?: string },
  startedAt: string,
  limit: number,
  f: Pick<MemoryFacts, 'unobserved' | 'highShare' | 'swapBytes'>,
): Check | undefined {
  if (!state.running || state.oomKilled || state.startedAt !== startedAt) {
    return { ok: false, detail: `${state.name} ${state.status}${state.oomKilled ? ', OOM-killed' : ''} during the watch` };
  }
  if (f.unobserved && stats.unreadable) return { ok: false, detail: stats.unreadable, unknown: `memory during the watch: ${stats.unreadable}` };
  if (state.memoryLimitBytes !== limit) return { ok: false, detail: `memory limit is ${mb(state.memoryLimitBytes)}, not ${mb(limit)}` };
  if (f.swapBytes !== undefined && state.memorySwapBytes !== limit) {
    return { ok: false, detail: `memory + swap limit is ${describeSwap(state.memorySwapBytes ?? 0)}, not ${mb(limit)} (memswap_limit = mem_limit)` };
  }
  if (stats.memoryBytes >= limit * highShare(f)) {
    return { ok: false, detail: `memory ${mb(stats.memoryBytes)} reached ${Math.round(highShare(f) * 100)}% of the ${mb(limit)} limit` };
  }
  return undefined;
}

/** Memory stays under the limit, with no OOM kill and no restart, for the whole watch window. */
async function watchMemory(ctx: RunbookContext, f: MemoryFacts): Promise<Check> {
  const ref = { target: ctx.target, component: f.component };
  const limit = f.wantedLimitMb * MB;
  const start = await acts.containerState(ref);
  const rounds = 5;
  let peak = 0;
  for (let i = 0; i <= rounds; i++) {
    // Durable timers: the watch survives a worker restart and costs nothing while it waits.
    if (i > 0) await sleep(Math.max(1000, Math.floor(f.watchMs / rounds)));
    const [state, stats] = await Promise.all([acts.containerState(ref), acts.containerStats(ref)]);
    peak = Math.max(peak, stats.memoryBytes);
    const broken = watchRound(state, stats, start.startedAt, limit, f);
    if (broken) return broken;
  }
  return { ok: true, detail: `memory stayed under the ${mb(limit)} limit for ${Math.round(f.watchMs / 1000)} s (peak ${mb(peak)})` };
}

const runbook: Runbook<MemoryFacts> = {
  meta,
  diagnose,
  plan(f, ctx): Plan {
    const p = planMemoryLeak(f);
    const ref = { target: ctx.target, component: f.component };
    const wanted = f.wantedLimitMb * MB;
    const swapRule = f.swapBytes !== undefined;
    const steps = buildSteps(meta, p.steps, {
      'restart-with-limit': () => ({
        resource: f.component,
        describe:
          `recreate the ${f.component} container with a ${f.wantedLimitMb} MB memory limit (now ${f.limitBytes ? mb(f.limitBytes) : 'none'})` +
          `${swapRule ? ` and memory + swap equal to it (now ${describeSwap(f.swapBytes ?? 0)})` : ''}, keeping image, env, mounts and network`,
        precondition: async () => {
          const t = await acts.memoryTrend({ ...ref, samples: 3, intervalMs: 1500 });
          const leaking = !t.running || isGrowing(t, f.growthThresholdMbPerMin) || nearLimit(t, highShare(f));
          // A limit with more swap than memory is not the seed's limit yet.
          const unlimited = swapRule ? !limitInPlace(await acts.containerState(ref), wanted, true) : t.limitBytes !== wanted;
          return {
            ok: leaking || unlimited,
            detail: `${t.running ? `${mb(t.lastBytes)}, ${t.growthMbPerMin} MB/min` : 'not running'}, limit ${t.limitBytes ? mb(t.limitBytes) : 'none'}`,
          };
        },
        run: async (notBefore) => {
          const c = await acts.containerState(ref);
          // The limit already in place: a plain restart frees the leaked memory.
          if (limitInPlace(c, wanted, swapRule)) return (await acts.restartContainer({ ...ref, notBefore })).detail;
          const r = await longActs.recreateContainer({ ...ref, memoryLimitMb: f.wantedLimitMb });
          return `${r.detail}; memory limit ${f.wantedLimitMb} MB${swapRule ? `, memory + swap ${f.wantedLimitMb} MB` : ''}`;
        },
        gate: async () => {
          const h = await acts.httpHealth({ target: ctx.target });
          return { ok: h.ok, detail: h.ok ? '/health ok' : `/health ${h.error ?? h.status}` };
        },
        gateDeadlineMs: 60_000,
      }),
    });
    return { ...p, steps };
  },
  verify: watchMemory,
};

/** INC-11: memory leak / OOM. */
export async function memoryLeak(input: IncidentInput): Promise<IncidentRecord> {
  return runIncident(runbook, input);
}
