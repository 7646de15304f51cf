/**
 * The receiver's own settings (config/receiver.yaml, or RECEIVER_CONFIG): where it listens, how
 * large a body may be, which sources are enabled and how each one authenticates, where routes and
 * state live. Secrets are references (file / env / value), resolved once at start with the engine's
 * `readSecret`, and never logged.
 */
import path from 'node:path';
import { z } from 'zod';
import { ConfigError, readSecret, type SecretRef } from '../config';
import { durationMs, formatIssues, formatPath, parseConfig, readConfigFile } from '../lib/config-file';

const secretRef = z
  .object({
    file: z.string().min(1).optional(),
    env: z.string().min(1).optional(),
    value: z.string().min(1).optional(),
  })
  .strict()
  .refine((s) => s.file ?? s.env ?? s.value, 'a secret needs one of file, env or value');

const bearerSource = z
  .object({
    /** Any of these tokens is accepted (several during a rotation). */
    bearerTokens: z.array(secretRef).min(1),
  })
  .strict();

export const ReceiverConfigSchema = z
  .object({
    listen: z
      .object({
        host: z.string().default('127.0.0.1'),
        port: z.number().int().min(0).max(65535).default(8095),
      })
      .strict()
      .default({}),
    /** Larger bodies are refused with 413 before they are parsed. */
    bodyLimitBytes: z
      .number()
      .int()
      .min(1024)
      .max(16 * 1024 * 1024)
      .default(256 * 1024),
    /** The whole body must arrive within this time after the headers, or the request gets 408 and is closed. */
    bodyTimeoutMs: durationMs.pipe(z.number().int().min(100).max(300_000)).default(10_000),
    /** The request line and headers must arrive within this time (node's `server.headersTimeout`), else 408. */
    headersTimeoutMs: durationMs.pipe(z.number().int().min(100).max(300_000)).default(10_000),
    /** The whole request must arrive within this time (node's `server.requestTimeout`), else 408. */
    requestTimeoutMs: durationMs.pipe(z.number().int().min(100).max(600_000)).default(30_000),
    /** Open connections at most; the connections beyond are closed at once, the open ones go on. */
    maxConnections: z.number().int().min(1).max(65_536).default(256),
    /** Deadline of the Temporal call behind `GET /readyz`. */
    readyTimeoutMs: durationMs.pipe(z.number().int().positive()).default(2_000),
    routesFile: z.string().default('config/routes.yaml'),
    /** Unrouted and refused alerts are appended here as JSON lines (`unrouted-alerts.jsonl`). */
    stateDir: z.string().default('.stack/receiver'),
    /** `unrouted-alerts.jsonl` rotates past `maxBytes`: `.1` is the newest old file; past `keep` the oldest is deleted. */
    unroutedFile: z
      .object({
        maxBytes: z
          .number()
          .int()
          .min(1024)
          .default(16 * 1024 * 1024),
        keep: z.number().int().min(1).max(100).default(3),
      })
      .strict()
      .default({}),
    /**
     * The dispatcher's per-incident lanes (calls for one incident, queued in arrival order). Past a
     * bound, the alert is answered 503 with Retry-After (its sender retries), logged and counted.
     */
    lanes: z
      .object({
        /** Incidents with calls waiting or in flight at once. */
        maxIncidents: z.number().int().min(1).default(1024),
        /** Calls queued behind one incident's call in flight (repeats of one alert share one call). */
        maxQueuedPerIncident: z.number().int().min(1).default(256),
        /**
         * How long the first alert for an incident with nothing in flight waits for repeats to join
         * its call (`50ms`); 0: only those of the same request and turn of the event loop. Every
         * request is still answered only once its alert's call is accepted.
         */
        coalesceWindowMs: durationMs.pipe(z.number().int().min(0).max(1000)).default(0),
      })
      .strict()
      .default({}),
    /** Defaults to the engine's `temporal.taskQueue`. */
    taskQueue: z.string().min(1).optional(),
    /** Deadline of each Temporal call; past it the webhook gets 503 and its sender retries. */
    temporalTimeoutMs: durationMs.pipe(z.number().int().positive()).default(10_000),
    retryAfterSeconds: z.number().int().positive().default(30),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    sources: z
      .object({
        alertmanager: bearerSource.optional(),
        generic: bearerSource.optional(),
        pagerduty: z
          .object({
            /** Webhook v3 signing secrets; several are accepted during a rotation. */
            signingSecrets: z.array(secretRef).min(1),
          })
          .strict()
          .optional(),
        grafana: z
          .object({
            bearerTokens: z.array(secretRef).min(1).optional(),
            hmac: z
              .object({
                secrets: z.array(secretRef).min(1),
                header: z.string().default('X-Grafana-Alerting-Signature'),
                /** When set, the signature covers `<timestamp>:<body>` and stale timestamps are refused. */
                timestampHeader: z.string().optional(),
                maxSkewSeconds: z.number().int().positive().default(300),
              })
              .strict()
              .optional(),
          })
          .strict()
          .refine((g) => g.bearerTokens ?? g.hmac, 'grafana needs bearerTokens, hmac or both')
          .optional(),
      })
      .strict()
      .default({}),
  })
  .strict()
  .refine((c) => c.headersTimeoutMs <= c.requestTimeoutMs, {
    message: 'headersTimeoutMs must not exceed requestTimeoutMs',
    path: ['headersTimeoutMs'],
  });

