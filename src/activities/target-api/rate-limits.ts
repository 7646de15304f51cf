/**
 * Rate-limit activities (INC-10): who is being refused with 429 (from the api's own log lines),
 * whose keys those were (by hash prefix, matched against the stored key hashes), the limit the api
 * runs with (one non-secret variable of its container), and the governance IP block list.
 */
import type { ActivityDeps } from '../engine/deps';
import { withPgClient } from '../postgres/postgres';
import { pgStatement, runStatement, targetSchemaNames, type PgStatement } from '../postgres/pg-schema';
import { logMatchers, targetConfig } from '../engine/deps';
import { DEFAULT_LOG_MATCHERS, logValue, type LogMatchers } from '../../lib/target-signals';
import { createDockerActivities } from '../containers/docker';
import type { PgSchemaNames, TargetConfig } from '../../config';
import { ErrorType, permanent } from '../engine/errors';
import { answerReader, apiSettings } from './api-fields';
import { createAdminClient, createHttpActivities } from './http';
import { inspectComponent } from '../containers/containers';

export interface ClientCount {
  id: string;
  count: number;
}

export interface RateLimitSummary {
  total429: number;
  sinceSeconds: number;
  /** Most-refused client addresses first (at most 20). */
  clients: ClientCount[];
  distinctClients: number;
  /** Most-refused key ids (sha256 prefixes) first (at most 20); requests without a key are not counted. */
  keys: ClientCount[];
  withoutKey: number;
  /** Refusals whose line names no client address (`logs.clientIp`): in total429, never counted as a client. */
  withoutClient?: number;
  /**
   * Request lines in the window (`logs.status`), those answered 429, and all lines read: whether the
   * log was read in a format the settings recognise. Absent in results of incidents begun before.
   */
  requests?: number;
  status429?: number;
  lines?: number;
}

export interface KeyOwner {
  keyId: string;
  userId: number;
  /** The owner's email domain: the tenant, without naming the person. */
  tenant: string;
}

const SECRETISH = /KEY|SECRET|PASSWORD|TOKEN|URL|DSN|CREDENTIAL/i;

function top(counts: Map<string, number>, n = 20): ClientCount[] {
  return [...counts].map(([id, count]) => ({ id, count })).sort((a, b) => b.count - a.count || a.id.localeCompare(b.id)).slice(0, n);
}

/** Counts the limiter's refusals (`logs.rateLimited`) by client address (`logs.clientIp`) and key id (`logs.keyId`). */
export function summariseRateLimitLines(lines: string[], sinceSeconds: number, m: LogMatchers = DEFAULT_LOG_MATCHERS): RateLimitSummary {
  const clients = new Map<string, number>();
  const keys = new Map<string, number>();
  let total = 0;
  let withoutKey = 0;
  let withoutClient = 0;
  for (const line of lines) {
    if (!m.rateLimited.test(line)) continue;
    total++;
    // A line without a recognised client address is no client's: never one client called "unknown".
    const ip = logValue(m, 'clientIp', line);
    if (ip) clients.set(ip, (clients.get(ip) ?? 0) + 1);
    else withoutClient++;
    const key = logValue(m, 'keyId', line);
    if (key) keys.set(key, (keys.get(key) ?? 0) + 1);
    else withoutKey++;
  }
  return { total429: total, sinceSeconds, clients: top(clients), distinctClients: clients.size, keys: top(keys), withoutKey, ...(withoutClient ? { withoutClient } : {}) };
}

/** Owners of the keys whose hash starts with one of `$1` (hex prefixes): user id and tenant (email domain). */
export function keyOwnersStatement(schema: PgSchemaNames): PgStatement {
  return pgStatement(
    schema,
    (n) => `SELECT k.id AS key_id, u.id::int AS user_id, split_part(u.email, '@', 2) AS tenant
         FROM users u JOIN unnest($1::text[]) AS k(id) ON ${n('users.apiKeyHash', 'u')} LIKE k.id || '%'`,
  );
}

