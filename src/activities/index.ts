/**
 * All activities, built from injected dependencies. Workflows import only the *type* of this
 * factory's result (proxyActivities<Activities>).
 */
import type { ActivityDeps } from './deps';
import { createAuthActivities } from './auth';
import { createAuditChainActivities } from './audit-chain';
import { createBillingActivities } from './billing';
import { createChargeActivities } from './charges';
import { createDockerActivities } from './docker';
import { createGuardActivities } from './guard';
import { createHttpActivities } from './http';
import { createLedgerActivities } from './ledger';
import { createMigrationActivities } from './migrations';
import { createNotifyActivities } from './notify';
import { createPgGrantActivities } from './pg-grants';
import { createPgPressureActivities } from './pg-pressure';
import { createPgSessionActivities } from './pg-sessions';
import { createPostgresActivities } from './postgres';
import { createProbeActivities } from './probes';
import { createProviderActivities } from './providers';
import { createQueueActivities } from './queue';
import { createRateLimitActivities } from './rate-limits';
import { createRedisActivities } from './redis';
import { createReleaseActivities } from './release';
import { createReplicaActivities } from './replicas';
import { createSemanticCacheActivities } from './semantic-cache';
import { createSecurityActivities } from './security';
import { createSharedSecretActivities } from './shared-secrets';
import { createSmtpActivities } from './smtp';
import { createSupportActivities } from './support';
import { createTargetActivities } from './target';
import { createTlsActivities } from './tls';

export function createActivities(deps: ActivityDeps) {
  return {
    ...createDockerActivities(deps),
    ...createPostgresActivities(deps),
    ...createRedisActivities(deps),
    ...createHttpActivities(deps),
    ...createNotifyActivities(deps),
    ...createGuardActivities(deps),
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
export type { ActivityDeps } from './deps';
