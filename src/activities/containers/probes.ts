/**
 * Measurements that take a few seconds: memory trend of a container (sampled stats) and the latency
 * an ordinary client sees right now. Each is one bounded activity, well inside its timeout.
 */
import type Docker from 'dockerode';
import type { ActivityDeps } from '../engine/deps';
import { dockerFor, targetConfig } from '../engine/deps';
import { describeError } from '../engine/errors';
import { findRunningContainer } from './containers';

export interface MemoryTrend {
  running: boolean;
  samples: number[];
  /** Resident memory at the last sample. */
  lastBytes: number;
  /** 0 when the container has no limit. */
  limitBytes: number;
  growthMbPerMin: number;
  /** At least three in four samples higher than the one before: steady growth rather than noise. */
  rising: boolean;
  /** Set when the container's stats report no memory usage: the samples are then no measurement. */
  unreadable?: string;
}

const MB = 1024 * 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] as number;
}

/**
 * Memory in use as `docker stats` shows it: usage minus reclaimable file cache (inactive_file on
 * cgroup v2, total_inactive_file or cache on v1). Raw usage counts page cache, which the kernel
 * drops at will: a leak detector reading it sees dips that are not the process freeing anything.
 */
export function workingSet(m: { usage?: number; stats?: Record<string, number> }): number {
  const st = m.stats ?? {};
  const reclaimable = st.inactive_file ?? st.total_inactive_file ?? st.cache ?? 0;
  return Math.max(0, (m.usage ?? 0) - reclaimable);
}

export function createProbeActivities(deps: ActivityDeps) {
  const doFetch = deps.fetch ?? fetch;

  const liveContainer = (target: string, component: string): Promise<Docker.ContainerInfo | undefined> =>
    findRunningContainer(deps, target, component);

  /** Samples a container's memory `samples` times, `intervalMs` apart (at most 20 s in all). */
  async function memoryTrend(input: { target: string; component: string; samples?: number; intervalMs?: number }): Promise<MemoryTrend> {
    const n = Math.min(10, Math.max(2, input.samples ?? 4));
    const interval = Math.min(5000, Math.max(200, input.intervalMs ?? 1500));
    const c = await liveContainer(input.target, input.component);
    if (!c) return { running: false, samples: [], lastBytes: 0, limitBytes: 0, growthMbPerMin: 0, rising: false };
    const container = dockerFor(deps, input.target).getContainer(c.Id);
    const limitBytes = (await container.inspect()).HostConfig.Memory ?? 0;
    const samples: number[] = [];
    let unreported = 0;
    for (let i = 0; i < n; i++) {
      if (i > 0) await sleep(interval);
      const s = (await container.stats({ stream: false })) as unknown as Docker.ContainerStats;
      if (typeof s.memory_stats?.usage !== 'number') unreported++;
      samples.push(workingSet(s.memory_stats ?? {}));
    }
    const first = samples[0] ?? 0;
    const last = samples[samples.length - 1] ?? 0;
    const minutes = ((n - 1) * interval) / 60_000;
    return {
      running: true,
      samples,
      lastBytes: last,
      limitBytes,
      growthMbPerMin: Math.round(((last - first) / MB / minutes) * 10) / 10,
      // Stats jitter by a few MB (page cache, GC): one dip among the samples does not hide a leak.
      rising: last > first && samples.filter((v, i) => i > 0 && v > (samples[i - 1] as number)).length >= 0.75 * (n - 1),
      ...(unreported > 0
        ? { unreadable: `the container stats of ${input.component} report no memory usage (${unreported} of ${n} samples)` }
        : {}),
    };
  }

  /** `samples` sequential GETs of a path (default /health); p95 and failures as a client sees them. */
  async function latencyProbe(input: { target: string; samples?: number; path?: string }): Promise<{ p95Ms: number; maxMs: number; failures: number; samples: number; error?: string }> {
    const t = targetConfig(deps, input.target);
    const n = Math.min(50, Math.max(1, input.samples ?? 10));
    const url = new URL(input.path ?? '/health', t.baseUrl).toString();
    const times: number[] = [];
    let failures = 0;
    let error: string | undefined;
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      try {
        const res = await doFetch(url, { signal: AbortSignal.timeout(5000) });
        await res.arrayBuffer();
        if (res.status >= 500) failures++;
      } catch (err) {
        failures++;
        error = describeError(err);
      }
      times.push(performance.now() - t0);
    }
    times.sort((a, b) => a - b);
    return { p95Ms: Math.round(percentile(times, 95)), maxMs: Math.round(times[times.length - 1] ?? 0), failures, samples: n, ...(error ? { error } : {}) };
  }

  return { memoryTrend, latencyProbe };
}
