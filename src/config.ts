/**
 * Engine configuration: read once at process start from a YAML file (ENGINE_CONFIG, default
 * config/engine.yaml) plus a few environment variables, validated with zod, then passed in.
 * Activities and workflows never read process.env.
 *
 * Secrets are never in the file: it names files or environment variables that hold them
 * (`adminKeyFile`, `passwordFile`, `...Env`), and they are read into memory here.
 */
import { readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';

const secretRef = z
  .object({ file: z.string().optional(), env: z.string().optional(), value: z.string().optional() })
  .refine((s) => s.file ?? s.env ?? s.value, 'a secret needs one of file, env or value');

export const TargetSchema = z.object({
  description: z.string().default(''),
  /** Base URL of the service's HTTP API (health, metrics, admin endpoints). */
  baseUrl: z.string().url(),
  /** TLS endpoint checked by the certificate runbook, host:port. */
  tlsEndpoint: z.string().optional(),
  adminKey: secretRef.optional(),
  /** Containers are found by this label selector plus `remediation.component=<name>`. */
  containerLabel: z.string().regex(/^[\w.-]+=[\w.-]+$/, 'label selector must look like key=value'),
  components: z.array(z.string().min(1)).min(1),
  /** Components restarted one at a time during a rollback, in this order. */
  rollbackOrder: z.array(z.string()).default(['api', 'worker']),
  postgres: z
    .object({
      host: z.string(),
      port: z.number().int(),
      database: z.string(),
      user: z.string(),
      password: secretRef,
      /** Data directory inside the db container, checked with `df`. */
      dataDir: z.string().default('/var/lib/postgresql/data'),
      /** Latest dump inside the db container, for a two-person restore. */
      backupPath: z.string().default('/backups/latest.dump'),
    })
    .optional(),
  redis: z.object({ host: z.string(), port: z.number().int(), password: secretRef.optional() }).optional(),
  cache: z
    .object({
      /** Only keys matching this pattern may ever be flushed. */
      keyPattern: z.string().default('alfred:cache:*'),
      batchSize: z.number().int().min(1).max(1000).default(100),
    })
    .default({}),
  thresholds: z
    .object({
      diskUsagePct: z.number().default(90),
      poolUsagePct: z.number().default(90),
      redisMemoryPct: z.number().default(95),
    })
    .default({}),
});
export type TargetConfig = z.infer<typeof TargetSchema>;

const TierSchema = z.object({
  name: z.string(),
  contacts: z.array(z.string()).default([]),
  waitMs: z.number().int().positive(),
});

export const ConfigSchema = z.object({
  temporal: z
    .object({
      address: z.string().default('127.0.0.1:7233'),
      namespace: z.string().default('default'),
      taskQueue: z.string().default('remediation'),
      /** `true` for server TLS with system CAs, or mTLS settings (Temporal Cloud, self-hosted with client certs). */
      tls: z
        .union([
          z.boolean(),
          z.object({
            serverName: z.string().optional(),
            serverCaCert: secretRef.optional(),
            clientCert: secretRef.optional(),
            clientKey: secretRef.optional(),
          }),
        ])
        .default(false),
      apiKey: secretRef.optional(),
    })
    .default({}),
  docker: z.object({ socketPath: z.string() }),
  targets: z.record(z.string().regex(/^[a-z0-9-]+$/), TargetSchema),
  policy: z.object({
    approvers: z.array(z.string().min(1)).min(1),
    tiers: z.array(TierSchema).min(1),
    verifyDeadlineMs: z.number().int().positive().default(120_000),
    cooldownMs: z.number().int().nonnegative().default(600_000),
    lockWaitMs: z.number().int().positive().default(300_000),
    escalatedHoldMs: z.number().int().positive().default(7 * 24 * 3600_000),
    settleMs: z.number().int().nonnegative().default(60_000),
  }),
  notify: z
    .object({
      /** Notifications (escalations, status updates) are appended here as JSON lines. */
      file: z.string().optional(),
      slackWebhookUrl: z.string().url().optional(),
    })
    .default({}),
  worker: z
    .object({
      metricsAddress: z.string().default('127.0.0.1:9464'),
      /** How long in-flight activities may finish after SIGTERM before they are cancelled. */
      shutdownGraceTimeMs: z.number().int().nonnegative().default(30_000),
      maxConcurrentActivityTaskExecutions: z.number().int().positive().default(50),
    })
    .default({}),
});
export type EngineConfig = z.infer<typeof ConfigSchema>;
export type SecretRef = z.infer<typeof secretRef>;

/** Replaces `${VAR}` and `${VAR:-default}` in the YAML text with environment values. */
function interpolate(text: string, env: NodeJS.ProcessEnv): string {
  return text.replace(/\$\{(\w+)(?::-([^}]*))?\}/g, (_m, name: string, def?: string) => env[name] ?? def ?? '');
}

export class ConfigError extends Error {}

/** Loads and validates the configuration; every problem is reported with its path in the file. */
export function loadConfig(file = process.env.ENGINE_CONFIG ?? 'config/engine.yaml', env = process.env): EngineConfig {
  const abs = path.resolve(file);
  if (!existsSync(abs)) throw new ConfigError(`config file not found: ${abs} (set ENGINE_CONFIG)`);
  let raw: unknown;
  try {
    raw = parseYaml(interpolate(readFileSync(abs, 'utf8'), env));
  } catch (err) {
    throw new ConfigError(`config file ${abs} is not valid YAML: ${(err as Error).message}`);
  }
  const parsed = ConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new ConfigError(`config file ${abs} is invalid:\n${lines.join('\n')}`);
  }
  return parsed.data;
}

/** Reads a secret reference. Relative files resolve against the working directory. */
export function readSecret(ref: SecretRef | undefined, env = process.env): string | undefined {
  if (!ref) return undefined;
  if (ref.value) return ref.value;
  if (ref.env) return env[ref.env];
  if (ref.file) {
    const f = path.resolve(ref.file);
    if (!existsSync(f)) throw new ConfigError(`secret file not found: ${f}`);
    return readFileSync(f, 'utf8').trim();
  }
  return undefined;
}
