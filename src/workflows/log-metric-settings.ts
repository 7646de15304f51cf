/**
 * Log texts and metric names are per-target settings (`logs.*`, `metrics.*`) that activities resolve;
 * workflow code never reads them. Incidents begun before that replay with the replica's names, read
 * the way they were then: `usesLogMetricSettings()` tells the two apart (a patch marker in the history).
 */
import { patched } from '@temporalio/workflow';
import { acts } from './kernel';

export const LOG_METRIC_SETTINGS_PATCH = 'target-signal-settings';

/** True for incidents that read the target's log and metric settings; false when replaying older ones. */
export function usesLogMetricSettings(): boolean {
  return patched(LOG_METRIC_SETTINGS_PATCH);
}

export interface PoolGauge {
  available: boolean;
  error?: string;
  total: number;
  idle: number;
  waiting: number;
  max: number;
}

/** The replica's pool gauges, as incidents begun before the metric settings read them. */
const LEGACY_POOL_PREFIX = 'alfred_db_pool_';

/** The api's database pool gauge from /metrics (`metrics.dbPool*`); absent gauges read as 0. */
export async function readDbPool(target: string, useSettings: boolean): Promise<PoolGauge> {
  if (useSettings) {
    const m = await acts.httpMetrics({ target, prefixes: [], gauges: ['dbPoolTotal', 'dbPoolIdle', 'dbPoolWaiting', 'dbPoolMax'] });
    const g = m.gauges ?? {};
    return {
      available: m.available,
      ...(m.error ? { error: m.error } : {}),
      total: g.dbPoolTotal ?? 0,
      idle: g.dbPoolIdle ?? 0,
      waiting: g.dbPoolWaiting ?? 0,
      max: g.dbPoolMax ?? 0,
    };
  }
  const m = await acts.httpMetrics({ target, prefixes: [LEGACY_POOL_PREFIX] });
  const v = (k: string): number => m.values[`${LEGACY_POOL_PREFIX}${k}`] ?? 0;
  return { available: m.available, ...(m.error ? { error: m.error } : {}), total: v('total'), idle: v('idle'), waiting: v('waiting'), max: v('max') };
}
