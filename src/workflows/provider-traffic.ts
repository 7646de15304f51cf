/**
 * Error rates over a short window measured now, from two readings of the gateway's cumulative
 * /metrics counters with a durable timer between them. The SLA monitor's own rates cover the last
 * 300 s, so they keep showing an outage minutes after it ended; a fresh window shows the present.
 */
import { sleep } from '@temporalio/workflow';
import { acts } from './kernel';
import type { TrafficCounters } from '../activities/target-api/providers';

export interface Rate {
  calls: number;
  errors: number;
  /** Errors per call in percent; 0 when there were no calls. */
  pct: number;
}

export interface TrafficWindow {
  seconds: number;
  providers: Record<string, Rate>;
  /** Chat completions answered by the gateway, and those that failed with a 5xx. */
  chat: Rate;
}

function rate(calls: number, errors: number): Rate {
  // A restarted api resets its counters: a negative difference means "no data", not negative traffic.
  const c = Math.max(0, calls);
  const e = Math.max(0, Math.min(errors, c));
  return { calls: c, errors: e, pct: c > 0 ? Math.round((e / c) * 1000) / 10 : 0 };
}

/** Pure: the rates between two counter readings. */
export function windowBetween(a: TrafficCounters, b: TrafficCounters, seconds: number): TrafficWindow {
  const providers: Record<string, Rate> = {};
  for (const [name, after] of Object.entries(b.providers)) {
    const before = a.providers[name] ?? { ok: 0, error: 0 };
    const errors = after.error - before.error;
    providers[name] = rate(after.ok - before.ok + errors, errors);
  }
  return { seconds, providers, chat: rate(b.chat.total - a.chat.total, b.chat.errors - a.chat.errors) };
}

/** Reads the counters, waits `seconds` (a durable timer), reads again; undefined if /metrics is unreachable. */
export async function measureTraffic(target: string, seconds: number): Promise<TrafficWindow | undefined> {
  const a = await acts.trafficCounters({ target });
  await sleep(seconds * 1000);
  const b = await acts.trafficCounters({ target });
  if (!a.available || !b.available) return undefined;
  return windowBetween(a, b, seconds);
}

export function describeRate(r: Rate | undefined): string {
  return r && r.calls > 0 ? `${r.pct}% of ${r.calls} calls failed` : 'no calls';
}
