/**
 * All activities, built from injected dependencies. Workflows import only the *type* of this
 * factory's result (proxyActivities<Activities>).
 */
import type { ActivityDeps } from './engine/deps';
import { createAuthActivities } from './target-api/auth';
import { createAuditChainActivities } from './postgres/audit-chain';
import { createBillingActivities } from './target-api/billing';
import { createBudgetActivities } from './engine/budget';
import { createChargeActivities } from './postgres/charges';
import { createDockerActivities } from './containers/docker';
import { createGuardActivities } from './engine/guard';
import { createHttpActivities } from './target-api/http';
import { createLedgerActivities } from './postgres/ledger';
import { createMaintenanceActivities } from './engine/maintenance';
import { createMigrationActivities } from './containers/migrations';
import { createNetworkActivities } from './containers/network';
import { createNotifyActivities } from './engine/notify';
import { createOpeningActivities } from './engine/opening';
import { createPagerDutyActivities } from './engine/pagerduty';
import { createPolicyActivities } from './engine/policy';
import { createPgGrantActivities } from './postgres/pg-grants';
import { createPgPressureActivities } from './postgres/pg-pressure';
import { createPgSessionActivities } from './postgres/pg-sessions';
import { createPostgresActivities } from './postgres/postgres';
import { createProbeActivities } from './containers/probes';
import { createProviderActivities } from './target-api/providers';
import { createQueueActivities } from './redis/queue';
import { createRateLimitActivities } from './target-api/rate-limits';
import { createRedisActivities } from './redis/redis';
import { createReleaseActivities } from './containers/release';
import { createReplicaActivities } from './containers/replicas';
import { createSemanticCacheActivities } from './redis/semantic-cache';
import { createSecurityActivities } from './postgres/security';
import { createSharedSecretActivities } from './containers/shared-secrets';
import { createSmtpActivities } from './smtp/smtp';
import { createSupportActivities } from './postgres/support';
import { createTargetActivities } from './engine/target';
import { createTlsActivities } from './tls/tls';

export function createActivities(deps: ActivityDeps) {
  const policy = createPolicyActivities(deps);
  const maintenance = createMaintenanceActivities(deps);
  return {
    ...createDockerActivities(deps),
    ...createPostgresActivities(deps),
    ...createRedisActivities(deps),
    ...createHttpActivities(deps),
    ...createNetworkActivities(deps),
    ...createNotifyActivities(deps),
    ...createPagerDutyActivities(deps),
    ...policy,
    ...createGuardActivities(deps),
    ...createBudgetActivities(deps),
    ...maintenance,
    ...createOpeningActivities({ ...policy, ...maintenance }),
    ...createTargetActivities(deps),
    ...createSupportActivities(deps),
    ...createSharedSecretActivities(deps),
    ...createSmtpActivities(deps),
    ...createAuthActivities(deps),
    ...createReleaseActivities(deps),
    ...createMigrationActivities(deps),
    ...createPgSessionActivities(deps),
    ...createPgPressureActivities(deps),
    ...createPgGrantActivities(deps),
    ...createQueueActivities(deps),
    ...createReplicaActivities(deps),
    ...createProbeActivities(deps),
    ...createLedgerActivities(deps),
    ...createBillingActivities(deps),
    ...createSemanticCacheActivities(deps),
    ...createChargeActivities(deps),
    ...createAuditChainActivities(deps),
    ...createProviderActivities(deps),
    ...createRateLimitActivities(deps),
    ...createTlsActivities(deps),
    ...createSecurityActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;
export type { ActivityDeps } from './engine/deps';
