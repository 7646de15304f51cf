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
import { z } from 'zod';
import { ConfigError, durationMs, parseConfig, readConfigFile } from './lib/config-file';
import { RUNBOOKS } from './workflows/catalog';
import { isTimeZone, MAINTENANCE_MODES, minutesOf, WEEKDAYS, type MaintenanceMode } from './lib/maintenance';
import {
  HTTP_REQUESTS_DEFAULTS,
  LABEL_NAME,
  LOG_PATTERN_DEFAULTS,
  METRIC_DEFAULTS,
  METRIC_NAME,
  PROVIDER_REQUESTS_DEFAULTS,
  logPatternProblem,
  type LogPattern,
} from './lib/target-signals';

const secretRef = z
  .object({ file: z.string().optional(), env: z.string().optional(), value: z.string().optional() })
  .refine((s) => s.file ?? s.env ?? s.value, 'a secret needs one of file, env or value');

/**
 * A table or column name on a target, as PostgreSQL stores it (lower case unless it was created
 * quoted). Only plain identifiers pass, and the SQL built from them always quotes them, so a setting
 * can name a column and nothing else.
 */
const SQL_IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_$]{0,62}$/;

/** True for a name `sqlColumn` accepts. */
export function isSqlIdentifier(name: string): boolean {
  return SQL_IDENTIFIER.test(name);
}

const sqlColumn = z.string().refine(isSqlIdentifier, (name) => ({
  message: `"${name}" is not a plain SQL identifier (a letter or _, then letters, digits, _ or $; at most 63)`,
}));

/** A table name, optionally qualified by its schema (`billing.wallets`). */
const sqlTable = z.string().refine(
  (name) => name.split('.').length <= 2 && name.split('.').every(isSqlIdentifier),
  (name) => ({ message: `"${name}" is not a table name (an SQL identifier, optionally schema.table)` }),
);

/**
 * Names of the target's tables and columns that the seeds do not state, each defaulting to the replica's
 * (`drill/`). The tables and columns the seeds quote (`users.email`, `used_tokens`, `request_logs.amount`,
 * `audit_logs`, ...) are not settings: the engine uses them as written there.
 */
const pgSchemaNames = z
  .object({
    users: z
      .object({
        /** Boolean column: the user is an administrator (left out of quota work, INC-07; admin access, INC-14). */
        isAdmin: sqlColumn.default('is_admin'),
        /** The sha256 hex of the user's API key (INC-06 key-hash check, INC-10 and INC-14 key owners). */
        apiKeyHash: sqlColumn.default('api_key_hash'),
        /** When the account was created (apiKeyTrace). */
        createdAt: sqlColumn.default('created_at'),
      })
      .default({}),
    wallets: z
      .object({
        /** The table of users' wallets, one or more per user; the first (lowest id) is topped up (INC-07). */
        table: sqlTable.default('wallets'),
        /** The wallet id, as the admin API's `/v1/wallets/<wallet_id>/topup` takes it. */
        id: sqlColumn.default('id'),
        /** The owning user's id (`users.id`). */
        userId: sqlColumn.default('user_id'),
        /** The wallet's balance. */
        balance: sqlColumn.default('balance'),
      })
      .default({}),
    requestLogs: z
      .object({
        /** The row id of a charge: the id a refund references (INC-08, apiKeyTrace). */
        id: sqlColumn.default('id'),
        /** The request's outcome (apiKeyTrace counts the user's requests by it). */
        status: sqlColumn.default('status'),
        /** The provider that served the request, nullable (apiKeyTrace). */
        provider: sqlColumn.default('provider'),
        /** On a refund row (amount < 0): the id of the charge it reverses; null on charges (INC-08). */
        refundOf: sqlColumn.default('refund_of'),
      })
      .default({}),
    /** `token_transfers` (seed 000 quotes `id, sender_id, recipient_id, amount, status, created_at`). */
    transfers: z
      .object({
        /** When the transfer was applied to both balances; null while it is not (transferNotApplied). */
        appliedAt: sqlColumn.default('applied_at'),
      })
      .default({}),
    /** `approval_requests` (seed 000 names the table): the approvals a transfer waits for. */
    approvals: z
      .object({
        id: sqlColumn.default('id'),
        /** The transfer the approval is for (`token_transfers.id`). */
        transferId: sqlColumn.default('transfer_id'),
        status: sqlColumn.default('status'),
        createdAt: sqlColumn.default('created_at'),
      })
      .default({}),
  })
  .default({});

/**
 * One SMTP relay. The probe upgrades to TLS whenever the relay offers STARTTLS and verifies its
 * certificate (the system's CAs, plus `caFile`); `auth` makes it authenticate after STARTTLS.
 */
const smtpRelay = z.object({
  host: z.string().min(1),
  port: z.number().int().min(1).max(65535),
  probeHost: z.string().min(1).optional(),
  probePort: z.number().int().min(1).max(65535).optional(),
  /**
   * A relay that offers no STARTTLS is a problem, and nothing is sent in plain text. Default: true
   * when `auth` is set (credentials never travel in plain text), else false (a plain port 25 relay).
   */
  requireTls: z.boolean().optional(),
  /** A PEM file of a CA trusted for this relay's certificate, besides the system's (a private CA, a self-signed relay). */
  caFile: z.string().min(1).optional(),
  /** The name the relay's certificate must be issued for. Default: `host` (what the component is given). */
  tlsName: z.string().min(1).optional(),
  /** SMTP AUTH after STARTTLS: PLAIN when the relay offers it, else LOGIN, unless `mechanism` names one. */
  auth: z
    .object({
      user: z.string().min(1),
      /** A secret reference (file, env or value), read when the probe runs and never recorded. */
      password: secretRef,
      mechanism: z.enum(['PLAIN', 'LOGIN']).optional(),
    })
    .optional(),
});

/** A log pattern: a regular expression, checked here (and its named group, where it extracts a value). */
function logPattern(key: LogPattern) {
  return z
    .string()
    .min(1)
    .superRefine((p, ctx) => {
      const problem = logPatternProblem(key, p);
      if (problem) ctx.addIssue({ code: z.ZodIssueCode.custom, message: problem });
    })
    .default(LOG_PATTERN_DEFAULTS[key]);
}

const logPatterns = Object.fromEntries(
  (Object.keys(LOG_PATTERN_DEFAULTS) as LogPattern[]).map((k) => [k, logPattern(k)]),
) as { [K in LogPattern]: ReturnType<typeof logPattern> };

const metricName = (d: string) => z.string().regex(METRIC_NAME, 'a Prometheus metric name').default(d);
const labelName = (d: string) => z.string().regex(LABEL_NAME, 'a Prometheus label name').default(d);
/** An HTTP path on the target: starts with `/`, no query, no spaces. */
const apiPath = z.string().regex(/^\/[\w\-/.:]*$/, 'a path starting with /');
/** A field of a JSON answer: a name, or a dotted path into nested objects and arrays (`metrics.p99_latency_ms`, `choices.0.message`). */
const answerField = z.string().regex(/^[\w-]+(\.[\w-]+)*$/, 'a field name or a dotted path such as metrics.p99_latency_ms');
/** A field of a JSON request body: a plain name. */
const requestField = z.string().regex(/^[\w-]+$/, 'a field name');

/**
 * How the target hashes one audit entry (INC-09; not in the seeds, which state only that the chain can
 * be "re-computed forward from the break point"). Each default is the replica's formula
 * (`drill/alfred/app/audit_chain.py`):
 *   hash = sha256_hex(previous_hash + JSON.stringify(content with keys sorted at every level)),
 *   content = {action, actor_user_id, created_at, details (null → {}), id, target_id, target_type}.
 * Before the engine writes a hash it checks that this definition reproduces the hashes the entries
 * before the break hold; it writes nothing otherwise.
 */
