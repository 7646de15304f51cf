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
  /**
   * The gauges /metrics lacks, each with the series looked for and its setting (absent from results
   * read before the activity listed them). With any missing, the numbers below are no measurement.
   */
  missing?: string[];
  total: number;
  idle: number;
  waiting: number;
  max: number;
}

/** The replica's pool gauges, as incidents begun before the metric settings read them. */
const LEGACY_POOL_PREFIX = 'alfred_db_pool_';

/**
 * The api's database pool gauge from /metrics (`metrics.dbPool*`). Absent gauges read as 0 and are
 * listed in `missing`: a caller that follows the evidence rule reads them as unobserved
 * (`poolUnobserved`).
 */
export async function readDbPool(target: string, useSettings: boolean): Promise<PoolGauge> {
  if (useSettings) {
    const m = await acts.httpMetrics({ target, prefixes: [], gauges: ['dbPoolTotal', 'dbPoolIdle', 'dbPoolWaiting', 'dbPoolMax'] });
    const g = m.gauges ?? {};
    return {
      available: m.available,
      ...(m.error ? { error: m.error } : {}),
      ...(m.missing?.length ? { missing: m.missing } : {}),
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

/** Why the pool could not be observed (/metrics unreachable, a gauge it lacks), or undefined when it was. */
export function poolUnobserved(m: PoolGauge): string | undefined {
  if (!m.available) return `/metrics unavailable: ${m.error ?? 'no answer'}`;
  if (m.missing?.length) return m.missing.join('; ');
  return undefined;
}
