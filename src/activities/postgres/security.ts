/**
 * Data breach activities (INC-14): PII in the api's logs, export / read actions in the audit log,
 * key usage, evidence export, key rotation and GDPR erasure.
 *
 * These activities read personal data and credentials, and none of it may leave them: results carry
 * counts, user ids, redacted samples and key fingerprints (a prefix of the key's sha256) only. The
 * raw lines go to evidence files on disk, never into results, logs or error messages, because
 * everything an activity returns is kept in the workflow's history.
 */
import { createHash } from 'node:crypto';
import { chmod, mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { readSecret, type PgSchemaNames } from '../../config';
import type { ActivityDeps } from '../engine/deps';
import { logMatchers, targetConfig } from '../engine/deps';
import { DEFAULT_LOG_MATCHERS, LOG_PATTERN_GROUPS } from '../../lib/target-signals';
import { createDockerActivities } from '../containers/docker';
import { ErrorType, permanent } from '../engine/errors';
import { incidentEvidenceDir, preserveEvidence } from '../engine/evidence';
import { answerReader } from '../target-api/api-fields';
import { createHttpActivities } from '../target-api/http';
import { withPgClient } from './postgres';
import { pgStatement, runStatement, targetSchemaNames, type PgStatement } from './pg-schema';

export const PII_KINDS = ['email', 'card_number', 'api_key', 'ssn', 'password'] as const;
export type PiiKind = (typeof PII_KINDS)[number];

export interface LeakedKey {
  /** First 12 hex digits of the key's sha256: enough to tell keys apart, useless to an attacker. */
  fingerprint: string;
  /** The user whose current key it is; null if no user holds it (already rotated or never valid). */
  userId: number | null;
}

export interface PiiScan {
  component: string;
  since: string;
  linesScanned: number;
  linesWithPii: number;
  counts: Record<PiiKind, number>;
  distinctEmails: number;
  /** At most five lines, every match replaced by its redacted form, cut to 240 characters. */
  samples: string[];
  leakedKeys: LeakedKey[];
}

export interface AuditAccess {
  hours: number;
  count: number;
  byAction: Record<string, number>;
  /** Distinct actor user ids (not emails). */
  actors: number[];
  /** Those done by someone who is not an admin (or by no known user): the ones that need explaining. */
  byNonAdmins: number;
  latest?: string;
  /**
   * The configured actions (`security.accessActions`) the audit log has ever recorded: none means the
   * setting names actions this target does not record, and a quiet day shows nothing. Absent in results
   * of incidents begun before it was read.
   */
  recordedActions?: string[];
}

export interface KeyUsage {
  hours: number;
  users: number;
  medianRequests: number;
  anomalies: { userId: number; requests: number; lastRequest: string }[];
}

const fingerprintOf = (secret: string): string => createHash('sha256').update(secret).digest('hex').slice(0, 12);

export interface PiiMatcher {
  kind: PiiKind;
  re: RegExp;
  /** The named group holding the value (a configured pattern); otherwise the first positional group. */
  group?: string;
  redact(m: string, groups: string[]): string;
  /** Extra check on a match (a card number must pass Luhn). */
  valid?(m: string): boolean;
}

function luhn(digits: string): boolean {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = Number(digits[digits.length - 1 - i]);
    if (i % 2 === 1) d = d * 2 > 9 ? d * 2 - 9 : d * 2;
    sum += d;
  }
  return sum % 10 === 0;
}