export function createRateLimitActivities(deps: ActivityDeps) {
  const docker = createDockerActivities(deps);
  const http = createHttpActivities(deps);
  const adminCall = createAdminClient(deps);

  /** One read-only statement on a short-lived connection with tight timeouts. */
  const pgQuery = <T>(target: string, stmt: PgStatement, params: unknown[]): Promise<T[]> =>
    withPgClient(deps, target, async (c) => (await runStatement<T>(c, target, stmt, params)).rows);

  /** The target's rate-limit settings from configuration (no secrets). */
  async function rateLimitPolicy(input: { target: string }): Promise<TargetConfig['rateLimit']> {
    return targetConfig(deps, input.target).rateLimit;
  }

  async function rateLimitSummary(input: { target: string; component: string; sinceSeconds: number }): Promise<RateLimitSummary> {
    const m = logMatchers(deps, input.target);
    const logs = await docker.containerLogs({
      target: input.target,
      component: input.component,
      sinceSeconds: input.sinceSeconds,
      grep: m.rateLimited.source,
      limit: 1_000_000,
      count: { requests: { pattern: 'status', by: 'status' } },
    });
    const requests = logs.counts?.requests;
    return { ...summariseRateLimitLines(logs.lines, input.sinceSeconds, m), requests: requests?.matched ?? 0, status429: requests?.by['429'] ?? 0, lines: logs.total };
  }

  /** Which users (and tenants) the key ids belong to; unknown ids are simply absent. */
  async function keyOwners(input: { target: string; keyIds: string[] }): Promise<KeyOwner[]> {
    const ids = input.keyIds.filter((k) => /^[0-9a-f]{8,64}$/.test(k)).slice(0, 50);
    if (ids.length === 0) return [];
    const rows = await pgQuery<{ key_id: string; user_id: number; tenant: string }>(input.target, keyOwnersStatement(targetSchemaNames(deps, input.target)), [ids]);
    return rows.map((r) => ({ keyId: r.key_id, userId: r.user_id, tenant: r.tenant }));
  }

  /** The value of one configuration variable of a component's container; secret-looking names are refused. */
  async function containerEnvValue(input: { target: string; component: string; name: string }): Promise<{ value: string | null }> {
    if (SECRETISH.test(input.name)) throw permanent(ErrorType.Refused, `${input.name} looks like a secret; it is never read`);
    const info = await inspectComponent(deps, input.target, input.component);
    const kv = (info.Config.Env ?? []).find((e) => e.startsWith(`${input.name}=`));
    return { value: kv ? kv.slice(input.name.length + 1) : null };
  }

  /** The addresses already blocked (`api.paths.blocks`, read by `api.fields.blocks`). */
  async function blockedIps(input: { target: string }): Promise<{ ips: string[] }> {
    const path = apiSettings(deps, input.target).paths.blocks;
    const res = await adminCall({ target: input.target, method: 'GET', path });
    const r = answerReader(deps, input.target, 'blocks', `GET ${path}`, res.body);
    const list = r.list('list');
    r.orThrow();
    const ips = (list ?? []).map((entry, i) => {
      const e = answerReader(deps, input.target, 'blocks', `GET ${path} (${r.name('list')}.${i})`, entry);
      const ip = e.string('ip');
      e.orThrow();
      return ip as string;
    });
    return { ips };
  }

  /** Blocks a client address at the gateway (stored by the target, so it survives a restart). */
  async function blockClient(input: { target: string; ip: string; reason: string }): Promise<{ changed: boolean | null; detail: string }> {
    const res = await http.adminRequest({
      target: input.target,
      method: 'POST',
      path: '/v1/governance/block',
      body: { ip: input.ip, reason: input.reason },
    });
    const r = answerReader(deps, input.target, 'block', 'POST /v1/governance/block', res.body);
    const changed = r.boolean('changed');
    if (changed === undefined) return { changed: null, detail: `${input.ip} blocked at the gateway; whether it already was is unknown: ${r.problems.join('; ')}` };
    return { changed, detail: changed ? `${input.ip} blocked at the gateway` : `${input.ip} was already blocked` };
  }

  return { rateLimitPolicy, rateLimitSummary, keyOwners, containerEnvValue, blockedIps, blockClient };
}
