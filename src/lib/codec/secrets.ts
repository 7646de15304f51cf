/**
 * The codec's secrets file: encryption keys (payloads at rest), seal keys (who sent a signal or an
 * update), the operators who may use the codec server, and optionally the OIDC issuer whose access
 * tokens the Temporal UI passes on.
 *
 *   encryption: { active: k1, keys: { k1: <base64 of 32 bytes>, k0: <older key, still decrypts> } }
 *   seal:       { active: s1, keys: { s1: <base64 of 32 bytes> } }
 *   operators:
 *     - { name: alice, password: "scrypt$16384$8$1$<salt b64>$<hash b64>" }
 *     - { name: carol, token: "sha256$<hex of sha256(token)>" }
 *   oidc: { issuer: ..., audience: ..., jwksUrl: ... | jwksFile: ..., identityClaim: email }
 *   slack: { signingSecret: <the Slack app's signing secret>, users: { U012ABCDEF: alice } }
 *
 * YAML or JSON. Every problem is reported with the file and the path in it; no message, log line or
 * error carries a key, a password, a token or a hash.
 */
import { createHash, randomBytes, scrypt as scryptCallback, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ConfigError } from '../../config';

export class SecretsError extends ConfigError {}

/** Key ids travel in payload metadata: short, printable, unambiguous. */
const KEY_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
/** Operator names become `seal-by` and are compared with the policy's approvers. */
const OPERATOR_NAME = /^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,127}$/;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

export const SCRYPT_DEFAULTS = { N: 16384, r: 8, p: 1, saltBytes: 16, keyBytes: 32 } as const;
/** Bounds on scrypt parameters read from the file, so a bad file cannot make a login take minutes. */
const SCRYPT_MAX_N = 1 << 20;

function decodeBase64(text: string): Buffer | undefined {
  const t = text.trim();
  if (!BASE64.test(t) || t.length % 4 !== 0) return undefined;
  return Buffer.from(t, 'base64');
}

const keyRingSchema = z
  .object({
    active: z.string().regex(KEY_ID, 'a key id (letters, digits, _ . -; at most 64)'),
    keys: z
      .record(z.string(), z.string())
      .superRefine((keys, ctx) => {
        for (const [id, value] of Object.entries(keys)) {
          if (!KEY_ID.test(id))
            ctx.addIssue({
              code: z.ZodIssueCode.custom,
              path: [id],
              message: `"${id}" is not a key id (letters, digits, _ . -)`,
            });
          const bytes = decodeBase64(value);
          if (!bytes || bytes.length !== 32)
            ctx.addIssue({
              code: z.ZodIssueCode.custom,
              path: [id],
              message: 'must be the base64 of exactly 32 bytes (scripts/codec-secrets.ts creates keys)',
            });
        }
      })
      .refine((keys) => Object.keys(keys).length > 0, 'at least one key'),
  })
  .strict()
  .superRefine((ring, ctx) => {
    if (!Object.prototype.hasOwnProperty.call(ring.keys, ring.active))
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ['active'],
        message: `active key "${ring.active}" is not among keys (${Object.keys(ring.keys).join(', ')})`,
      });
  });

const PASSWORD_FORMAT = /^scrypt\$(\d+)\$(\d+)\$(\d+)\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)$/;
const TOKEN_FORMAT = /^sha256\$([0-9a-f]{64})$/i;

const operatorSchema = z
  .object({
    name: z.string().regex(OPERATOR_NAME, 'a name: letters, digits and _ . @ + -, starting with a letter or digit'),
    password: z
      .string()
      .refine((p) => parsePasswordHash(p) !== undefined, {
        message: 'must be "scrypt$N$r$p$<salt base64>$<hash base64>" (scripts/codec-secrets.ts add-operator writes it)',
      })
      .optional(),
    token: z
      .string()
      .regex(TOKEN_FORMAT, 'must be "sha256$<64 hex digits>" (scripts/codec-secrets.ts add-token writes it)')
      .optional(),
  })
  .strict()
  .refine((o) => o.password ?? o.token, 'an operator needs a password, a token or both');

const oidcSchema = z
  .object({
    issuer: z.string().url(),
    audience: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]),
    jwksUrl: z.string().url().optional(),
    /** A JWKS document on disk (an IdP without a reachable JWKS endpoint, or tests). Relative to the secrets file. */
    jwksFile: z.string().min(1).optional(),
    /** The claim whose value becomes the operator's identity (`seal-by`). */
    identityClaim: z.string().min(1).default('email'),
    algorithms: z
      .array(z.enum(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA']))
      .min(1)
      .default(['RS256', 'ES256']),
    /** Seconds of clock skew allowed on exp / nbf / iat. */
    clockToleranceSeconds: z.number().int().min(0).max(300).default(30),
  })
  .strict()
  .refine((o) => (o.jwksUrl ? 1 : 0) + (o.jwksFile ? 1 : 0) === 1, 'give exactly one of jwksUrl and jwksFile');

