/**
 * Every runbook, by name: the receiver routes by it, the client script lists it and the README's
 * runbook table is generated from it. Each entry is the metadata its runbook declares beside its code
 * (`export const meta = defineRunbook({...})`), never restated here.
 */
export type { RunbookMeta, StepMeta } from './shape';
import { meta as databaseUnreachable } from './database-unreachable';
import { meta as cacheFailure } from './cache-failure';
import { meta as rollback } from './rollback';
import { meta as apiKeyTrace } from './api-key-trace';
import { meta as transferNotApplied } from './transfer-not-applied';
import { meta as configDrift } from './config-drift';
import { meta as smtpDelivery } from './smtp-delivery';
import { meta as memoryLeak } from './memory-leak';
import { meta as cachePoisoning } from './cache-poisoning';
import { meta as providerDown } from './provider-down';
import { meta as allProvidersDown } from './all-providers-down';
import { meta as rateLimitStorm } from './rate-limit-storm';
import { meta as tlsExpiry } from './tls-expiry';
import { meta as dataBreach } from './data-breach';
import { meta as queueBacklog } from './queue-backlog';
import { meta as databasePressure } from './database-pressure';
import { meta as migrationPermissions } from './migration-permissions';
import { meta as latencySpike } from './latency-spike';
import { meta as quotaExhaustion } from './quota-exhaustion';
import { meta as authFailure } from './auth-failure';
import { meta as badRelease } from './bad-release';
import { meta as doubleSpend } from './double-spend';
import { meta as auditChainBreak } from './audit-chain-break';

/** In the order the README and `remediate list` show them. */
const ALL = [
  databaseUnreachable,
  cacheFailure,
  rollback,
  apiKeyTrace,
  transferNotApplied,
  configDrift,
  smtpDelivery,
  memoryLeak,
  cachePoisoning,
  providerDown,
  allProvidersDown,
  rateLimitStorm,
  tlsExpiry,
  dataBreach,
  queueBacklog,
  databasePressure,
  migrationPermissions,
  latencySpike,
  quotaExhaustion,
  authFailure,
  badRelease,
  doubleSpend,
  auditChainBreak,
] as const;

type AnyMeta = (typeof ALL)[number];

export type RunbookName = AnyMeta['name'];

export const RUNBOOKS = Object.fromEntries(ALL.map((m) => [m.name, m])) as { readonly [M in AnyMeta as M['name']]: M };
