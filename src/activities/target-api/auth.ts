/**
 * Authentication activities (INC-06): can the admin key still sign in, does the stored key hash still
 * belong to the configured key, and what do the api's logs say about refused keys. The admin key is
 * read here and never leaves: only statuses, emails and yes/no answers are returned.
 */
import { createHash } from 'node:crypto';
import type { ActivityDeps } from '../engine/deps';
import { adminKey, dockerFor, logMatchers, targetConfig } from '../engine/deps';
import { logValue, type LogMatchers } from '../../lib/target-signals';
import { createDockerActivities } from '../containers/docker';
import type { PgSchemaNames } from '../../config';
import { answerReader } from './api-fields';
import { withPgClient } from '../postgres/postgres';
import { isSchemaFailure, pgStatement, runStatement, targetSchemaNames, type PgStatement } from '../postgres/pg-schema';
import { ErrorType, describeError, permanent } from '../engine/errors';

export interface WhoAmI {
  /** HTTP status of GET /v1/users/me with the admin key; 0 when the api did not answer. */
  status: number;
  email?: string;
  isAdmin?: boolean;
  error?: string;
}

export interface KeyHashCheck {
  /** The users table answered. */
  reachable: boolean;
  error?: string;
  /** A user row holds the hash of the configured admin key. */
  matches: boolean;
  email?: string;
  isAdmin?: boolean;
}

export interface AuthErrors {
  total: number;
  /** Refusals by the reason the api logged (`logs.authReason`; e.g. unknown_key, sso_provider_unreachable). */
  byReason: Record<string, number>;
  /** Refusals because the SSO provider is unreachable (`logs.ssoUnreachable`); absent in incidents begun before it was read. */
  ssoUnreachable?: number;
}

const FLAG = /^(true|false|\d{1,6})$/;

/** Pure: refusal lines by reason, and those saying the SSO provider is unreachable. */
export function countAuthErrors(m: LogMatchers, lines: string[]): { byReason: Record<string, number>; ssoUnreachable: number } {
  const byReason: Record<string, number> = {};
  let ssoUnreachable = 0;
  for (const line of lines) {
    const reason = logValue(m, 'authReason', line) ?? 'unknown';
    byReason[reason] = (byReason[reason] ?? 0) + 1;
    if (m.ssoUnreachable.test(line)) ssoUnreachable++;
  }
  return { byReason, ssoUnreachable };
}

/** The user whose stored key hash is `$1` (the sha256 hex of a key): email and admin flag. */
export function userByKeyHashStatement(schema: PgSchemaNames): PgStatement {
  return pgStatement(
    schema,
    (n) => `SELECT u.email, ${n('users.isAdmin', 'u')} AS is_admin FROM users u WHERE ${n('users.apiKeyHash', 'u')} = $1 LIMIT 1`,
  );
}

export function createAuthActivities(deps: ActivityDeps) {
  const doFetch = deps.fetch ?? fetch;
  const docker = createDockerActivities(deps);

  function key(target: string): string {
    const k = adminKey(deps, target);
    if (!k) throw permanent(ErrorType.NotConfigured, `target "${target}" has no admin key configured`);
    return k;
  }

  /**
   * GET /v1/users/me with the admin key; every answer (401, 500, no answer) is a finding. A 200 whose
   * answer lacks the admin flag (`api.fields.usersMe.isAdmin`) fails the activity naming the setting:
   * it is neither "not an admin" nor a pass.
   */
  async function whoAmI(input: { target: string }): Promise<WhoAmI> {
    const t = targetConfig(deps, input.target);
    let status: number;
    let text: string;
    try {
      const res = await doFetch(new URL('/v1/users/me', t.baseUrl).toString(), {
        headers: { authorization: `Bearer ${key(input.target)}` },
        signal: AbortSignal.timeout(5000),
      });
      status = res.status;
      text = await res.text();
    } catch (err) {
      return { status: 0, error: describeError(err) };
    }
    if (status < 200 || status >= 300) return { status, error: text.slice(0, 200) };
    let body: { email?: unknown };
    try {
      body = JSON.parse(text) as { email?: unknown };
    } catch (err) {
      return { status: 0, error: `GET /v1/users/me answered ${status} without JSON: ${describeError(err)}` };
    }
    // seed 002: `jq '.email'`; whether the key is an admin's is read by `api.fields.usersMe.isAdmin`.
    const r = answerReader(deps, input.target, 'usersMe', 'GET /v1/users/me', body);
    const isAdmin = r.boolean('isAdmin');
    r.orThrow();
    return { status, ...(typeof body.email === 'string' ? { email: body.email } : {}), ...(isAdmin !== undefined ? { isAdmin } : {}) };
  }

  /**
   * The key-hash self-check: looks the configured admin key's sha256 up in the users table. Only the
   * comparison's outcome is returned, never the key or either hash.
   */
  async function adminKeyHashCheck(input: { target: string }): Promise<KeyHashCheck> {
    const stmt = userByKeyHashStatement(targetSchemaNames(deps, input.target));
    const hash = createHash('sha256').update(key(input.target)).digest('hex');
    try {
      const r = await withPgClient(deps, input.target, (c) => runStatement<{ email: string; is_admin: boolean }>(c, input.target, stmt, [hash]), 3000);
      const row = r.rows[0];
      return row ? { reachable: true, matches: true, email: row.email, isAdmin: row.is_admin } : { reachable: true, matches: false };
    } catch (err) {
      // A column the users table lacks is a setting to fix, not an unreachable database.
      if (isSchemaFailure(err)) throw err;
      return { reachable: false, matches: false, error: describeError(err) };
    }
  }

  /** Refused authentications (`logs.authFailed`) in a component's recent logs, counted by reason. */
  async function authErrorsInLogs(input: { target: string; component: string; sinceSeconds: number }): Promise<AuthErrors> {
    const m = logMatchers(deps, input.target);
    const logs = await docker.containerLogs({ ...input, grep: m.authFailed.source, limit: 5000 });
    return { total: logs.matched, ...countAuthErrors(m, logs.lines) };
  }

  /**
   * A flag in a component's container environment (e.g. SSO_REQUIRED). Only flag-like values
   * (true/false/numbers) are returned, so asking for a secret's name reveals nothing.
   */
  async function containerEnvFlag(input: { target: string; component: string; name: string }): Promise<{ set: boolean; value?: string }> {
    const state = await docker.containerState(input);
    const info = await dockerFor(deps, input.target).getContainer(state.id).inspect();
    const entry = (info.Config.Env ?? []).find((kv) => kv.startsWith(`${input.name}=`));
    if (entry === undefined) return { set: false };
    const value = entry.slice(input.name.length + 1);
    return FLAG.test(value) ? { set: true, value } : { set: true };
  }

  return { whoAmI, adminKeyHashCheck, authErrorsInLogs, containerEnvFlag };
}
