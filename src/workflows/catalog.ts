/**
 * What each runbook is, in data: the receiver routes by it, the client script lists it, the README's
 * runbook table is generated from it, and each runbook file takes its identity from here.
 * Pure data, safe to import from workflow and non-workflow code alike.
 */
import type { Risk, Severity } from './contracts';

export interface StepMeta {
  id: string;
  title: string;
  risk: Risk;
}

export interface RunbookMeta {
  scenario: string;
  title: string;
  severity: Severity;
  source: string;
  /** Alert names that route to this runbook by default (config/routes.yaml may add more). */
  alerts: string[];
  diagnostics: string[];
  steps: StepMeta[];
  verify: string;
}

export const RUNBOOKS = {
  databaseUnreachable: {
    scenario: 'INC-01',
    title: 'Database unreachable',
    severity: 1,
    source: 'seed 002',
    alerts: ['AlfredDatabaseUnhealthy', 'AlfredDbPoolExhausted', 'DatabaseUnreachable'],
    diagnostics: [
      'SELECT 1 with a timeout',
      'server reachability (pg_isready equivalent)',
      'API pool gauge from /metrics',
      'data-dir disk usage (df in the db container)',
      'db container state',
    ],
    steps: [
      { id: 'restart-api', title: 'Restart the api container to release pooled connections', risk: 'auto' },
      { id: 'restart-db', title: 'Restart the db container', risk: 'auto' },
      { id: 'vacuum-full', title: 'VACUUM FULL to reclaim disk', risk: 'approve' },
      { id: 'restore-backup', title: 'pg_restore the latest dump', risk: 'two-person' },
    ],
    verify: '/health reports database healthy',
  },
  cacheFailure: {
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
  },
  rollback: {
    scenario: 'ROLLBACK',
    title: 'Roll back to the last known good release',
    severity: 2,
    source: 'seed 000',
    alerts: ['AlfredBadRelease'],
    diagnostics: ['current image tag of each service', 'image tag history (last known good)', 'health before rollback'],
    steps: [
      { id: 'recreate-<service>', title: 'Recreate each service on the good tag, one at a time, health-gated', risk: 'approve' },
      { id: 'migration-downgrade', title: 'Downgrade the newest migration one step', risk: 'approve' },
      { id: 'restore-backup', title: 'Restore the latest backup', risk: 'two-person' },
    ],
    verify: 'health OK on every service after each recreate',
  },
} as const satisfies Record<string, RunbookMeta>;

export type RunbookName = keyof typeof RUNBOOKS;
