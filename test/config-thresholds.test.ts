/**
 * Thresholds the seeds do not state are per-target settings. Their defaults are the values the
 * runbooks used as constants (and still use when replaying incidents begun before the settings), and
 * a value out of range is refused when the configuration is read.
 */
import { TargetSchema } from '../src/config';
import { HIGH_ERROR_RATE_PCT, RECENT_DEPLOY_MINUTES } from '../src/workflows/bad-release';
import { DEPLOY_WINDOW_MINUTES } from '../src/workflows/auth-failure';
import { KNOWN_KEY_SHARE_PCT } from '../src/workflows/rate-limit-storm';
import { TRIM_IDLE_SECONDS } from '../src/workflows/database-pressure';
import { REPEATED_5XX } from '../src/workflows/api-key-trace';
import { HIGH_SHARE, MEMORY_HIGH_PCT } from '../src/workflows/memory-leak';
import { TOPUP_MIN_QUOTA_PCT } from '../src/workflows/quota-exhaustion';
import { DRAINED_PCT, REDIS_MEMORY_PCT } from '../src/workflows/queue-backlog';
import { LOG_WINDOW_SECONDS as MIGRATION_LOG_WINDOW_SECONDS } from '../src/workflows/migration-permissions';
import { MAXMEMORY_RAISE_FACTOR } from '../src/workflows/cache-failure';

const base = {
  baseUrl: 'http://127.0.0.1:58000',
  containers: { project: 'alfred' },
  components: ['api', 'worker', 'db'],
  postgres: { database: 'alfred', migrations: { role: 'alfred_migrator' } },
  queue: { key: 'rq:queue:default', component: 'worker' },
};

const parse = (over: Record<string, unknown> = {}) => TargetSchema.parse({ ...base, ...over });

describe('threshold settings: defaults are the values the runbooks used', () => {
  const t = parse();
  test.each([
    ['thresholds.releaseOutageErrorRatePct', t.thresholds.releaseOutageErrorRatePct, HIGH_ERROR_RATE_PCT, 25],
    ['thresholds.recentDeployMinutes (INC-12)', t.thresholds.recentDeployMinutes, RECENT_DEPLOY_MINUTES, 60],
    ['thresholds.recentDeployMinutes (INC-06)', t.thresholds.recentDeployMinutes, DEPLOY_WINDOW_MINUTES, 60],
    ['thresholds.repeatedServerErrors', t.thresholds.repeatedServerErrors, REPEATED_5XX, 3],
    ['rateLimit.knownKeySharePct', t.rateLimit.knownKeySharePct, KNOWN_KEY_SHARE_PCT, 80],
    ['postgres.pressure.trimIdleSeconds', t.postgres?.pressure.trimIdleSeconds, TRIM_IDLE_SECONDS, 5],
    ['postgres.migrations.logWindowSeconds', t.postgres?.migrations?.logWindowSeconds, MIGRATION_LOG_WINDOW_SECONDS, 3600],
    ['limits.memoryHighPct', t.limits.memoryHighPct, MEMORY_HIGH_PCT, 90],
    ['limits.topupMinQuotaPct', t.limits.topupMinQuotaPct, TOPUP_MIN_QUOTA_PCT, 10],
    ['limits.maxmemoryRaiseFactor', t.limits.maxmemoryRaiseFactor, MAXMEMORY_RAISE_FACTOR, 1.5],
    ['queue.drainedPct', t.queue?.drainedPct, DRAINED_PCT, 10],
    ['queue.redisMemoryPct', t.queue?.redisMemoryPct, REDIS_MEMORY_PCT, 90],
  ])('%s', (_name, value, constant, old) => {
    expect(value).toBe(constant);
    expect(constant).toBe(old);
  });

  test('limits.memoryHighPct / 100 is exactly the old share', () => {
    expect(t.limits.memoryHighPct / 100).toBe(0.9);
    expect(HIGH_SHARE).toBe(0.9);
  });
});

describe('threshold settings: a changed value is taken, one out of range refused', () => {
  test.each([
    ['thresholds', 'releaseOutageErrorRatePct', 40, [0, 101]],
    ['thresholds', 'recentDeployMinutes', 120, [0, 1.5, 20_000]],
    ['thresholds', 'repeatedServerErrors', 1, [0, 2.5]],
    ['rateLimit', 'knownKeySharePct', 95, [49, 101]],
    ['limits', 'memoryHighPct', 80, [49, 101]],
    ['limits', 'topupMinQuotaPct', 25, [0, 101]],
    ['limits', 'maxmemoryRaiseFactor', 2, [1, 5]],
  ] as const)('%s.%s', (section, key, good, bad) => {
    const ok = parse({ [section]: { [key]: good } }) as unknown as Record<string, Record<string, number>>;
    expect(ok[section]?.[key]).toBe(good);
    for (const b of bad) expect(TargetSchema.safeParse({ ...base, [section]: { [key]: b } }).success).toBe(false);
  });

  test('postgres.pressure.trimIdleSeconds', () => {
    const pg = (trimIdleSeconds: number) => ({ ...base.postgres, pressure: { trimIdleSeconds } });
    expect(parse({ postgres: pg(30) }).postgres?.pressure.trimIdleSeconds).toBe(30);
    expect(TargetSchema.safeParse({ ...base, postgres: pg(0) }).success).toBe(false);
    expect(TargetSchema.safeParse({ ...base, postgres: pg(1.5) }).success).toBe(false);
  });

  test('postgres.migrations.logWindowSeconds', () => {
    const pg = (logWindowSeconds: number) => ({ ...base.postgres, migrations: { role: 'alfred_migrator', logWindowSeconds } });
    expect(parse({ postgres: pg(900) }).postgres?.migrations?.logWindowSeconds).toBe(900);
    expect(TargetSchema.safeParse({ ...base, postgres: pg(10) }).success).toBe(false);
  });

  test.each([
    ['drainedPct', 25, [0, 101]],
    ['redisMemoryPct', 80, [0, 101]],
  ] as const)('queue.%s', (key, good, bad) => {
    expect(parse({ queue: { ...base.queue, [key]: good } }).queue?.[key]).toBe(good);
    for (const b of bad) expect(TargetSchema.safeParse({ ...base, queue: { ...base.queue, [key]: b } }).success).toBe(false);
  });
});