const auditHashColumn = z.union([
  sqlColumn,
  z.object({
    /** The `audit_logs` column. */
    column: sqlColumn,
    /** Its name in the hashed content (default: the column's name). */
    key: z.string().min(1).optional(),
    /** The value hashed when the column is NULL (default: null). */
    nullAs: z.unknown().optional(),
  }),
]);
export const AUDIT_HASH_DEFAULT_COLUMNS = [
  'action',
  'actor_user_id',
  'created_at',
  { column: 'details', nullAs: {} },
  'id',
  'target_id',
  'target_type',
] as const;
export const auditHashDefinition = z
  .object({
    /** The columns hashed, in this order (the order matters for `json` and `joined`). */
    columns: z.array(auditHashColumn).min(1).default([...AUDIT_HASH_DEFAULT_COLUMNS]),
    /**
     * How the content is serialised: `sorted-json` an object of the columns, keys sorted at every level,
     * as JSON.stringify writes it (no spaces); `json` the same object with the columns in the listed
     * order; `joined` the values joined by `separator` (NULL → empty, objects as sorted JSON).
     */
    serialise: z.enum(['sorted-json', 'json', 'joined']).default('sorted-json'),
    separator: z.string().default('|'),
    /** How timestamps enter the content: ISO-8601 UTC with milliseconds, or epoch milliseconds/seconds. */
    timestamps: z.enum(['iso-ms', 'epoch-ms', 'epoch-s']).default('iso-ms'),
    /** Node's digest name. */
    digest: z.enum(['sha256', 'sha384', 'sha512', 'sha1', 'md5', 'sha3-256', 'sha3-512']).default('sha256'),
    encoding: z.enum(['hex', 'base64']).default('hex'),
    /**
     * How the previous entry's hash enters: `prefix` digest(previous + content), `suffix` digest(content +
     * previous), `field` as one more content field named `previousHashKey`.
     */
    previousHash: z.enum(['prefix', 'suffix', 'field']).default('prefix'),
    previousHashKey: z.string().min(1).default('previous_hash'),
    /** The previous hash of the first entry. */
    genesis: z.string().default('0'.repeat(64)),
  })
  .default({});

/**
 * At most `maxActions` actions on a target within any `windowMs` (`1h`, `30m`, or milliseconds, as
 * every duration here), counted across its incidents; past it an automatic step is not run and its incident
 * escalates. A step people approved may still run past it (noted in its timeline), and counts.
 */
export const actionBudgetSchema = z
  .object({
    maxActions: z.number().int().nonnegative(),
    windowMs: durationMs.pipe(z.number().int().positive()),
  })
  .strict();

/** A configured maintenance window: fixed (`from`, `to`, ISO 8601 with a zone) or weekly hours in a time zone. */
const configuredWindowSchema = z
  .object({
    name: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'a window name is a-z, 0-9 and -'),
    reason: z.string().max(500).optional(),
    /** What alerts in this window do; without it, the target's `maintenance.mode`. */
    mode: z.enum(MAINTENANCE_MODES as [MaintenanceMode, ...MaintenanceMode[]]).optional(),
    from: z.string().datetime({ offset: true }).optional(),
    to: z.string().datetime({ offset: true }).optional(),
    weekly: z
      .object({
        days: z.array(z.enum(WEEKDAYS)).min(1),
        /** `HH:MM` local time; an end not after the start runs past midnight (`22:00` to `02:00`). */
        start: z.string().refine((v) => minutesOf(v) !== undefined, 'a time is HH:MM (00:00 to 24:00)'),
        end: z.string().refine((v) => minutesOf(v) !== undefined, 'a time is HH:MM (00:00 to 24:00)'),
        timezone: z.string().default('UTC').refine(isTimeZone, 'not a time zone this runtime knows (an IANA name, e.g. Europe/Paris)'),
      })
      .strict()
      .refine((w) => w.start !== w.end, 'a weekly window needs an end other than its start')
      .optional(),
  })
  .strict()
  .refine((w) => (w.weekly ? w.from === undefined && w.to === undefined : w.from !== undefined && w.to !== undefined), {
    message: 'a window is either weekly or has both from and to',
  })
  .refine((w) => w.weekly || Date.parse(w.to as string) > Date.parse(w.from as string), { message: 'a window ends after it starts' });

/**
 * A target's maintenance windows: while one is open, its incidents only diagnose (`diagnose`) or are
 * only recorded (`record`). Configured windows are listed here; people open others for a while with
 * `remediate maintenance start`, within `maxDurationMs`, if they are among `approvers` (without it,
 * the policy's approvers for this target).
 */
export const maintenanceSchema = z
  .object({
    mode: z.enum(MAINTENANCE_MODES as [MaintenanceMode, ...MaintenanceMode[]]).default('diagnose'),
    windows: z.array(configuredWindowSchema).default([]),
    maxDurationMs: durationMs.pipe(z.number().int().positive()).default(12 * 3600_000),
    approvers: z.array(z.string().min(1)).min(1).optional(),
  })
  .strict()
  .refine((m) => new Set(m.windows.map((w) => w.name)).size === m.windows.length, { message: 'window names must be unique' });

/**
 * A Docker Engine API (or Podman's compatible one): a unix socket on the worker's host, or TCP with
 * TLS and a client certificate (a daemon run with `--tlsverify`). Plain TCP is refused outright:
 * whoever reaches that port controls the host's containers, with no credential asked, and a loopback
 * exception would still hand the port to every local user. A host reached through an SSH tunnel is a
 * unix socket here (`ssh -L /run/docker-b.sock:/var/run/docker.sock ...`).
 */
export const dockerEndpointSchema = z
  .object({
    /** A unix socket, e.g. `/var/run/docker.sock` or Podman's `podman.sock`. */
    socketPath: z.string().min(1).optional(),
    /** A host name or IP address, without scheme or port. */
    host: z
      .string()
      .regex(
        /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}))*|\d{1,3}(?:\.\d{1,3}){3}|[0-9A-Fa-f:]*:[0-9A-Fa-f:.]*)$/,
        'a host name or IP address, without scheme or port (tcp://h:2376 is host: h, port: 2376)',
      )
      .optional(),
    /** The daemon's TLS port; 2376 by Docker's convention. */
    port: z.number().int().min(1).max(65535).optional(),
    /**
     * PEM secret references: the CA that signed the daemon's certificate (its name must match `host`),
     * and the client certificate and key the daemon accepts (its `--tlscacert` signed them).
     */
    tls: z.object({ ca: secretRef, cert: secretRef, key: secretRef }).strict().optional(),
  })
  .strict()
  .superRefine((d, ctx) => {
    const issue = (path: string[], message: string) => ctx.addIssue({ code: z.ZodIssueCode.custom, path, message });
    if (d.socketPath !== undefined && d.host !== undefined) {
      issue(['host'], 'give socketPath (a unix socket) or host (TCP with TLS), not both');
    } else if (d.socketPath === undefined && d.host === undefined) {
      issue([], 'give socketPath (a unix socket) or host, port and tls (TCP with TLS)');
    } else if (d.socketPath !== undefined) {
      if (d.port !== undefined) issue(['port'], 'port goes with host, not with socketPath');
      if (d.tls !== undefined) issue(['tls'], 'tls goes with host, not with socketPath');
    } else if (d.tls === undefined) {
      issue(
        ['tls'],
        'required with host: the Docker API over TCP without TLS is refused (anyone reaching the port controls the ' +
          "host's containers); give tls: { ca, cert, key }, or use socketPath",
      );
    }
  })
  .transform((d): DockerEndpoint =>
    d.socketPath !== undefined
      ? { socketPath: d.socketPath }
      : { host: d.host as string, port: d.port ?? 2376, tls: d.tls as DockerTls },
  );