export type ReceiverConfig = z.infer<typeof ReceiverConfigSchema>;
export type SourceName = 'alertmanager' | 'pagerduty' | 'grafana' | 'generic';
export const SOURCES: readonly SourceName[] = ['alertmanager', 'pagerduty', 'grafana', 'generic'];

/** Paths and issues as every configuration reports them (src/lib/config-file.ts). */
export { formatIssues, formatPath };

/** Reads a YAML file, `${VAR}` substituted in its values (src/lib/config-file.ts); errors name the file. */
export function readYamlFile(file: string, env: NodeJS.ProcessEnv): unknown {
  return readConfigFile(file, env);
}

export function loadReceiverConfig(
  file = process.env.RECEIVER_CONFIG ?? 'config/receiver.yaml',
  env: NodeJS.ProcessEnv = process.env,
): ReceiverConfig {
  return parseConfig(ReceiverConfigSchema, readConfigFile(file, env), `config file ${path.resolve(file)}`);
}

/** Secrets in memory, per source. A source that is absent from the config is disabled. */
export interface ResolvedAuth {
  alertmanager?: { bearerTokens: string[] };
  generic?: { bearerTokens: string[] };
  pagerduty?: { signingSecrets: string[] };
  grafana?: {
    bearerTokens?: string[];
    hmac?: { secrets: string[]; header: string; timestampHeader?: string; maxSkewSeconds: number };
  };
}

function resolveAll(refs: SecretRef[], env: NodeJS.ProcessEnv, at: string): string[] {
  return refs
    .map((r, i) => {
      try {
        return readSecret(r, env);
      } catch (err) {
        throw new ConfigError(
          `${at}[${i}]: ${(err as Error).message} (scripts/alerting.sh up creates the receiver's token files)`,
        );
      }
    })
    .filter((s): s is string => typeof s === 'string' && s.length > 0);
}

/**
 * Resolves every secret reference. A missing secret file is a configuration error; an unset
 * environment variable leaves that secret out (a source left without any secret refuses everything).
 */
export function resolveAuth(cfg: ReceiverConfig, env: NodeJS.ProcessEnv = process.env): ResolvedAuth {
  const s = cfg.sources;
  const out: ResolvedAuth = {};
  if (s.alertmanager)
    out.alertmanager = {
      bearerTokens: resolveAll(s.alertmanager.bearerTokens, env, 'sources.alertmanager.bearerTokens'),
    };
  if (s.generic)
    out.generic = { bearerTokens: resolveAll(s.generic.bearerTokens, env, 'sources.generic.bearerTokens') };
  if (s.pagerduty)
    out.pagerduty = { signingSecrets: resolveAll(s.pagerduty.signingSecrets, env, 'sources.pagerduty.signingSecrets') };
  if (s.grafana) {
    out.grafana = {
      ...(s.grafana.bearerTokens
        ? { bearerTokens: resolveAll(s.grafana.bearerTokens, env, 'sources.grafana.bearerTokens') }
        : {}),
      ...(s.grafana.hmac
        ? {
            hmac: {
              secrets: resolveAll(s.grafana.hmac.secrets, env, 'sources.grafana.hmac.secrets'),
              header: s.grafana.hmac.header,
              maxSkewSeconds: s.grafana.hmac.maxSkewSeconds,
              ...(s.grafana.hmac.timestampHeader ? { timestampHeader: s.grafana.hmac.timestampHeader } : {}),
            },
          }
        : {}),
    };
  }
  return out;
}
