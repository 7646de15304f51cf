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
    alerts: [],
    diagnostics: ['current image tag of each service', 'image tag history (last known good)', 'health before rollback'],
    steps: [
      { id: 'recreate-<service>', title: 'Recreate each service on the good tag, one at a time, health-gated', risk: 'approve' },
      { id: 'migration-downgrade', title: 'Downgrade the newest migration one step', risk: 'approve' },
      { id: 'restore-backup', title: 'Restore the latest backup', risk: 'two-person' },
    ],
    verify: 'health OK on every service after each recreate',
  },
  apiKeyTrace: {
    scenario: 'SUP-KEY',
    title: 'API key trace (support)',
    severity: 3,
    source: 'seed 000',
    alerts: [],
    diagnostics: [
      'the account behind the email',
      "the user's charged requests around the time (request_logs)",
      'the request id in request_logs and in the api log',
      'key rotations / erasures (audit_logs)',
      'failed authentications in the api log',
    ],
    steps: [],
    verify: 'the service side is healthy (/health), so the answer lies with the client',
  },
  transferNotApplied: {
    scenario: 'SUP-TRANSFER',
    title: 'Transfer not applied (support)',
    severity: 3,
    source: 'seed 000',
    alerts: [],
    diagnostics: [
      'the account behind the email',
      "the user's token_transfers and their approval_requests",
      'LLEN of the job queue, sampled twice, and where the transfer\'s job waits',
      'worker container state and worker log errors',
    ],
    steps: [],
    verify: 'the worker is running (the transfer is applied in turn)',
  },
  configDrift: {
    scenario: 'SUP-DRIFT',
    title: 'Config drift: shared secrets differ between services',
    severity: 2,
    source: 'seed 004',
    alerts: [],
    diagnostics: ['each shared secret (e.g. JWT_SECRET) compared by sha256 between the reference and the other containers (Docker inspect)'],
    steps: [{ id: 'align-<secret>-<component>', title: "Recreate the drifted container with the reference's value", risk: 'approve' }],
    verify: 'every shared secret equal in every component (compared by hash)',
  },
  smtpDelivery: {
    scenario: 'SUP-SMTP',
    title: 'Email delivery: the SMTP relay refuses mail',
    severity: 3,
    source: 'seed 004',
    alerts: [],
    diagnostics: [
      "relay in use, from the mail component's SMTP_HOST / SMTP_PORT (Docker inspect)",
      'SMTP probe of that relay: connect time, greeting, EHLO extensions, MAIL FROM / RCPT TO then RSET (no message sent), the refusing reply',
      'the same probe of the sandbox relay',
    ],
    steps: [{ id: 'switch-to-sandbox-relay', title: 'Recreate the mail component with the sandbox relay as its SMTP host/port', risk: 'approve' }],
    verify: 'the probe of the relay now in use succeeds',
  },
  memoryLeak: {
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
  },
  cachePoisoning: {
    scenario: 'INC-15',
    title: 'Semantic cache poisoning',
    severity: 2,
    source: 'seed 002',
    alerts: ['AlfredCachePoisoning'],
    diagnostics: [
      'cache hit rate from the SLA metrics (> 80 % is anomalous)',
      'cache key count (SCAN by pattern)',
      'similarity threshold from the governance settings',
      'a known query asked through the gateway',
      'cached entries that would answer it wrongly (redacted, truncated)',
    ],
    steps: [
      { id: 'tighten-threshold', title: 'Tighten the cache similarity threshold to 0.98', risk: 'auto' },
      { id: 'flush-cache', title: 'Flush cache keys by pattern (SCAN + UNLINK, bounded batches)', risk: 'approve' },
    ],
    verify: 'the known query returns its correct answer and no wrong entry remains',
  },
  providerDown: {
    scenario: 'INC-02',
    title: 'LLM provider down (single)',
    severity: 2,
    source: 'seed 002',
    alerts: ['AlfredProviderDown'],
    diagnostics: [
      'per-provider error rates from the SLA metrics endpoint',
      'provider errors / 502 / timeouts in the recent api logs',
      'after a grace period (durable timer): provider and gateway error rates re-measured from /metrics counters',
    ],
    steps: [{ id: 'disable-provider-<name>', title: 'Failover not effective: disable the provider via the governance API, notify its owners', risk: 'approve' }],
    verify: "the provider's error rate < 5 %, or the gateway's chat error rate < 5 % (failover)",
  },
  allProvidersDown: {
    scenario: 'INC-03',
    title: 'LLM providers down (multiple / all)',
    severity: 1,
    source: 'seed 002',
    alerts: ['AlfredAllProvidersDown'],
    diagnostics: [
      'per-provider error rates from the SLA metrics endpoint (> 90 % on every provider)',
      'egress probe to each provider URL from the api container',
      'DNS resolution of each provider host from the api container',
      'governance settings (cache-only mode, disabled providers)',
    ],
    steps: [
      { id: 'enable-cache-only', title: 'Enable cache_only_mode and post the status update', risk: 'auto' },
      { id: 'await-providers', title: 'Wait for the providers to recover (durable timers, bounded)', risk: 'auto' },
      { id: 'leave-cache-only', title: 'Providers recovered: leave cache-only mode', risk: 'approve' },
    ],
    verify: 'a live test completion succeeds through a provider',
  },
  rateLimitStorm: {
    scenario: 'INC-10',
    title: 'API rate limit storm',
    severity: 2,
    source: 'seed 002',
    alerts: ['AlfredRateLimitStorm'],
    diagnostics: [
      'top client addresses and key ids among the 429s in the api logs',
      'owners (tenants) of those keys, by key-hash prefix',
      'rate-limit counter keys in Redis',
      'the limit the api runs with (RATE_LIMIT_PER_MINUTE)',
    ],
    steps: [
      { id: 'block-client', title: 'Single abuser: block its address at the gateway', risk: 'approve' },
      { id: 'raise-rate-limit', title: 'Legitimate spike: raise RATE_LIMIT_PER_MINUTE and recreate the api', risk: 'approve' },
    ],
    verify: '429s back to baseline (seed 002: fewer than 10 in 2 minutes)',
  },
  tlsExpiry: {
    scenario: 'INC-13',
    title: 'Certificate expiry / TLS failure',
    severity: 1,
    source: 'seed 002',
    alerts: ['TlsCertificateExpiring', 'TlsCertificateExpiry'],
    diagnostics: [
      'TLS handshake to the configured endpoint: notAfter, days left, chain (subject / issuer)',
      'the certificate file the proxy reads',
      'daily check (Temporal Schedule, `remediate schedules apply`) opens the incident before expiry',
    ],
    steps: [
      { id: 'renew-certificate', title: 'Run the configured renewal command', risk: 'auto' },
      { id: 'issue-emergency-certificate', title: 'No renewal configured: emergency self-signed certificate valid 1 day', risk: 'approve' },
      { id: 'reload-proxy', title: 'Reload the proxy (SIGHUP), restart it if it still serves the old certificate', risk: 'approve' },
    ],
    verify: 'the served certificate expires in the future: beyond the threshold, or it is the emergency one',
  },
  dataBreach: {
    scenario: 'INC-14',
    title: 'Data breach / PII exposure',
    severity: 1,
    source: 'seed 002',
    alerts: ['PiiInLogs', 'DataBreach'],
    diagnostics: [
      'PII patterns in recent api logs (counts per kind and redacted samples only)',
      'API keys in clear text in the logs, matched to their users by hash',
      'export / read actions in the audit log, last 24 h',
      'key usage anomalies (requests per key, last 24 h)',
    ],
    steps: [
      { id: 'preserve-evidence', title: 'Export recent api logs and audit rows with a sha256 manifest', risk: 'auto' },
      { id: 'notify-owner-security-legal', title: 'Notify the owner, the security lead and legal', risk: 'auto' },
      { id: 'rotate-compromised-keys', title: 'Rotate the leaked keys; the new ones go to the key store', risk: 'approve' },
      { id: 'gdpr-erasure', title: 'GDPR erasure of the user named in the request', risk: 'approve' },
    ],
    verify: 'leaked keys refused, and a human confirms the checklist (signal "checklist")',
  },
  queueBacklog: {
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
  },
  databasePressure: {
    scenario: 'SUP-DB',
    title: 'Database pressure',
    severity: 2,
    source: 'seed 003',
    alerts: ['DatabasePressure'],
    diagnostics: [
      'connections against max_connections, by role',
      'lock waits (pg_locks via pg_blocking_pids, joined to pg_stat_activity) and their blockers',
      'slow queries of the target database',
    ],
    steps: [
      { id: 'terminate-blockers', title: 'Terminate the sessions blocking others (re-listed before acting)', risk: 'approve' },
      { id: 'terminate-slow-queries', title: 'Terminate the long-running queries (re-listed before acting)', risk: 'approve' },
      { id: 'limit-connections', title: "Lower the busiest role's CONNECTION LIMIT and end its surplus idle sessions", risk: 'approve' },
    ],
    verify: 'no lock waits, no slow queries, connections below the threshold',
  },
  migrationPermissions: {
    scenario: 'SUP-MIGRATION',
    title: 'Migration permissions',
    severity: 3,
    source: 'seed 004',
    alerts: ['MigrationFailed', 'MigrationPermissions'],
    diagnostics: [
      'migration status (current vs the release target) from the admin API',
      "the migration role's privileges on the migrations table (has_table_privilege, the table's grants)",
      'permission errors (42501) in the migrating component logs',
    ],
    steps: [
      { id: 'apply-grants', title: 'GRANT the missing privileges to the migration role', risk: 'approve' },
      { id: 'rerun-migration', title: 'Re-run the pending migrations', risk: 'auto' },
    ],
    verify: 'the migration role has every privilege it needs and no migration is pending',
  },
  latencySpike: {
    scenario: 'INC-04',
    title: 'Gateway latency spike (p95 > 150 ms)',
    severity: 2,
    source: 'seed 002',
    alerts: ['AlfredLatencySpike', 'AlfredLatencyP99High'],
    diagnostics: [
      'SLA p95 / p99 (300 s window)',
      'p95 of fresh probe requests',
      'api container CPU / memory stats and memory trend',
      'longest active queries of the target database (pg_stat_activity)',
      'api DB pool gauge',
      'Redis round-trip latency',
    ],
    steps: [
      { id: 'terminate-long-queries', title: 'Terminate the queries running longer than the threshold (those pids only)', risk: 'approve' },
      { id: 'restart-api', title: 'Restart the api to clear its connection pool', risk: 'approve' },
      { id: 'hand-off-memory-leak', title: 'Memory growth: hand off to INC-11 as a child incident', risk: 'approve' },
    ],
    verify: 'p95 of fresh requests under the SLA target, no long queries left',
  },
  quotaExhaustion: {
    scenario: 'INC-07',
    title: 'Quota / wallet hard-limit exhaustion (mass)',
    severity: 2,
    source: 'seed 002',
    alerts: ['AlfredQuotaExhaustion'],
    diagnostics: [
      'users refused with 402 recently (api logs) and still at their quota (SQL)',
      'users at / near their quota (SQL)',
      'deductions per user, last hour',
      'cost-calculation errors in the api logs',
      'billing reset for the current period (admin API: is the usage reset of the running period still due?)',
    ],
    steps: [
      { id: 'rollback-release', title: 'Calculation bug (SEV-1): roll the api back (child rollback)', risk: 'approve' },
      { id: 'topup-affected', title: 'Capped top-up of the affected wallets, one ledger row per incident and user', risk: 'approve' },
      { id: 'trigger-billing-reset', title: 'Missed billing reset: trigger the usage reset of the current period (once per period), no top-up', risk: 'approve' },
    ],
    verify: 'every affected user is under their quota again (their requests pass the quota gate)',
  },
  authFailure: {
    scenario: 'INC-06',
    title: 'Authentication failure',
    severity: 1,
    source: 'seed 002',
    alerts: ['AlfredAuthFailures', 'AuthFailure'],
    diagnostics: [
      'GET /v1/users/me with the admin key',
      'key-hash self-check (stored hash vs the configured key, compared by hash)',
      'users table reachable',
      'auth errors in the api logs, by reason',
      'SSO_REQUIRED in the api container and its last deploy',
    ],
    steps: [
      { id: 'database-incident', title: 'Database problem: child INC-01 incident', risk: 'auto' },
      { id: 'disable-sso', title: 'SSO provider down: set SSO_REQUIRED=false and recreate the api', risk: 'approve' },
      { id: 'rollback-release', title: 'Bad deploy: child rollback incident', risk: 'approve' },
    ],
    verify: '/v1/users/me returns the admin email',
  },
  badRelease: {
    scenario: 'INC-12',
    title: 'Bad release',
    severity: 2,
    source: 'seed 002',
    alerts: ['AlfredBadRelease', 'BadRelease'],
    diagnostics: [
      'last deploy of each service (container created, image built)',
      'request errors before vs after the deploy (proxy and service logs)',
      'current migration revision and migrations applied by the release',
      'health',
    ],
    steps: [
      { id: 'rollback-release', title: 'Child rollback of the deployed service', risk: 'approve' },
      { id: 'migration-downgrade', title: 'Downgrade the migration the release brought, one step', risk: 'approve' },
    ],
    verify: 'health OK, error rate at baseline',
  },
  doubleSpend: {
    scenario: 'INC-08',
    title: 'Credit leakage / double-spend',
    severity: 1,
    source: 'seed 002',
    alerts: ['DoubleSpend', 'LedgerDuplicateCharges'],
    diagnostics: [
      'duplicate request_id deductions in the last hour (SQL)',
      'per-user reconciliation: charges vs requests, deducted vs refunded',
      'audit chain verify',
      'last deploy of the api and the release it replaced',
    ],
    steps: [
      { id: 'maintenance-on', title: 'Maintenance mode on', risk: 'approve' },
      { id: 'rollback', title: 'Roll back the deploy the double charges began after (child rollback)', risk: 'approve' },
      { id: 'refund-duplicates', title: 'Idempotent refunds, each referencing the charge it reverses; notify the owner', risk: 'two-person' },
      { id: 'maintenance-off', title: 'Maintenance mode off after the owner reviewed the refunds', risk: 'approve' },
    ],
    verify: 'audit chain valid and no unrefunded duplicate charge',
  },
  auditChainBreak: {
    scenario: 'INC-09',
    title: 'Audit log chain break',
    severity: 2,
    source: 'seed 002',
    alerts: ['AuditChainBreak', 'AuditChainInvalid'],
    diagnostics: [
      'chain verify → first_break_at',
      'the broken entry and its neighbours (hashes recomputed)',
      'classification from the data: missing hashes (migration), content mismatch (tampering), prev-hash race',
    ],
    steps: [
      { id: 'preserve-evidence', title: 'Tampering: export every entry with a sha256 manifest, notify security; never update or delete entries', risk: 'auto' },
      { id: 'rehash-chain', title: 'Migration error: recompute hashes forward from the break', risk: 'two-person' },
    ],
    verify: 'chain verify valid (tampering stays open for security; a race is explained and escalated)',
  },
} as const satisfies Record<string, RunbookMeta>;

export type RunbookName = keyof typeof RUNBOOKS;