export interface DockerTls {
  ca: SecretRef;
  cert: SecretRef;
  key: SecretRef;
}
/** Where a Docker API is: `targets.<name>.docker`, or the engine-wide `docker` socket. */
export type DockerEndpoint = { socketPath: string } | { host: string; port: number; tls: DockerTls };

/** The default budget: 10 automated actions per target per hour. */
export const ACTION_BUDGET_DEFAULT = { maxActions: 10, windowMs: 3600_000 } as const;

export const TargetSchema = z.object({
  description: z.string().default(''),
  /** Base URL of the service's HTTP API (health, metrics, admin endpoints). */
  baseUrl: z.string().url(),
  /** TLS endpoint checked by the certificate runbook, host:port. */
  tlsEndpoint: z.string().optional(),
  /** The certificate behind tlsEndpoint (INC-13): where it lives, how it is renewed, when it counts as expiring. */
  tls: z
    .object({
      /** Directory the TLS terminator reads `server.crt` and `server.key` from (as seen by the engine). */
      certDir: z.string().min(1),
      /** The component serving TLS; it reloads on `reloadSignal` or is restarted. */
      component: z.string().min(1).default('proxy'),
      /** The certificate and key files in certDir that the terminator reads. */
      certFile: z
        .string()
        .regex(/^[\w.-]+$/, 'a file name in certDir')
        .default('server.crt'),
      keyFile: z
        .string()
        .regex(/^[\w.-]+$/, 'a file name in certDir')
        .default('server.key'),
      /** The signal that makes the terminator re-read its files without dropping connections; `none`: restart only. */
      reloadSignal: z.enum(['SIGHUP', 'SIGUSR1', 'SIGUSR2', 'none']).default('SIGHUP'),
      /** argv of the renewal (e.g. certbot renew); without it an expiring certificate gets an emergency one. */
      renewCommand: z.array(z.string().min(1)).min(1).optional(),
      /** Fewer days left than this opens the incident (daily check) and fails verification. */
      minDaysLeft: z.number().int().positive().default(7),
      /** UTC hour of the daily check (`remediate schedules apply`). */
      checkHourUtc: z.number().int().min(0).max(23).default(6),
    })
    .optional(),
  /** Data breach response (INC-14): where rotated keys go, who is told, what the scans cover. */
  security: z
    .object({
      /** Rotated user API keys are written here, one file per user (`user-<id>.key`, mode 600). */
      keyStoreDir: z.string().optional(),
      /** How far back the log scan and the evidence export reach by default. */
      logWindowMinutes: z.number().int().positive().default(60),
      /** Audit actions that read or export personal data. */
      accessActions: z.array(z.string().min(1)).default(['data_export', 'user_read', 'gdpr_export']),
      /** The audit action (target_type `user`) of an API key rotation: it ends the user's old key (apiKeyTrace). */
      keyRotatedAction: z.string().min(1).default('api_key_rotated'),
      /** The audit action (target_type `user`) of a GDPR erasure: it ends the user's keys too. */
      erasureAction: z.string().min(1).default('gdpr_erasure'),
      /** A key with at least this many requests in 24 h, and this many times the median, is anomalous. */
      anomalyMinRequests: z.number().int().positive().default(200),
      anomalyFactor: z.number().min(1).default(5),
      contacts: z
        .object({
          owner: z.array(z.string()).default([]),
          security: z.array(z.string()).default([]),
          legal: z.array(z.string()).default([]),
        })
        .default({}),
    })
    .default({}),
  adminKey: secretRef.optional(),
  /**
   * The Docker API this target's containers run under; without it, the engine-wide `docker` socket.
   * One worker can so manage targets on several Docker hosts, one client per distinct host.
   */
  docker: dockerEndpointSchema.optional(),
  /**
   * How the target's containers are found: by the labels Docker Compose puts on every container of a
   * project (seeds 000/002 run Alfred as compose services: `docker compose restart api`). A deployment
   * with other naming sets the label keys, or maps a component to its service name.
   */
  containers: z.object({
    /** The compose project (`name:` of the compose file, or its directory name). */
    project: z.string().regex(/^[\w.-]+$/, 'a compose project name'),
    projectLabel: z
      .string()
      .regex(/^[\w.-]+$/)
      .default('com.docker.compose.project'),
    serviceLabel: z
      .string()
      .regex(/^[\w.-]+$/)
      .default('com.docker.compose.service'),
    /** Component → service name, where they differ (default: the component's own name). */
    services: z.record(z.string().min(1), z.string().regex(/^[\w.-]+$/)).default({}),
    /**
     * The Docker network the components talk over (INC-05, seed 002: `docker network inspect
     * alfred_default`). Default: Compose's own, `<project>_default`.
     */
    network: z
      .string()
      .regex(/^[\w.-]+$/, 'a network name')
      .optional(),
  }),
  components: z.array(z.string().min(1)).min(1),
  /**
   * The Python interpreter inside the service's own containers (seed 002: `docker compose exec api
   * python -c ...`): the egress and DNS probe of INC-03 runs with it.
   */
  python: z.string().min(1).default('python'),
  /** Components restarted one at a time during a rollback, in this order. */
  rollbackOrder: z.array(z.string()).default(['api', 'worker']),
  /** This target's action budget; without it, `policy.actionBudget`. */
  actionBudget: actionBudgetSchema.optional(),
  /** Maintenance windows (diagnose-only or record-only incidents); none by default. */
  maintenance: maintenanceSchema.default({}),
  postgres: z
    .object({
      /**
       * How the engine reaches the server: `exec` runs psql inside the db container as `execUser`
       * over its local socket (seed 002: `docker compose exec db psql -U alfred -d alfred`), so no port
       * needs publishing and no password is held; `tcp` connects to host:port as user/password.
       */
      via: z.enum(['exec', 'tcp']).default('exec'),
      /** The component whose container runs PostgreSQL (exec, df, pg_isready, pg_restore). */
      component: z.string().min(1).default('db'),
      host: z.string().optional(),
      port: z.number().int().optional(),
      database: z.string(),
      user: z.string().optional(),
      password: secretRef.optional(),
      /** Data directory inside the db container, checked with `df`. */
      dataDir: z.string().default('/var/lib/postgresql/data'),
      /** Latest dump inside the db container, for a two-person restore (seeds 000, 002). */
      backupPath: z.string().default('/backups/alfred-latest.dump'),
      /**
       * The role for commands run inside the db container (pg_isready, pg_restore), over its local
       * socket as the seeds run them: `docker compose exec db psql -U alfred -d alfred`.
       */
      execUser: z.string().min(1).default('alfred'),
      /**
       * The role for the few statements the application's role may not run (`ALTER ROLE ... CONNECTION
       * LIMIT`, databasePressure): the server's superuser, over the same local socket (not in the seeds).
       */
      adminUser: z.string().min(1).default('postgres'),
      /** When the database counts as under pressure, and which roles a runbook may limit. */
      pressure: z
        .object({
          connectionsPct: z.number().min(1).max(100).default(80),
          lockWaitSeconds: z.number().min(1).default(5),
          longQuerySeconds: z.number().min(5).default(30),
          /** Roles whose CONNECTION LIMIT may be lowered; none unless listed. */
          limitRoles: z.array(z.string().min(1)).default([]),
          connectionLimit: z.number().int().min(1).default(20),
          /**
           * When a role's connections are trimmed to its new limit, its sessions idle at least this many
           * seconds may be ended (databasePressure limit-connections). Not in the seeds; the default is
           * the replica's value.
           */
          trimIdleSeconds: z.number().int().min(1).max(3600).default(5),
        })
        .default({}),
      /** The role migrations run as, the table that records them, and the grants it needs there. */
      migrations: z
        .object({
          role: z.string().min(1),
          /** The component that runs migrations; its logs show why one failed. */
          component: z.string().min(1).default('api'),
          /**
           * Permission errors are looked for in the component's logs this many seconds back
           * (migrationPermissions). Not in the seeds; the default is the replica's value.
           */
          logWindowSeconds: z.number().int().min(60).max(604_800).default(3600),
          /** alembic's own version table (the seeds migrate with alembic). */
          table: z.string().min(1).default('alembic_version'),
          privileges: z
            .array(z.enum(['SELECT', 'INSERT', 'UPDATE', 'DELETE']))
            .min(1)
            .default(['SELECT', 'INSERT', 'UPDATE', 'DELETE']),
          /**
           * The migration tool as run in the component's containers, without its subcommand (seed 002,
           * INC-12: `alembic -c src/backend/config/alembic.ini current`); `current`, `heads`, `history`,
           * `upgrade head` and `downgrade -1` are appended.
           */
          command: z.array(z.string().min(1)).min(1).default(['alembic', '-c', 'src/backend/config/alembic.ini']),
          /** Retired: admin API paths of migration status and upgrade, read only by incidents started before alembic was used. */
          statusPath: z.string().regex(/^\/v1\//).optional(),
          upgradePath: z.string().regex(/^\/v1\//).optional(),
        })
        .optional(),
      /**
       * Table and column names the seeds do not state (`postgres.schema.users.isAdmin`, ...), each
       * defaulting to the replica's. A name missing on the target fails the statement that uses it
       * with an error naming this setting.
       */
      schema: pgSchemaNames,
    })
    .optional(),
  /** A job queue on the target's Redis and the component that consumes it. */
  queue: z
    .object({
      key: z.string().min(1),
      component: z.string().min(1),
      /** Depth above which the backlog needs action (seed 004: more than 1,000). */
      depthThreshold: z.number().int().positive().default(1000),
      /** A job older than this at the head of the queue counts as stuck. */
      stuckAfterSeconds: z.number().int().positive().default(300),
      /**
       * The backlog counts as drained once the depth is at or below this share of `depthThreshold`
       * (queueBacklog verification and scale-back). Not in the seeds; the default is the replica's value.
       */
      drainedPct: z.number().min(1).max(100).default(10),
      /**
       * Redis memory at or above this share of maxmemory fails the "Redis memory" check of the queue
       * report (queueBacklog). Not in the seeds; the default is the replica's value.
       */
      redisMemoryPct: z.number().min(1).max(100).default(90),
      /** Extra replicas of the consuming component a scale-out may add. */
      maxReplicas: z.number().int().min(1).max(10).default(2),
      /** The RQ job function that applies a token transfer (its first argument is the transfer id). */
      transferFunction: z
        .string()
        .regex(/^[\w.]+$/)
        .default('app.jobs.apply_transfer'),
    })
    .optional(),
  redis: z
    .object({
      /**
       * How the engine reaches Redis: `exec` runs `cli` inside the container of `component` through the
       * Docker exec API (seed 002: `docker compose exec redis redis-cli ping`), so no port needs
       * publishing; `tcp` connects to host:port.
       */
      via: z.enum(['exec', 'tcp']).default('exec'),
      /** The component whose container runs Redis and has redis-cli (`via: exec`). */
      component: z.string().min(1).default('redis'),
      /**
       * The client's argv inside that container, before the engine's own options (`-2 --quoted-json`):
       * connection options such as `-p`, `-s`, `-n`, `--user`, `--tls` go here. The password never does:
       * it is `password`, handed to redis-cli as REDISCLI_AUTH.
       */
      cli: z
        .array(z.string().min(1))
        .min(1)
        .default(['redis-cli'])
        .refine(
          (argv) => !argv.some((a) => ['-a', '--pass', '--askpass', '-u'].includes(a)),
          'a password or URI in redis.cli would show in the process list: set redis.password (passed as REDISCLI_AUTH)',
        ),
      host: z.string().min(1).optional(),
      port: z.number().int().min(1).max(65535).optional(),
      password: secretRef.optional(),
      /** The key INC-05's write probe sets (`SET <key> <ms> EX 60`): at maxmemory with noeviction the write is refused. */
      probeKey: z.string().min(1).default('remediation:probe'),
    })
    .optional(),
  cache: z
    .object({
      /** Only keys matching this pattern may ever be flushed. */
      keyPattern: z.string().default('alfred:cache:*'),
      batchSize: z.number().int().min(1).max(1000).default(100),
      /** A hit rate above this share of lookups is anomalous: answers may be served for the wrong prompts (INC-15). */
      hitRateAnomalyPct: z.number().min(1).max(100).default(80),
      /** A cached entry is a JSON object; these dotted paths hold the prompt it answers and the answer served (INC-15). */
      entry: z.object({ prompt: answerField.default('prompt'), response: answerField.default('response') }).default({}),
      /** A query with a known answer, asked to check that cached answers are right (INC-15). */
      probe: z
        .object({ prompt: z.string().min(1), expect: z.string().min(1), model: z.string().min(1) })
        .default({ prompt: 'What is 2+2?', expect: '4', model: 'gpt-4o-mini' }),
    })
    .default({}),
  /** Upstream providers the target proxies to (INC-02, INC-03): probe URL, a model each serves, owners. */
  providers: z
    .record(
      z.string().regex(/^[a-z0-9-]+$/),
      z.object({
        /** An endpoint of the provider that answers without a key (egress probe, DNS). */
        url: z.string().url(),
        /** A model routed to this provider, for a live test completion. */
        model: z.string(),
        owners: z.array(z.string()).default([]),
        /**
         * The provider's public status page (INC-02/03, seed 002: "Check provider status page"), an
         * Atlassian Statuspage read at `<statusPage>/api/v2/status.json`. Default: the seed's page for
         * openai, anthropic and google (see statusPageOf); `false`: the provider has none to read.
         */
        statusPage: z.union([z.string().url(), z.literal(false)]).optional(),
      }),
    )
    .default({}),
  /** Rate limiting (INC-10): where the limit lives and what counts as back to normal. */
  rateLimit: z
    .object({
      /** Container env variable holding the per-client limit per minute. */
      envVar: z
        .string()
        .regex(/^[A-Z][A-Z0-9_]*$/)
        .default('RATE_LIMIT_PER_MINUTE'),
      /** Redis keys of the limiter's counters. */
      keyPattern: z.string().default('alfred:ratelimit:*'),
      /** 429s per window at or below this are the baseline (seed 002: fewer than 10 in 2 minutes). */
      baseline429: z.number().int().nonnegative().default(10),
      windowSeconds: z.number().int().min(10).default(120),
      /** One client with at least this share of the 429s is a single abuser. */
      singleClientSharePct: z.number().min(50).max(100).default(80),
      /** A legitimate spike raises the limit by this factor, never above maxPerMinute. */
      raiseFactor: z.number().min(1.1).max(10).default(2),
      maxPerMinute: z.number().int().positive().default(600),
      /**
       * Keys of known users carrying at least this share of the 429s, all of one tenant, make the storm a
       * legitimate spike (raise the limit) rather than an attack (escalate). Not in the seeds; the default
       * is the replica's value.
       */
      knownKeySharePct: z.number().min(50).max(100).default(80),
    })
    .default({}),
  thresholds: z
    .object({
      diskUsagePct: z.number().default(90),
      poolUsagePct: z.number().default(90),
      redisMemoryPct: z.number().default(95),
      /** Queries running longer than this are "long" (INC-04 terminates them after approval). */
      slowQuerySeconds: z.number().min(5).default(30),
      /** The SLA target for p95 latency (INC-04). */
      p95LatencyMs: durationMs.pipe(z.number().positive()).default(150),
      /** Resident memory growing faster than this looks like a leak (INC-04, INC-11). */
      memoryGrowthMbPerMin: z.number().positive().default(60),
      /** A user at this share of their quota is "near" it (INC-07). */
      quotaNearPct: z.number().min(1).max(100).default(90),
      /**
       * An error rate after a deploy at or above this makes a bad release SEV-1 instead of SEV-2 (INC-12;
       * seed 002 says only "SEV-1 if causing outage, SEV-2 if partial"). Not in the seeds; the default is
       * the replica's value.
       */
      releaseOutageErrorRatePct: z.number().min(1).max(100).default(25),
      /**
       * A deploy at most this many minutes old is a suspect (INC-06 bad deploy, INC-12 bad release); the
       * incident parameters `deployWindowMinutes` (INC-06) and `windowMinutes` (INC-12) override it. Not in
       * the seeds; the default is the replica's value.
       */
      recentDeployMinutes: z.number().int().min(1).max(10_080).default(60),
      /**
       * This many server errors (5xx) for one account in the window escalate an API-key trace to SRE
       * (seed 000: "If logs show 5xx errors or repeated failures, escalate to SRE"; the count is not in
       * the seeds). The default is the replica's value.
       */
      repeatedServerErrors: z.number().int().min(1).max(1000).default(3),
    })
    .default({}),
  /** Bounds on what a mitigation may change. */
  limits: z
    .object({
      /** Memory limit a leaking api is restarted with (INC-11); seed 002 says 512m. */
      apiMemoryMb: z.number().int().min(64).default(512),
      /** How long memory must stay under that limit before a leak counts as contained (seed 002: "Monitor for 10 minutes"). */
      memoryWatchMs: durationMs.pipe(z.number().int().positive()).default(600_000),
      /**
       * Memory at or above this share of the container's limit counts as "at the limit": a leak that will
       * be OOM-killed, and a failed watch (INC-11). Not in the seeds; the default is the replica's value.
       */
      memoryHighPct: z.number().min(50).max(100).default(90),
      /**
       * After Redis answers PONG again, how long its cache hit rate gets to recover (INC-05, seed 002:
       * window_seconds, 300 s). 0: recovery is PONG, a write and the api's view of Redis alone, for a
       * target whose SLA monitor reports no hit rate or that serves no traffic to measure it by.
       */
      cacheRecoverySeconds: z.number().int().nonnegative().default(300),
      /** Most credits one wallet may receive from one quota incident (INC-07). */
      topupCap: z.number().int().positive().default(5000),
      /**
       * A top-up gives at least this share of the user's quota, on top of what they are over (INC-07).
       * Not in the seeds; the default is the replica's value.
       */
      topupMinQuotaPct: z.number().min(1).max(100).default(10),
      /**
       * Redis at maxmemory gets maxmemory raised by this factor (INC-05; seed 002 shows `config set
       * maxmemory 2gb`, a fixed size). Not in the seeds; the default is the replica's value.
       */
      maxmemoryRaiseFactor: z.number().min(1.1).max(4).default(1.5),
      /** How often billing resets usage; a reset older than this was missed (INC-07). */
      billingPeriodDays: z.number().int().positive().default(30),
    })
    .default({}),
  /**
   * Outgoing mail (seed 004, "Email delivery issues"): the relays a component may send through and
   * the environment variables that select one. `host`/`port` are what the component is given;
   * `probeHost`/`probePort`, when set, are how the engine reaches the same relay.
   */
  smtp: z
    .object({
      component: z.string().min(1).default('api'),
      hostEnv: z
        .string()
        .regex(/^[A-Z_][A-Z0-9_]*$/)
        .default('SMTP_HOST'),
      portEnv: z
        .string()
        .regex(/^[A-Z_][A-Z0-9_]*$/)
        .default('SMTP_PORT'),
      /** The port the component uses when `portEnv` is not set (the SMTP port). */
      defaultPort: z.number().int().min(1).max(65535).default(25),
      primary: smtpRelay,
      /** Captures mail instead of delivering it (seed 004: mailhog on 1025): a stopgap while the primary refuses. */
      sandbox: smtpRelay,
      /** The envelope of the probe: MAIL FROM and RCPT TO, then RSET; no message is ever sent. */
      probe: z.object({
        from: z.string().email(),
        to: z.string().email(),
        heloName: z.string().min(1).default('remediation-engine.local'),
      }),
      timeoutMs: durationMs.pipe(z.number().int().min(500).max(60_000)).default(10_000),
    })
    .optional(),
  /**
   * What the runbooks look for in the target's container logs: regular expressions (case-insensitive),
   * each checked at load; those that extract a value name it with a named group (e.g. `provider:
   * '(?:^|\s)provider=(?<provider>\w+)'`). The defaults match the replica's logfmt lines; a target
   * that logs JSON sets e.g. `providerError: '"message":\s*"provider error"'`. Every key and its
   * default: `LOG_PATTERN_DEFAULTS` in src/lib/target-signals.ts, and docs/targets.md (Logs).
   */
  logs: z
    .object({
      ...logPatterns,
      /** The component in front of the services whose logs outlive their deploys (INC-12 reads errors before a deploy there). */
      frontComponent: z.string().min(1).default('proxy'),
    })
    .default({}),
  /** The Prometheus series (GET /metrics) the runbooks read, and the labels they read on them. */
  metrics: z
    .object({
      dbPoolTotal: metricName(METRIC_DEFAULTS.dbPoolTotal),
      dbPoolIdle: metricName(METRIC_DEFAULTS.dbPoolIdle),
      dbPoolWaiting: metricName(METRIC_DEFAULTS.dbPoolWaiting),
      dbPoolMax: metricName(METRIC_DEFAULTS.dbPoolMax),
      residentMemory: metricName(METRIC_DEFAULTS.residentMemory),
      /** Calls to upstream providers: a counter with the provider and the outcome as labels. */
      providerRequests: z
        .object({
          name: metricName(PROVIDER_REQUESTS_DEFAULTS.name),
          providerLabel: labelName(PROVIDER_REQUESTS_DEFAULTS.providerLabel),
          resultLabel: labelName(PROVIDER_REQUESTS_DEFAULTS.resultLabel),
          errorResult: z.string().min(1).default(PROVIDER_REQUESTS_DEFAULTS.errorResult),
        })
        .default({}),
      /** Requests the gateway answered: a counter with the path and the status as labels. */
      httpRequests: z
        .object({
          name: metricName(HTTP_REQUESTS_DEFAULTS.name),
          pathLabel: labelName(HTTP_REQUESTS_DEFAULTS.pathLabel),
          statusLabel: labelName(HTTP_REQUESTS_DEFAULTS.statusLabel),
        })
        .default({}),
    })
    .default({}),
  /**
   * The target's HTTP endpoints and answer fields that the seeds do not state (docs/targets.md, "HTTP
   * API"). Each default is the replica's value. Paths and fields the seeds quote are not settings.
   * Activities read answers through these names and hand runbooks the engine's own shapes; an answer
   * without a configured field is reported naming the field and its setting, never read as a default.
   */
  api: z
    .object({
      /**
       * Whether the target honours the top-up's idempotency key (`api.fields.topup.idempotencyKey`), so a
       * repeated top-up adds nothing. Seed 002 names no such key: with `false`, a top-up is sent once,
       * and one whose outcome is unknown (timeout, 5xx, lost connection) fails naming the wallet to check
       * instead of being retried.
       */
      idempotentTopups: z.boolean().default(true),
      /** Endpoint paths, joined to `baseUrl`. */
      paths: z
        .object({
          /** GET: the governance switches (seed 002 only POSTs to `/v1/governance/settings`). */
          governanceSettings: apiPath.default('/v1/governance/settings'),
          /** POST with `provider`, `reason`: undoes `/v1/governance/providers/disable` (seed 002); named in the owners' notice. */
          enableProvider: apiPath.default('/v1/governance/providers/enable'),
          /** GET: the client addresses blocked by `/v1/governance/block` (seed 002). */
          blocks: apiPath.default('/v1/governance/blocks'),
          /** POST: refund one charge (seed 002: "each refund must reference the original transaction_id"). */
          refunds: apiPath.default('/v1/admin/refunds'),
          /** GET: the billing period and whether its usage reset is due (seed 002: "Billing reset didn't run?"). */
          billingStatus: apiPath.default('/v1/admin/billing/status'),
          /** POST: the usage reset of the running period (seed 002: "Trigger manual wallet reset"). */
          billingReset: apiPath.default('/v1/admin/billing/reset'),
        })
        .default({}),
      /** Field names in requests, dotted paths into JSON answers (`a.b`, `list.0.c`). */
      fields: z
        .object({
          /** `GET /health` (seed 002 quotes only its `database` field). */
          health: z
            .object({
              /** The api's own view of Redis; healthy when it equals `healthy` (seed 002's value for `database`). */
              redis: answerField.default('redis'),
            })
            .default({}),
          /** The answer of `GET api.paths.governanceSettings` (seed 002 names the switches only in its POSTs). */
          governanceSettings: z
            .object({
              /** Whether only cached answers are served (boolean). */
              cacheOnlyMode: answerField.default('settings.cache_only_mode'),
              /** The providers switched off (list of names). */
              disabledProviders: answerField.default('settings.disabled_providers'),
              /** The semantic cache's minimum similarity (number). */
              cacheSimilarityThreshold: answerField.default('settings.cache_similarity_threshold'),
              /** Whether traffic is paused (boolean). */
              maintenanceMode: answerField.default('settings.maintenance_mode'),
            })
            .default({}),
          /** Answers of `POST /v1/governance/providers/disable` (seed 002) and of `api.paths.enableProvider`. */
          providerToggle: z
            .object({
              /** Whether the call changed anything (boolean; false: it already was so). */
              changed: answerField.default('changed'),
            })
            .default({}),
          /** The answer of `GET api.paths.blocks`. */
          blocks: z
            .object({
              /** The list of blocks. */
              list: answerField.default('blocked'),
              /** The blocked address, within each entry of the list. */
              ip: answerField.default('ip'),
            })
            .default({}),
          /** The answer of `POST /v1/governance/block` (seed 002). */
          block: z
            .object({
              /** Whether the address was newly blocked (boolean). */
              changed: answerField.default('changed'),
            })
            .default({}),
          /** `GET /v1/notifications/sla/metrics` fields besides the seed's `metrics.provider_error_rates`, `p95_latency_ms`, `cache_hit_rate_pct`. */
          sla: z
            .object({
              /** The gateway's error rate over the window, in percent. */
              errorRatePct: answerField.default('metrics.error_rate_pct'),
              /** Requests in the window. */
              requestCount: answerField.default('metrics.request_count'),
              /** p99 latency over the window, in ms. */
              p99LatencyMs: answerField.default('metrics.p99_latency_ms'),
            })
            .default({}),
          /** `GET /v1/users/me` fields besides the seed's `email`. */
          usersMe: z
            .object({
              /** Whether the key's user is an admin (boolean). */
              isAdmin: answerField.default('is_admin'),
              /** The user's id (number or string). */
              id: answerField.default('id'),
            })
            .default({}),
          /** Chat completion fields besides the seed's `choices[0].message.content`. */
          chatCompletion: z
            .object({
              /** The provider that answered (string). */
              provider: answerField.default('provider'),
              /** Whether the answer came from the semantic cache (boolean). */
              cached: answerField.default('cached'),
            })
            .default({}),
          /** `POST /v1/admin/audit-logs/verify` fields besides the seed's `valid`, `first_break_at`. */
          auditVerify: z
            .object({
              /** The target's name for the first break (string or null). */
              breakKind: answerField.default('break_kind'),
              /** How many entries break the chain (number). */
              breaks: answerField.default('breaks'),
              /** How many entries the chain has (number). */
              total: answerField.default('total'),
            })
            .default({}),
          /** The answer of `POST /v1/admin/users/<id>/rotate-key` (seed 002). */
          rotateKey: z
            .object({
              /** The new key (string); stored, never returned. */
              apiKey: answerField.default('api_key'),
            })
            .default({}),
          /** The answer of `POST /v1/gdpr/erasure/<id>` (seed 002). */
          erasure: z
            .object({
              /** Whether the user is erased (boolean). */
              erased: answerField.default('erased'),
              /** Whether it already was (boolean). */
              idempotent: answerField.default('idempotent'),
            })
            .default({}),
          /** `POST /v1/wallets/<id>/topup` (seed 002, with `amount` and `reason`). */
          topup: z
            .object({
              /** Request field: the key that makes a repeated top-up add nothing (one per incident and user). */
              idempotencyKey: requestField.default('idempotency_key'),
              /** The top-up's ledger id (number or string). */
              topupId: answerField.default('topup_id'),
              /** Whether the key had been used already, so nothing was added (boolean). */
              idempotent: answerField.default('idempotent'),
            })
            .default({}),
          /** `POST api.paths.refunds` (with `reason`). */
          refund: z
            .object({
              /** Request field: the id of the charge refunded. */
              requestLogId: requestField.default('request_log_id'),
              /** The refund's ledger id (number or string). */
              refundId: answerField.default('refund_id'),
              /** Whether the charge had been refunded already (boolean). */
              idempotent: answerField.default('idempotent'),
            })
            .default({}),
          /** The answer of `GET api.paths.billingStatus`. */
          billingStatus: z
            .object({
              /** The running period's first day (string). */
              periodStart: answerField.default('period_start'),
              /** Whether the running period's usage reset has yet to run (boolean). */
              resetDue: answerField.default('reset_due'),
              /** The period of the last reset (string, null: never). */
              lastResetPeriodStart: answerField.default('last_reset_period_start'),
              /** When the last reset ran (string, null: never). */
              lastResetAt: answerField.default('last_reset_at'),
              /** Whether the scheduled reset is on (boolean). */
              cronEnabled: answerField.default('cron_enabled'),
            })
            .default({}),
          /** `POST api.paths.billingReset`. */
          billingReset: z
            .object({
              /** Request field: the period to reset, so a reset never lands in a period begun after the diagnosis. */
              periodStart: requestField.default('period_start'),
              /** The period reset (string). */
              answerPeriodStart: answerField.default('period_start'),
              /** How many users' usage was reset (number). */
              usersReset: answerField.default('users_reset'),
              /** Whether the period had been reset already (boolean). */
              idempotent: answerField.default('idempotent'),
            })
            .default({}),
        })
        .default({}),
    })
    .default({}),
  /** The target's tamper-evident audit chain (INC-09). */
  audit: z.object({ hash: auditHashDefinition }).default({}),
  /** What the support runbooks read (seeds 000, 004). */
  support: z
    .object({
      /** Secrets that must be equal in several components; compared by hash, never read out. */
      sharedSecrets: z
        .array(
          z.object({
            env: z.string().regex(/^[A-Z_][A-Z0-9_]*$/, 'an environment variable name'),
            /** The component whose value is right; the others are aligned to it. */
            reference: z.string().min(1),
            components: z.array(z.string().min(1)).min(1),
          }),
        )
        .default([]),
    })
    .default({}),
});
export type TargetConfig = z.infer<typeof TargetSchema>;
/** `postgres.schema` of a target, defaults applied. */
export type PgSchemaNames = z.infer<typeof pgSchemaNames>;
/** `audit.hash` of a target, defaults applied. */
export type AuditHashDefinition = z.infer<typeof auditHashDefinition>;

/** A target as the engine accepts it: the schema plus the rules that span fields. */
export const CheckedTargetSchema = TargetSchema.superRefine((t, ctx) => {
  const pg = t.postgres;
  if (pg?.via === 'tcp') {
    for (const key of ['host', 'port', 'user', 'password'] as const) {
      if (pg[key] === undefined)
        ctx.addIssue({
          code: z.ZodIssueCode.custom,
          path: ['postgres', key],
          message: `required when postgres.via is tcp`,
        });
    }
  }
  const redis = t.redis;
  if (redis?.via === 'tcp') {
    for (const key of ['host', 'port'] as const) {
      if (redis[key] === undefined)
        ctx.addIssue({
          code: z.ZodIssueCode.custom,
          path: ['redis', key],
          message: `required when redis.via is tcp`,
        });
    }
  }
  if (redis?.via === 'exec' && !t.components.includes(redis.component)) {
    ctx.addIssue({
      code: z.ZodIssueCode.custom,
      path: ['redis', 'component'],
      message: `"${redis.component}" is not one of components (${t.components.join(', ')})`,
    });
  }
  if (pg && !t.components.includes(pg.component)) {
    ctx.addIssue({
      code: z.ZodIssueCode.custom,
      path: ['postgres', 'component'],
      message: `"${pg.component}" is not one of components (${t.components.join(', ')})`,
    });
  }
});

const TierSchema = z.object({
  name: z.string(),
  contacts: z.array(z.string()).default([]),
  waitMs: durationMs.pipe(z.number().int().positive()),
});

/** The policy's fields: the defaults, and what an override may change. */
const policyFields = {
  approvers: z.array(z.string().min(1)).min(1),
  tiers: z.array(TierSchema).min(1),
  verifyDeadlineMs: durationMs.pipe(z.number().int().positive()).default(120_000),
  cooldownMs: durationMs.pipe(z.number().int().nonnegative()).default(600_000),
  lockWaitMs: durationMs.pipe(z.number().int().positive()).default(300_000),
  escalatedHoldMs: durationMs.pipe(z.number().int().positive()).default(7 * 24 * 3600_000),
  settleMs: durationMs.pipe(z.number().int().nonnegative()).default(60_000),
  /** How old a sealed decision (approve, reject, close) may be when it reaches the incident. */
  decisionMaxAgeMs: durationMs.pipe(z.number().int().positive()).default(15 * 60_000),
  /**
   * Who is engaged at each severity: announced with the incident and added to its escalations.
   * Defaults follow seed 002's matrix (SEV-1: IC + Sergey Bar + SRE; SEV-2: IC + SRE; SEV-3: on-call;
   * SEV-4: ticket only).
   */
  severityContacts: z
    .object({
      '1': z.array(z.string().min(1)).optional(),
      '2': z.array(z.string().min(1)).optional(),
      '3': z.array(z.string().min(1)).optional(),
      '4': z.array(z.string().min(1)).optional(),
    })
    .optional(),
  /** Status updates while an incident is open, by severity (ms; 0 = none). Defaults follow seeds 001/002. */
  updateCadenceMs: z
    .object({
      '1': durationMs.pipe(z.number().int().nonnegative()).optional(),
      '2': durationMs.pipe(z.number().int().nonnegative()).optional(),
      '3': durationMs.pipe(z.number().int().nonnegative()).optional(),
      '4': durationMs.pipe(z.number().int().nonnegative()).optional(),
    })
    .optional(),
};

/** The worker deployment the engine's config files name when WORKER_DEPLOYMENT_NAME is unset. */
export const DEFAULT_DEPLOYMENT_NAME = 'remediation-engine';

/**
 * The version of a Temporal worker deployment this worker runs as (docs/production.md, "Upgrading
 * without stopping incidents"). Absent: the worker is unversioned, and every workflow runs on
 * whichever worker polls. An empty `buildId` means absent too: the config files write
 * `buildId: ${WORKER_BUILD_ID:-}`, so leaving WORKER_BUILD_ID unset leaves the worker unversioned.
 */
const workerDeployment = z.preprocess(
  (v) => (v && typeof v === 'object' && !Array.isArray(v) && (v as { buildId?: unknown }).buildId === '' ? undefined : v),
  z
    .object({
      /** The deployment: one name for every build of this engine on its task queue (no `.` or `:`, as Temporal requires). */
      name: z
        .string()
        .min(1)
        .max(255)
        .refine((n) => !/[.:]/.test(n), 'a deployment name cannot contain "." or ":"'),
      /** This build: a new one whenever the workflow code changes (an image tag, a commit). */
      buildId: z
        .string()
        .min(1)
        .max(255)
        .refine((b) => b !== '__unversioned__', 'a build id cannot be "__unversioned__" (Temporal reserves it)'),
      /**
       * What a workflow does when a newer version becomes current. `pinned`: it finishes on this
       * build's code (an incident waiting hours for approval resumes on the code it started with);
       * `auto-upgrade`: it moves to the current version at its next workflow task, so every change to
       * its commands must be behind `patched()`.
       */
      defaultBehavior: z.enum(['pinned', 'auto-upgrade']).default('pinned'),
    })
    .strict()
    .optional(),
);

/** Where the codec server listens by default (src/codec-server/config.ts). */
export const CODEC_SERVER_URL_DEFAULT = 'http://127.0.0.1:8234';

/** The codec secrets file when the configuration names none: under the stack's directory. */
export function defaultCodecSecretsFile(env: NodeJS.ProcessEnv = process.env): string {
  return `${env.STACK_DIR || '.stack'}/secrets/codec.yaml`;
}

/** A secret reference whose value came from an unset variable (`{ file: "" }`): none. */
const optionalSecretRef = z
  .object({ file: z.string().optional(), env: z.string().optional(), value: z.string().optional() })
  .optional()
  .transform((r) => (r && (r.file || r.env || r.value) ? r : undefined));

/**
 * `temporal.tls` as an object: mTLS settings (Temporal Cloud, self-hosted with client certificates).
 * config/engine.yaml fills it from the variables the temporal CLI reads, so a setting may be empty
 * (its variable unset): it is then left out. `force` says what no setting at all means: `true` TLS
 * with the system's CAs, `false` no TLS. Any setting turns TLS on, as it does for the CLI.
 */
const temporalTlsSettings = z
  .object({
    force: z.boolean().optional(),
    serverName: z.string().optional(),
    serverCaCert: optionalSecretRef,
    clientCert: optionalSecretRef,
    clientKey: optionalSecretRef,
  })
  .refine((t) => Boolean(t.clientCert) === Boolean(t.clientKey), 'clientCert and clientKey go together (mTLS needs both)')
  .transform((t) => {
    const settings = { serverName: t.serverName || undefined, serverCaCert: t.serverCaCert, clientCert: t.clientCert, clientKey: t.clientKey };
    if (t.force !== undefined && !Object.values(settings).some(Boolean)) return t.force;
    return { ...t, ...settings };
  });

export const ConfigSchema = z.object({
  temporal: z
    .object({
      address: z.string().default('127.0.0.1:7233'),
      namespace: z.string().default('default'),
      taskQueue: z.string().default('remediation'),
      /** `true` for server TLS with system CAs, or mTLS settings (`temporalTlsSettings`). */
      // A boolean is `{ force: it }` with no settings: one schema, so a refusal names its reason.
      tls: z.preprocess((v) => (typeof v === 'boolean' ? { force: v } : v), temporalTlsSettings).default(false),
      apiKey: secretRef.optional(),
    })
    .default({}),
  docker: z.object({ socketPath: z.string() }),
  targets: z.record(z.string().regex(/^[a-z0-9-]+$/), CheckedTargetSchema),
  /**
   * Who may decide, and how long things may take: the worker resolves it from here when an incident
   * starts (recorded in the incident's history). Nothing in a start request changes it.
   */
  policy: z
    .object({
      ...policyFields,
      /**
       * The action budget of every target that sets none of its own (`targets.<name>.actionBudget`).
       * It belongs to the target, counted across all its incidents: overrides do not change it.
       */
      actionBudget: actionBudgetSchema.default(ACTION_BUDGET_DEFAULT),
      /**
       * Per target, runbook or severity: each override whose `match` fits the incident (every key
       * given must equal) replaces the fields it names, in order.
       */
      overrides: z
        .array(
          z
            .object({
              match: z
                .object({ target: z.string().min(1).optional(), runbook: z.string().min(1).optional(), severity: z.number().int().min(1).max(4).optional() })
                .strict(),
            })
            .extend(z.object(policyFields).partial().shape)
            .strict(),
        )
        .default([]),
    })
    .strict(),
  /** Where runbooks preserve evidence (exported rows, logs, sha256 manifests), one directory per incident. */
  evidence: z.object({ dir: z.string().default('.stack/evidence') }).default({}),
  notify: z
    .object({
      /** Notifications (escalations, status updates) are appended here as JSON lines. */
      file: z.string().optional(),
      /** Also print each notification as one JSON line on stdout (containers, systemd). */
      stdout: z.boolean().default(false),
      /**
       * A Slack-compatible incoming webhook (Slack, Mattermost, Rocket.Chat, ...). The URL carries a
       * token, so it is a secret reference, never a plain value in the file.
       */
      slack: z
        .object({
          /** An incoming webhook. With a bot token instead (or as well), messages go through the Web API. */
          webhook: secretRef.optional(),
          /**
           * A Slack bot token (Web API: `conversations.create`, `chat.postMessage`): with it the engine
           * opens each incident's channel and posts to the channel each message names (seed 002, "First
           * 5 Minutes"). A secret reference.
           */
          botToken: secretRef.optional(),
          /** The Web API's base URL. */
          apiUrl: z.string().url().default('https://slack.com/api'),
          channel: z.string().optional(),
          username: z.string().default('remediation-engine'),
          /** Attempts within one delivery before the activity's own retry takes over. */
          attempts: z.number().int().positive().default(3),
          timeoutMs: durationMs.pipe(z.number().int().positive()).default(5000),
        })
        .refine((s) => s.webhook || s.botToken, { message: 'give a webhook, a botToken, or both' })
        .optional(),
      /**
       * Seed 002, "First 5 Minutes": "Announce in `#incidents`" and "Open an incident channel:
       * `#inc-YYYY-MM-DD-<short-name>`". The announcement channel is the seed's; the short name is the
       * target and the runbook.
       */
      announce: z.object({ channel: z.string().regex(/^#[a-z0-9_-]+$/).default('#incidents') }).default({}),
      /**
       * PagerDuty's REST API, to acknowledge the PagerDuty incident an alert came from (seed 002: "Acknowledge
       * the PagerDuty alert within 2 minutes"). Without it such incidents note that nobody acknowledged.
       */
      pagerduty: z
        .object({
          apiUrl: z.string().url().default('https://api.pagerduty.com'),
          /** A REST API key: a secret reference. */
          token: secretRef,
          /** The PagerDuty user the engine acknowledges as (the `From` header PagerDuty requires with account keys). */
          from: z.string().email(),
          timeoutMs: durationMs.pipe(z.number().int().positive()).default(10_000),
        })
        .optional(),
    })
    .default({}),
  /**
   * The payload codec (docs/codec.md): every payload the worker, the receiver and the client hand to
   * Temporal is encrypted with the keys in `secretsFile`, and decisions reach workflows sealed.
   */
  codec: z
    .object({
      /**
       * The codec's secrets file (`npx tsx scripts/codec-secrets.ts init` creates it): encryption and
       * seal keys. The worker needs both, the receiver the encryption keys; the client script none.
       * Default: `${STACK_DIR:-.stack}/secrets/codec.yaml` (loadConfig reads STACK_DIR).
       */
      secretsFile: z.string().min(1).default(defaultCodecSecretsFile({})),
      /** The codec server the client script seals and decodes through (it holds no key of its own). */
      serverUrl: z
        .string()
        .url()
        .refine((u) => /^https?:$/.test(new URL(u).protocol), 'an http:// or https:// URL')
        .default(CODEC_SERVER_URL_DEFAULT),
    })
    .strict()
    .default({}),
  worker: z
    .object({
      metricsAddress: z.string().default('127.0.0.1:9464'),
      /** How long in-flight activities may finish after SIGTERM before they are cancelled. */
      shutdownGraceTimeMs: durationMs.pipe(z.number().int().nonnegative()).default(30_000),
      maxConcurrentActivityTaskExecutions: z.number().int().positive().default(50),
      /**
       * Workflows kept in the worker's sticky cache. Unset: the SDK sizes it from the heap (about
       * 2,300 on a 4 GiB heap). A workflow evicted from the cache is replayed from its history on its
       * next task: cheap for incidents, whose histories are short.
       */
      maxCachedWorkflows: z.number().int().nonnegative().optional(),
      maxConcurrentWorkflowTaskExecutions: z.number().int().positive().optional(),
      deployment: workerDeployment,
    })
    .default({}),
});
export type EngineConfig = z.infer<typeof ConfigSchema>;
export type SecretRef = z.infer<typeof secretRef>;

export { ConfigError };

/**
 * Loads and validates the configuration (src/lib/config-file.ts: `${VAR}` in values, durations as
 * `15m`); every problem, an unknown key included, is reported with its path in the file.
 */
export function loadConfig(file = process.env.ENGINE_CONFIG ?? 'config/engine.yaml', env = process.env): EngineConfig {
  const abs = path.resolve(file);
  const raw = readConfigFile(abs, env, ' (set ENGINE_CONFIG)');
  const cfg = parseConfig(ConfigSchema, withCodecDefaults(raw, env), `config file ${abs}`);
  const unknownNames = overrideNameIssues(cfg);
  if (unknownNames.length > 0) throw new ConfigError(`config file ${abs} is invalid:\n${unknownNames.map((l) => `  ${l}`).join('\n')}`);
  return cfg;
}

/** `codec` and `codec.secretsFile` default from the environment (STACK_DIR), as the YAML files do. */
function withCodecDefaults(raw: unknown, env: NodeJS.ProcessEnv): unknown {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return raw;
  const doc = raw as Record<string, unknown>;
  const codec = doc.codec ?? {};
  if (!codec || typeof codec !== 'object' || Array.isArray(codec)) return raw;
  const c = codec as Record<string, unknown>;
  return { ...doc, codec: { ...c, secretsFile: c.secretsFile ?? defaultCodecSecretsFile(env) } };
}

/** Policy overrides that name a target or runbook the engine does not have would never apply: refused. */
export function overrideNameIssues(cfg: EngineConfig): string[] {
  const issues: string[] = [];
  cfg.policy.overrides.forEach((o, i) => {
    if (o.match.target !== undefined && !Object.prototype.hasOwnProperty.call(cfg.targets, o.match.target)) {
      issues.push(`policy.overrides.${i}.match.target: unknown target "${o.match.target}"; configured: ${Object.keys(cfg.targets).join(', ')}`);
    }
    if (o.match.runbook !== undefined && !Object.prototype.hasOwnProperty.call(RUNBOOKS, o.match.runbook)) {
      issues.push(`policy.overrides.${i}.match.runbook: unknown runbook "${o.match.runbook}"`);
    }
  });
  return issues;
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

/** Seed 002, INC-02 "Check provider status page": the pages it names, by provider. */
export const SEED_STATUS_PAGES: Readonly<Record<string, string>> = {
  openai: 'https://status.openai.com',
  anthropic: 'https://status.anthropic.com',
  google: 'https://status.cloud.google.com',
};

/** A provider's status page: its `statusPage` setting, else the seed's page for its name; undefined when it has none. */
export function statusPageOf(name: string, provider: { statusPage?: string | false }): string | undefined {
  if (provider.statusPage === false) return undefined;
  return provider.statusPage ?? SEED_STATUS_PAGES[name];
}

/** The Docker network of a target's components: `containers.network`, else Compose's `<project>_default` (seed 002: alfred_default). */
export function composeNetworkOf(containers: { project: string; network?: string | undefined }): string {
  return containers.network ?? `${containers.project}_default`;
}
