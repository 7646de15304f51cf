/**
 * Per-runbook parameter schemas. A runbook that needs facts from the person starting it (a user's
 * email, a request id, a time window) declares them here; the client script and the receiver check
 * them before any workflow starts, so bad input gets a clear error and never an incident.
 * Not workflow code: workflows receive parameters already checked.
 */
import { z } from 'zod';
import type { RunbookName } from '../workflows/catalog';

/** An ISO-8601 instant that is not in the future (a little clock skew is tolerated). */
export const pastInstant = z
  .string()
  .refine((s) => !Number.isNaN(Date.parse(s)), 'must be an ISO-8601 time, e.g. 2026-11-27T10:00:00Z')
  .refine((s) => Date.parse(s) <= Date.now() + 60_000, 'is in the future');

/** The email a user reports from; whether such a user exists only the runbook can tell. */
export const userEmail = z.string().trim().toLowerCase().email('must be an email address, e.g. alice@example.com');

/** A request id as the api returns it in `x-request-id` (a bare number given on the command line counts too). */
export const requestId = z.preprocess(
  (v) => (typeof v === 'number' ? String(v) : v),
  z.string().regex(/^[\w.:-]{1,100}$/, 'must be a request id as the api returns it (letters, digits, _ . : -, at most 100)'),
);

/** Minutes either side of the reported time that a support runbook searches. */
const windowMinutes = (fallback: number) => z.coerce.number().int().min(1).max(7 * 24 * 60).default(fallback);

/** A duration in whole seconds within bounds (a durable timer, a measuring window). */
const seconds = (min: number, max: number, fallback: number) => z.coerce.number().int().min(min).max(max).default(fallback);

/** Schemas by runbook. Runbooks without an entry take no parameters beyond what their code reads. */
export const PARAM_SCHEMAS: Partial<Record<RunbookName, z.ZodType<Record<string, unknown>>>> = {
  apiKeyTrace: z
    .object({ email: userEmail, at: pastInstant.optional(), requestId: requestId.optional(), windowMinutes: windowMinutes(15) })
    .strict(),
  transferNotApplied: z
    .object({
      email: userEmail,
      at: pastInstant.optional(),
      transferId: z.coerce.number().int().positive().optional(),
      windowMinutes: windowMinutes(24 * 60),
    })
    .strict(),
  providerDown: z
    .object({ graceSeconds: seconds(0, 3600, 60), sampleSeconds: seconds(1, 600, 30) })
    .strict(),
  allProvidersDown: z
    .object({ recoveryDeadlineSeconds: seconds(10, 24 * 3600, 3600), pollSeconds: seconds(1, 600, 30) })
    .strict(),
  rateLimitStorm: z.object({ windowSeconds: z.coerce.number().int().min(5).max(3600).optional() }).strict(),
  authFailure: z.object({ deployWindowMinutes: z.coerce.number().int().min(1).max(7 * 24 * 60).optional() }).strict(),
  badRelease: z
    .object({ windowMinutes: z.coerce.number().int().min(1).max(7 * 24 * 60).optional(), errorRatePct: z.coerce.number().positive().max(100).optional() })
    .strict(),
  memoryLeak: z
    .object({
      memoryLimitMb: z.coerce.number().int().min(64).max(65536).optional(),
      watchMs: z.coerce.number().int().min(1000).max(24 * 3600_000).optional(),
      component: z.string().regex(/^[\w-]{1,40}$/).optional(),
    })
    .strict(),
  latencySpike: z
    .object({
      memoryLimitMb: z.coerce.number().int().min(64).max(65536).optional(),
      watchMs: z.coerce.number().int().min(1000).max(24 * 3600_000).optional(),
    })
    .strict(),
  /** Seed 002, INC-09: "SEV-1 if during compliance audit". */
  auditChainBreak: z
    .object({ complianceAudit: z.union([z.boolean(), z.enum(['true', 'false']).transform((v) => v === 'true')]).optional() })
    .strict(),
  /** Seed 002's window_seconds for the cache hit rate to recover after PONG (default limits.cacheRecoverySeconds, 300). */
  cacheFailure: z.object({ hitRateWindowSeconds: z.coerce.number().int().min(1).max(3600).optional() }).strict(),
  quotaExhaustion: z.object({ windowMinutes: z.coerce.number().positive().max(24 * 60).optional() }).strict(),
  dataBreach: z.object({ since: pastInstant.optional(), erasureUserEmail: userEmail.optional() }).strict(),
  /** The address that got no mail: probed as RCPT TO instead of the configured one (no message is sent). */
  smtpDelivery: z.object({ recipient: userEmail.optional() }).strict(),
};

/** Returns the checked parameters or throws an Error whose message names every bad field. */
/** Parameters every runbook takes: the kernel reads them (seed 001's messages greet the customer by name). */
const COMMON_PARAMS = z.object({ customerName: z.string().trim().min(1).max(100).optional() });

export function checkParams(runbook: RunbookName, params: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  const schema = PARAM_SCHEMAS[runbook];
  if (!schema) return params;
  const { customerName, ...own } = params ?? {};
  const common = COMMON_PARAMS.safeParse({ customerName });
  const r = schema.safeParse(own);
  if (r.success && common.success) {
    return { ...r.data, ...(common.data.customerName !== undefined ? { customerName: common.data.customerName } : {}) };
  }
  const issues = [...(common.success ? [] : common.error.issues), ...(r.success ? [] : r.error.issues)];
  const problems = issues.map((i) => `${i.path.length ? `--param ${i.path.join('.')}` : 'params'}: ${i.message}`);
  throw new Error(`invalid parameters for ${runbook}: ${problems.join('; ')}`);
}