const slackSchema = z
  .object({
    /** The Slack app's signing secret: interaction requests are signed with it (`v0` HMAC-SHA256). */
    signingSecret: z.string().min(16, 'a Slack signing secret is 32 hex characters'),
    /** Slack user id → the operator identity a button press counts for. Unmapped users decide nothing. */
    users: z.record(z.string().regex(/^[UW][A-Z0-9]{2,30}$/, 'a Slack user id (U… or W…)'), z.string().regex(OPERATOR_NAME, 'an operator name')).default({}),
  })
  .strict();

export const SecretsFileSchema = z
  .object({
    encryption: keyRingSchema,
    /** Needed by the worker (verifies) and the codec server (seals); a file for encryption only may leave it out. */
    seal: keyRingSchema.optional(),
    operators: z.array(operatorSchema).default([]),
    oidc: oidcSchema.optional(),
    slack: slackSchema.optional(),
  })
  .strict()
  .superRefine((s, ctx) => {
    const seen = new Set<string>();
    s.operators.forEach((o, i) => {
      if (seen.has(o.name))
        ctx.addIssue({
          code: z.ZodIssueCode.custom,
          path: ['operators', i, 'name'],
          message: `operator "${o.name}" is listed twice`,
        });
      seen.add(o.name);
    });
    if (s.seal) {
      const enc = new Set(Object.values(s.encryption.keys).map((k) => k.trim()));
      for (const [id, k] of Object.entries(s.seal.keys))
        if (enc.has(k.trim()))
          ctx.addIssue({
            code: z.ZodIssueCode.custom,
            path: ['seal', 'keys', id],
            message: 'a seal key must not also be an encryption key',
          });
    }
  });

export type SecretsFile = z.infer<typeof SecretsFileSchema>;

/** Keys by id, and the one new payloads use. */
export interface KeyRing {
  active: string;
  keys: ReadonlyMap<string, Buffer>;
}

export interface PasswordHash {
  N: number;
  r: number;
  p: number;
  salt: Buffer;
  hash: Buffer;
}

export interface Operator {
  name: string;
  password?: PasswordHash;
  /** sha256 of the operator's personal token. */
  tokenSha256?: Buffer;
}

export interface OidcSettings {
  issuer: string;
  audience: string[];
  jwksUrl?: string;
  /** Absolute path. */
  jwksFile?: string;
  identityClaim: string;
  algorithms: string[];
  clockToleranceSeconds: number;
}

export interface SlackSettings {
  signingSecret: Buffer;
  /** Slack user id → operator identity. */
  users: ReadonlyMap<string, string>;
}

export interface CodecSecrets {
  /** Absolute path of the file these came from (`(inline)` when parsed from memory). */
  origin: string;
  encryption: KeyRing;
  seal?: KeyRing;
  operators: readonly Operator[];
  oidc?: OidcSettings;
  slack?: SlackSettings;
  /** Things worth telling the operator that do not stop the process (file permissions). */
  warnings: string[];
}

export function parsePasswordHash(text: string): PasswordHash | undefined {
  const m = PASSWORD_FORMAT.exec(text);
  if (!m) return undefined;
  const [N, r, p] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const salt = decodeBase64(m[4] ?? '');
  const hash = decodeBase64(m[5] ?? '');
  const powerOfTwo = N > 1 && (N & (N - 1)) === 0;
  if (!powerOfTwo || N > SCRYPT_MAX_N || r < 1 || r > 32 || p < 1 || p > 16) return undefined;
  if (!salt || salt.length < 8 || !hash || hash.length < 16 || hash.length > 64) return undefined;
  return { N, r, p, salt, hash };
}

function keyRing(ring: { active: string; keys: Record<string, string> }): KeyRing {
  return {
    active: ring.active,
    keys: new Map(Object.entries(ring.keys).map(([id, b64]) => [id, Buffer.from(b64.trim(), 'base64')])),
  };
}

function formatIssues(error: z.ZodError): string[] {
  return error.issues.map((i) => `  ${i.path.map(String).join('.') || '(root)'}: ${i.message}`);
}

/** Validates a parsed secrets document. `origin` names it in errors; relative `jwksFile`s resolve against its directory. */
export function parseSecrets(raw: unknown, origin = '(inline)'): CodecSecrets {
  const parsed = SecretsFileSchema.safeParse(raw ?? {});
  if (!parsed.success)
    throw new SecretsError(`secrets file ${origin} is invalid:\n${formatIssues(parsed.error).join('\n')}`);
  const s = parsed.data;
  const baseDir = origin.startsWith('(') ? process.cwd() : path.dirname(origin);
  return {
    origin,
    encryption: keyRing(s.encryption),
    ...(s.seal ? { seal: keyRing(s.seal) } : {}),
    operators: s.operators.map((o) => ({
      name: o.name,
      ...(o.password ? { password: parsePasswordHash(o.password) } : {}),
      ...(o.token ? { tokenSha256: Buffer.from(TOKEN_FORMAT.exec(o.token)?.[1] ?? '', 'hex') } : {}),
    })),
    ...(s.oidc
      ? {
          oidc: {
            issuer: s.oidc.issuer,
            audience: Array.isArray(s.oidc.audience) ? s.oidc.audience : [s.oidc.audience],
            ...(s.oidc.jwksUrl ? { jwksUrl: s.oidc.jwksUrl } : {}),
            ...(s.oidc.jwksFile ? { jwksFile: path.resolve(baseDir, s.oidc.jwksFile) } : {}),
            identityClaim: s.oidc.identityClaim,
            algorithms: s.oidc.algorithms,
            clockToleranceSeconds: s.oidc.clockToleranceSeconds,
          },
        }
      : {}),
    ...(s.slack ? { slack: { signingSecret: Buffer.from(s.slack.signingSecret, 'utf8'), users: new Map(Object.entries(s.slack.users)) } } : {}),
    warnings: [],
  };
}

