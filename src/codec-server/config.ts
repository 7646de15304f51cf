/**
 * Codec server settings: `config/codec-server.yaml` (or $CODEC_SERVER_CONFIG), `${VAR:-default}`
 * interpolated, then these environment variables when set:
 *
 *   CODEC_LISTEN        host:port            (listen, default 127.0.0.1:8234)
 *   CODEC_SECRETS_FILE  path                 (secretsFile, default .stack/secrets/codec.yaml)
 *   CODEC_UI_ORIGINS    comma-separated      (uiOrigins, default http://127.0.0.1:8233,http://localhost:8233)
 *   CODEC_SESSION_TTL   8h, 30m, 3600s, ms   (sessionTtl, default 8h)
 *   CODEC_SESSION_REVOCATIONS  path         (sessionRevocationsFile, default .stack/codec-server/revoked-sessions.jsonl)
 *   CODEC_TEMPORAL_ADDRESS     host:port    (temporal.address, default 127.0.0.1:7233: where Slack decisions go)
 *
 * No secret lives here: keys, operators and OIDC settings are in the secrets file (src/lib/codec/secrets.ts).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { ConfigError } from '../config';
import { durationMs, parseConfig, parseDuration, readConfigFile } from '../lib/config-file';

export { parseDuration };

const duration = durationMs.pipe(
  z
    .number()
    .min(1000, 'a duration of at least 1s (e.g. 8h, 30m)')
    .max(30 * 86_400_000, 'a duration of at most 30d (e.g. 8h, 30m)'),
);

/** `http://127.0.0.1:8233`: scheme, host and port; no path, no wildcard. */
const origin = z.string().refine(
  (o) => {
    try {
      const u = new URL(o);
      return (u.protocol === 'http:' || u.protocol === 'https:') && u.origin === o;
    } catch {
      return false;
    }
  },
  (o) => ({ message: `"${o}" is not an origin (scheme://host[:port], no path, no trailing slash, no wildcard)` }),
);

export const CodecServerConfigSchema = z
  .object({
    listen: z
      .object({
        host: z.string().min(1).default('127.0.0.1'),
        port: z.coerce.number().int().min(0).max(65535).default(8234),
      })
      .strict()
      .default({}),
    /** The secrets file: encryption and seal keys, operators, OIDC (scripts/codec-secrets.ts creates it). */
    secretsFile: z.string().min(1).default('.stack/secrets/codec.yaml'),
    /** Origins of the Temporal UI allowed to call with credentials (CORS). */
    uiOrigins: z.array(origin).default(['http://127.0.0.1:8233', 'http://localhost:8233']),
    /** How long a login session lasts. */
    sessionTtl: duration.default('8h'),
    /**
     * Where logouts are kept (JSON lines), shared by every codec server with the same secrets file so a
     * session signed out on one is refused by all; `""` keeps them in this process only.
     */
    sessionRevocationsFile: z.string().default('.stack/codec-server/revoked-sessions.jsonl'),
    /** Mark the session cookie `Secure` (the server is reached over HTTPS, e.g. behind a TLS proxy). */
    secureCookie: z.boolean().default(false),
    /** Larger /encode and /decode bodies are refused with 413. */
    bodyLimitBytes: z
      .number()
      .int()
      .min(1024)
      .max(64 * 1024 * 1024)
      .default(1024 * 1024),
    /** Failed logins per name and client address within `loginWindow` before further tries get 429. */
    maxLoginFailures: z.number().int().min(1).default(10),
    loginWindow: duration.default('15m'),
    /**
     * The Temporal frontend Slack decisions are sent to (only with a `slack` section in the secrets
     * file): the codec server seals each button press for the mapped operator and sends it as the
     * incident's "decide" update.
     */
    temporal: z
      .object({
        address: z.string().min(1).default('127.0.0.1:7233'),
        namespace: z.string().min(1).default('default'),
      })
      .strict()
      .default({}),
    slack: z
      .object({
        /** Where a button's outcome may be posted back: Slack's `response_url` must start with one of these. */
        responseUrlPrefixes: z.array(z.string().url()).min(1).default(['https://hooks.slack.com/']),
        /** How far a request's X-Slack-Request-Timestamp may be from now (Slack: five minutes). */
        maxSkew: duration.default('5m'),
      })
      .strict()
      .default({}),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  })
  .strict();

export type CodecServerConfig = z.infer<typeof CodecServerConfigSchema>;

export const DEFAULT_CONFIG_FILE = 'config/codec-server.yaml';

/**
 * Loads the settings. The default file may be absent (defaults and environment apply); a file named
 * explicitly must exist.
 */
export function loadCodecServerConfig(file?: string, env: NodeJS.ProcessEnv = process.env): CodecServerConfig {
  const named = file ?? env.CODEC_SERVER_CONFIG;
  const chosen = named ?? DEFAULT_CONFIG_FILE;
  const raw = named || existsSync(chosen) ? readConfigFile(chosen, env) : {};
  const merged: Record<string, unknown> = { ...((raw ?? {}) as Record<string, unknown>) };
  if (env.CODEC_LISTEN) {
    const m = /^(.*):(\d+)$/.exec(env.CODEC_LISTEN);
    if (!m) throw new ConfigError(`CODEC_LISTEN must be host:port, got "${env.CODEC_LISTEN}"`);
    merged.listen = { host: m[1]?.replace(/^\[(.*)\]$/, '$1') || '127.0.0.1', port: Number(m[2]) };
  }
  if (env.CODEC_SECRETS_FILE) merged.secretsFile = env.CODEC_SECRETS_FILE;
  if (env.CODEC_UI_ORIGINS)
    merged.uiOrigins = env.CODEC_UI_ORIGINS.split(',')
      .map((s) => s.trim())
      .filter(Boolean);
  if (env.CODEC_SESSION_TTL) merged.sessionTtl = env.CODEC_SESSION_TTL;
  if (env.CODEC_TEMPORAL_ADDRESS) merged.temporal = { ...((merged.temporal as object | undefined) ?? {}), address: env.CODEC_TEMPORAL_ADDRESS };
  if (env.CODEC_SESSION_REVOCATIONS !== undefined) merged.sessionRevocationsFile = env.CODEC_SESSION_REVOCATIONS;
  const where = named || existsSync(chosen) ? `config file ${path.resolve(chosen)}` : 'codec server settings';
  return parseConfig(CodecServerConfigSchema, merged, `${where} (with CODEC_* from the environment)`);
}