// Order matters: a bearer key is redacted before anything inside it could look like something else.
const MATCHERS: PiiMatcher[] = [
  { kind: 'api_key', re: /\bBearer\s+([\w.~+/-]{8,})/gi, redact: (_m, [key]) => `Bearer [key ${fingerprintOf(key ?? '')}]` },
  // The target's own key format (`logs.apiKey`) goes here.
  { kind: 'password', re: /\b(password|passwd|secret)=("[^"]*"|\S+)/gi, redact: (_m, [name]) => `${name ?? 'password'}=[redacted]` },
  {
    kind: 'email',
    re: /\b([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@[A-Za-z0-9.-]+\.([A-Za-z]{2,})\b/g,
    redact: (_m, [first, tld]) => `${first ?? ''}***@***.${tld ?? ''}`,
  },
  {
    kind: 'card_number',
    re: /\b\d(?:[ -]?\d){12,18}\b/g,
    redact: (m) => `****${m.replace(/\D/g, '').slice(-4)}`,
    valid: (m) => luhn(m.replace(/\D/g, '')),
  },
  { kind: 'ssn', re: /\b\d{3}-\d{2}-\d{4}\b/g, redact: () => '***-**-****' },
];

export interface LineFindings {
  redacted: string;
  counts: Partial<Record<PiiKind, number>>;
  emails: string[];
  keys: string[];
}

/** The PII matchers with the target's API key pattern (`logs.apiKey`, its value in the group `key`) after the bearer one. */
function matchersWith(apiKey: RegExp): PiiMatcher[] {
  const key: PiiMatcher = {
    kind: 'api_key',
    re: new RegExp(apiKey.source, apiKey.flags.includes('g') ? apiKey.flags : `${apiKey.flags}g`),
    group: LOG_PATTERN_GROUPS.apiKey ?? 'key',
    redact: (_m, [k]) => `[key ${fingerprintOf(k ?? '')}]`,
  };
  return [MATCHERS[0] as PiiMatcher, key, ...MATCHERS.slice(1)];
}

const REPLICA_MATCHERS = matchersWith(DEFAULT_LOG_MATCHERS.apiKey);

/** Finds PII in one log line and returns the line with every match redacted. */
export function redactLine(line: string, matchers: PiiMatcher[] = REPLICA_MATCHERS): LineFindings {
  const counts: Partial<Record<PiiKind, number>> = {};
  const emails: string[] = [];
  const keys: string[] = [];
  let text = line;
  for (const m of matchers) {
    text = text.replace(m.re, (match: string, ...rest: unknown[]) => {
      if (m.valid && !m.valid(match)) return match;
      const named = rest[rest.length - 1];
      const groups =
        m.group !== undefined
          ? [typeof named === 'object' && named !== null ? ((named as Record<string, string | undefined>)[m.group] ?? match) : match]
          : rest.filter((g): g is string => typeof g === 'string');
      counts[m.kind] = (counts[m.kind] ?? 0) + 1;
      if (m.kind === 'email') emails.push(match.toLowerCase());
      if (m.kind === 'api_key' && groups[0]) keys.push(groups[0]);
      return m.redact(match, groups);
    });
  }
  return { redacted: text, counts, emails, keys };
}

/** Counts and redacted samples over many lines; the raw keys are returned only to the caller in this process. */
export function scanLines(lines: string[], apiKey: RegExp = DEFAULT_LOG_MATCHERS.apiKey): Omit<PiiScan, 'component' | 'since' | 'leakedKeys'> & { rawKeys: string[] } {
  const matchers = apiKey === DEFAULT_LOG_MATCHERS.apiKey ? REPLICA_MATCHERS : matchersWith(apiKey);
  const counts = Object.fromEntries(PII_KINDS.map((k) => [k, 0])) as Record<PiiKind, number>;
  const emails = new Set<string>();
  const rawKeys = new Set<string>();
  const samples: string[] = [];
  let linesWithPii = 0;
  for (const line of lines) {
    const f = redactLine(line, matchers);
    const kinds = Object.entries(f.counts) as [PiiKind, number][];
    if (kinds.length === 0) continue;
    linesWithPii += 1;
    for (const [k, n] of kinds) counts[k] += n;
    f.emails.forEach((e) => emails.add(e));
    f.keys.forEach((k) => rawKeys.add(k));
    if (samples.length < 5) samples.push(f.redacted.slice(0, 240));
  }
  return { linesScanned: lines.length, linesWithPii, counts, distinctEmails: emails.size, samples, rawKeys: [...rawKeys] };
}

/** The users whose stored key hash is one of `$1` (sha256 hex): id and hash. */
export function usersByKeyHashStatement(schema: PgSchemaNames): PgStatement {
  return pgStatement(schema, (n) => `SELECT u.id, ${n('users.apiKeyHash', 'u')} AS api_key_hash FROM users u WHERE ${n('users.apiKeyHash', 'u')} = ANY($1::text[])`);
}

/** Audit actions `$1` in the last `$2` hours, per action and actor, with whether the actor is an admin. */
export function auditAccessStatement(schema: PgSchemaNames): PgStatement {
  return pgStatement(
    schema,
    (n) => `SELECT a.action, a.actor_user_id::text AS actor, bool_or(${n('users.isAdmin', 'u')}) AS admin, count(*)::text AS n, max(a.created_at) AS latest
         FROM audit_logs a LEFT JOIN users u ON u.id = a.actor_user_id
         WHERE a.action = ANY($1::text[]) AND a.created_at > now() - make_interval(hours => $2) GROUP BY a.action, a.actor_user_id`,
  );
}

/** The first 12 hex digits of the stored key hash of each user in `$1`. */
export function keyFingerprintsStatement(schema: PgSchemaNames): PgStatement {
  return pgStatement(schema, (n) => `SELECT u.id, left(${n('users.apiKeyHash', 'u')}, 12) AS fp FROM users u WHERE u.id = ANY($1::int[])`);
}

export function createSecurityActivities(deps: ActivityDeps) {
  const docker = createDockerActivities(deps);
  const http = createHttpActivities(deps);
  const doFetch = deps.fetch ?? fetch;

  function settings(target: string) {
    return targetConfig(deps, target).security;
  }

  function sinceSeconds(sinceIso: string): number {
    const t = Date.parse(sinceIso);
    if (Number.isNaN(t)) throw permanent(ErrorType.BadInput, 'since must be an ISO-8601 time');
    return Math.max(1, Math.ceil((Date.now() - t) / 1000));
  }

  async function apiLogLines(target: string, component: string, sinceIso: string): Promise<string[]> {
    const logs = await docker.containerLogs({ target, component, sinceSeconds: sinceSeconds(sinceIso), limit: 1_000_000 });
    return logs.lines;
  }

  /** What a workflow may know of the target's breach settings (no paths). */
  async function securitySettings(input: { target: string }): Promise<{ logWindowMinutes: number; contacts: Record<'owner' | 'security' | 'legal', string[]>; keyStoreConfigured: boolean }> {
    const s = settings(input.target);
    return { logWindowMinutes: s.logWindowMinutes, contacts: s.contacts, keyStoreConfigured: Boolean(s.keyStoreDir) };
  }

  /** PII in a component's logs since a time: counts per kind, redacted samples, leaked keys by fingerprint. */
  async function scanLogsForPii(input: { target: string; component: string; since: string }): Promise<PiiScan> {
    const lines = await apiLogLines(input.target, input.component, input.since);
    const { rawKeys, ...scan } = scanLines(lines, logMatchers(deps, input.target).apiKey);
    const hashes = rawKeys.map((k) => createHash('sha256').update(k).digest('hex'));
    const owners = new Map<string, number>();
    if (hashes.length > 0) {
      const stmt = usersByKeyHashStatement(targetSchemaNames(deps, input.target));
      const rows = await withPgClient(deps, input.target, (c) => runStatement<{ id: number; api_key_hash: string }>(c, input.target, stmt, [hashes]));
      for (const r of rows.rows) owners.set(r.api_key_hash, Number(r.id));
    }
    const leakedKeys = hashes.map((h) => ({ fingerprint: h.slice(0, 12), userId: owners.get(h) ?? null }));
    return { component: input.component, since: input.since, ...scan, leakedKeys };
  }

  /** Audit actions that read or export personal data in the last `hours`. */
  async function auditAccess(input: { target: string; hours: number }): Promise<AuditAccess> {
    const actions = settings(input.target).accessActions;
    const stmt = auditAccessStatement(targetSchemaNames(deps, input.target));
    const [rows, recorded] = await withPgClient(deps, input.target, async (c) => [
      await runStatement<{ action: string; actor: string | null; admin: boolean | null; n: string; latest: Date }>(c, input.target, stmt, [actions, input.hours]),
      await c.query<{ action: string }>('SELECT DISTINCT action FROM audit_logs WHERE action = ANY($1::text[])', [actions]),
    ] as const);
    const byAction: Record<string, number> = {};
    const actors = new Set<number>();
    let latest: string | undefined;
    let byNonAdmins = 0;
    for (const r of rows.rows) {
      byAction[r.action] = (byAction[r.action] ?? 0) + Number(r.n);
      if (r.admin !== true) byNonAdmins += Number(r.n);
      if (r.actor !== null) actors.add(Number(r.actor));
      const at = new Date(r.latest).toISOString();
      if (!latest || at > latest) latest = at;
    }
    const count = Object.values(byAction).reduce((a, b) => a + b, 0);
    return {
      hours: input.hours,
      count,
      byAction,
      actors: [...actors].sort((a, b) => a - b),
      byNonAdmins,
      ...(latest ? { latest } : {}),
      recordedActions: recorded.rows.map((r) => r.action).sort(),
    };
  }

  /** Requests per user in the last `hours`; a user far above the median is an anomaly. */
  async function keyUsage(input: { target: string; hours: number }): Promise<KeyUsage> {
    const s = settings(input.target);
    const rows = await withPgClient(deps, input.target, (c) =>
      c.query<{ user_id: number; n: string; last: Date }>(
        `SELECT user_id, count(*)::text AS n, max(created_at) AS last FROM request_logs
         WHERE created_at > now() - make_interval(hours => $1) GROUP BY user_id`,
        [input.hours],
      ),
    );
    const counts = rows.rows.map((r) => Number(r.n)).sort((a, b) => a - b);
    const median = counts.length ? (counts[Math.floor(counts.length / 2)] ?? 0) : 0;
    const anomalies = rows.rows
      .filter((r) => Number(r.n) >= s.anomalyMinRequests && Number(r.n) >= median * s.anomalyFactor)
      .map((r) => ({ userId: Number(r.user_id), requests: Number(r.n), lastRequest: new Date(r.last).toISOString() }))
      .sort((a, b) => b.requests - a.requests)
      .slice(0, 10);
    return { hours: input.hours, users: counts.length, medianRequests: median, anomalies };
  }

  /**
   * Logs since the window start and the last day's audit rows, written once with a sha256 manifest.
   * The directory is named after the incident and its run, so a later incident never reuses it.
   */
  async function preserveBreachEvidence(input: { target: string; component: string; since: string; evidenceId: string }) {
    const [lines, audit] = await Promise.all([
      apiLogLines(input.target, input.component, input.since),
      withPgClient(deps, input.target, (c) => c.query('SELECT * FROM audit_logs WHERE created_at > now() - interval \'24 hours\' ORDER BY id'), 30_000),
    ]);
    const dir = incidentEvidenceDir(deps, input.evidenceId);
    const bundle = await preserveEvidence(dir, [
      { name: `${input.component}-logs.txt`, content: lines.map((l) => `${l}\n`).join('') },
      { name: 'audit-logs-24h.jsonl', content: audit.rows.map((r) => `${JSON.stringify(r)}\n`).join('') },
    ]);
    // Evidence holds the raw personal data: readable by the engine's user only.
    await chmod(dir, 0o700);
    return { dir: bundle.dir, manifest: bundle.manifest, reused: bundle.reused, files: bundle.files, logLines: lines.length, auditRows: audit.rowCount ?? 0 };
  }

  /** Which of these leaked keys still open their user's account (the stored hash still matches). */
  async function leakedKeysValid(input: { target: string; keys: { userId: number; fingerprint: string }[] }): Promise<{ valid: { userId: number; fingerprint: string }[] }> {
    if (input.keys.length === 0) return { valid: [] };
    const stmt = keyFingerprintsStatement(targetSchemaNames(deps, input.target));
    const rows = await withPgClient(deps, input.target, (c) => runStatement<{ id: number; fp: string }>(c, input.target, stmt, [input.keys.map((k) => k.userId)]));
    const current = new Map(rows.rows.map((r) => [Number(r.id), r.fp]));
    return { valid: input.keys.filter((k) => current.get(k.userId) === k.fingerprint) };
  }

  async function storeKey(dir: string, userId: number, key: string): Promise<string> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const file = path.join(dir, `user-${userId}.key`);
    const tmp = `${file}.tmp-${process.pid}`;
    await writeFile(tmp, `${key}\n`, { mode: 0o600 });
    await rename(tmp, file);
    return file;
  }

  /** The whole answer of a rotation whose new key could not be read, beside the keys (mode 600). */
  async function storeRawAnswer(dir: string, userId: number, body: unknown): Promise<string> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const file = path.join(dir, `user-${userId}.rotate-answer.json`);
    const tmp = `${file}.tmp-${process.pid}`;
    await writeFile(tmp, `${typeof body === 'string' ? body : JSON.stringify(body)}\n`, { mode: 0o600 });
    await rename(tmp, file);
    return file;
  }

  /** GET /v1/users/me with the key read back from the store, as anything configured with it would. */
  async function keyOpensAccount(target: string, file: string, userId: number): Promise<boolean> {
    const key = readSecret({ file });
    const res = await doFetch(new URL('/v1/users/me', targetConfig(deps, target).baseUrl).toString(), {
      headers: { authorization: `Bearer ${key ?? ''}` },
      signal: AbortSignal.timeout(5000),
    });
    if (!res.ok) return false;
    const r = answerReader(deps, target, 'usersMe', 'GET /v1/users/me', await res.json());
    const id = r.id('id');
    r.orThrow();
    return id === String(userId);
  }

  /**
   * Rotates each leaked key that still works through the admin API. The new key is written to the
   * key store (mode 600) and checked by signing in with it; it is never returned.
   */
  async function rotateLeakedKeys(input: { target: string; keys: { userId: number; fingerprint: string }[]; reason: string }): Promise<{ rotated: { userId: number; newFingerprint: string }[]; skipped: number[] }> {
    const dir = settings(input.target).keyStoreDir;
    if (!dir) throw permanent(ErrorType.NotConfigured, `target "${input.target}" has no security.keyStoreDir for rotated keys`);
    const { valid } = await leakedKeysValid(input);
    const rotated: { userId: number; newFingerprint: string }[] = [];
    for (const k of valid) {
      const res = await http.adminRequest({ target: input.target, method: 'POST', path: `/v1/admin/users/${k.userId}/rotate-key`, body: { reason: input.reason } });
      const r = answerReader(deps, input.target, 'rotateKey', `POST /v1/admin/users/${k.userId}/rotate-key`, res.body);
      const key = r.string('apiKey');
      if (key === undefined || key.length < 16) {
        // The target has rotated the key: its old one no longer works, and the new one is somewhere in
        // this answer. Kept where rotated keys go (mode 600), for a person to recover; never logged.
        const kept = await storeRawAnswer(path.resolve(dir), k.userId, res.body);
        throw permanent(
          ErrorType.Refused,
          `rotating the key of user ${k.userId} returned no usable new key${r.problems.length ? ` (${r.problems.join('; ')})` : ''}; the answer is kept in ${kept} for a person to recover the key`,
        );
      }
      const file = await storeKey(path.resolve(dir), k.userId, key);
      if (!(await keyOpensAccount(input.target, file, k.userId))) throw new Error(`the new key of user ${k.userId} does not sign in`);
      rotated.push({ userId: k.userId, newFingerprint: fingerprintOf(key) });
    }
    const skipped = input.keys.filter((k) => !valid.some((v) => v.userId === k.userId)).map((k) => k.userId);
    return { rotated, skipped };
  }

  /** The user holding this email, if any (the email comes from the erasure request). */
  async function findUserByEmail(input: { target: string; email: string }): Promise<{ userId: number | null }> {
    const rows = await withPgClient(deps, input.target, (c) => c.query<{ id: number }>('SELECT id FROM users WHERE lower(email) = lower($1)', [input.email]));
    return { userId: rows.rows[0] ? Number(rows.rows[0].id) : null };
  }

  /** GDPR erasure through the admin API: anonymises the user's email and revokes the key. */
  async function eraseUser(input: { target: string; userId: number }): Promise<{ detail: string }> {
    const res = await http.adminRequest({ target: input.target, method: 'POST', path: `/v1/gdpr/erasure/${input.userId}` });
    const r = answerReader(deps, input.target, 'erasure', `POST /v1/gdpr/erasure/${input.userId}`, res.body);
    const erased = r.boolean('erased');
    const idempotent = r.boolean('idempotent');
    if (erased === undefined) r.orThrow();
    if (erased !== true) throw new Error(`erasure of user ${input.userId} was not confirmed`);
    const how = idempotent === undefined ? `erased (whether it already was is unknown: ${r.problems.join('; ')})` : idempotent ? 'was already erased' : 'erased (email anonymised, key revoked)';
    return { detail: `user ${input.userId} ${how}` };
  }

  return { securitySettings, scanLogsForPii, auditAccess, keyUsage, preserveBreachEvidence, leakedKeysValid, rotateLeakedKeys, findUserByEmail, eraseUser };
}