/** Reads the raw document: JSON for `.json`, YAML otherwise. Errors name the file, never its content. */
export function readSecretsDocument(file: string): unknown {
  const abs = path.resolve(file);
  if (!existsSync(abs))
    throw new SecretsError(
      `secrets file not found: ${abs} (create it: npx tsx scripts/codec-secrets.ts init --file ${file})`,
    );
  let text: string;
  try {
    text = readFileSync(abs, 'utf8');
  } catch (err) {
    throw new SecretsError(`secrets file ${abs} cannot be read: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  try {
    return abs.endsWith('.json') ? (JSON.parse(text) as unknown) : (parseYaml(text) as unknown);
  } catch (err) {
    // The parsers' messages may quote the offending line, which may hold a key: give the position only.
    const e = err as { linePos?: Array<{ line: number; col: number }> };
    const at = e.linePos?.[0] ? ` at line ${e.linePos[0].line}, column ${e.linePos[0].col}` : '';
    throw new SecretsError(`secrets file ${abs} is not valid ${abs.endsWith('.json') ? 'JSON' : 'YAML'}${at}`);
  }
}

/** Loads and validates the secrets file. A file that others may read is loaded with a warning. */
export function loadSecrets(file: string): CodecSecrets {
  const abs = path.resolve(file);
  const secrets = parseSecrets(readSecretsDocument(abs), abs);
  const mode = statSync(abs).mode & 0o777;
  if (mode & 0o077)
    secrets.warnings.push(
      `secrets file ${abs} has mode ${mode.toString(8).padStart(4, '0')}: others may read it (chmod 600)`,
    );
  return secrets;
}

// ---- passwords and tokens ----

function scrypt(password: string, salt: Buffer, keylen: number, opts: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scryptCallback(password, salt, keylen, opts, (err, key) => (err ? reject(err) : resolve(key))),
  );
}

/** `scrypt$N$r$p$<salt>$<hash>` for a new password. */
export async function hashPassword(password: string): Promise<string> {
  const { N, r, p, saltBytes, keyBytes } = SCRYPT_DEFAULTS;
  const salt = randomBytes(saltBytes);
  const hash = await scrypt(password, salt, keyBytes, { N, r, p, maxmem: 256 * N * r });
  return `scrypt$${N}$${r}$${p}$${salt.toString('base64')}$${hash.toString('base64')}`;
}

/** A fixed hash checked when the name is unknown, so a login takes as long whether or not the name exists. */
const DUMMY_HASH: PasswordHash = {
  N: SCRYPT_DEFAULTS.N,
  r: SCRYPT_DEFAULTS.r,
  p: SCRYPT_DEFAULTS.p,
  salt: Buffer.alloc(16, 7),
  hash: Buffer.alloc(32, 7),
};

export async function verifyPassword(stored: PasswordHash | undefined, password: string): Promise<boolean> {
  const h = stored ?? DUMMY_HASH;
  const derived = await scrypt(password, h.salt, h.hash.length, {
    N: h.N,
    r: h.r,
    p: h.p,
    maxmem: 256 * h.N * h.r + 1024 * 1024,
  });
  return timingSafeEqual(derived, h.hash) && stored !== undefined;
}

/** The operator whose password this is, or undefined (the same time either way). */
export async function checkPassword(
  secrets: CodecSecrets,
  name: string,
  password: string,
): Promise<Operator | undefined> {
  const op = secrets.operators.find((o) => o.name === name);
  const ok = await verifyPassword(op?.password, password);
  return ok ? op : undefined;
}

export function sha256(data: string | Buffer): Buffer {
  return createHash('sha256').update(data).digest();
}

/** A new personal token (shown once) and the line stored for it. */
export function newToken(): { token: string; stored: string } {
  const token = randomBytes(32).toString('base64url');
  return { token, stored: `sha256$${sha256(token).toString('hex')}` };
}

/** The operator this personal token belongs to. Every operator is compared (no early exit). */
export function checkToken(secrets: CodecSecrets, token: string): Operator | undefined {
  const given = sha256(token);
  let found: Operator | undefined;
  for (const op of secrets.operators) {
    if (op.tokenSha256 && timingSafeEqual(given, op.tokenSha256) && !found) found = op;
  }
  return found;
}

/** A fresh 32-byte key, base64. */
export function newKey(): string {
  return randomBytes(32).toString('base64');
}
