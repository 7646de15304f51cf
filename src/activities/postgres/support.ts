/**
 * Support activities (seed 000): what on-call looks up when a user reports "my key stopped working"
 * or "my transfer never arrived": the user's account, their charged requests, key events, the api's
 * request log lines, transfers and approvals, the job queue and the worker's errors.
 *
 * Results carry ids, counts, statuses and times only: never a key, a key hash or another user's email.
 */
import type { PgQueryable } from './pg-exec';
import type { ActivityDeps } from '../engine/deps';
import type { PgSchemaNames } from '../../config';
import { withPgClient } from './postgres';
import { pgStatement, runStatement, targetSchemaNames, type PgStatement } from './pg-schema';
import { withRedisClient, type RedisClient } from '../redis/redis';
import { RQ_JOB_PREFIX, queueRegistered } from '../redis/queue';
import { logMatchers, targetConfig } from '../engine/deps';
import { logValue, type LogPattern } from '../../lib/target-signals';
import { createDockerActivities } from '../containers/docker';
import { ErrorType, describeError, permanent } from '../engine/errors';

export interface SupportUser {
  found: boolean;
  userId?: string;
  isAdmin?: boolean;
  createdAt?: string;
}

export interface KeyEvent {
  action: string;
  at: string;
  /** What the action did to the user's keys (`security.keyRotatedAction`, `security.erasureAction`); absent in results recorded before. */
  kind?: 'rotation' | 'erasure';
}

export interface RequestRows {
  /** Charged requests of the user inside the window. */
  inWindow: number;
  byStatus: Record<string, number>;
  first?: string;
  last?: string;
  /** The row with the given request id, whoever it belongs to. */
  match?: { rowId: string; mine: boolean; amount: number; status: string; provider: string | null; createdAt: string };
}

export interface ApiLogTrace {
  available: boolean;
  error?: string;
  /** The request's own log line, if the api saw it inside the window. */
  request?: { status: number; path: string; at: string; userId?: string };
  userRequests: number;
  userByStatus: Record<string, number>;
  /** Failed authentications in the window (they carry no user id: the key matched nobody). */
  authFailures: number;
  /**
   * How much of the window the log settings recognise: api lines read, request lines among them
   * (`logs.status`), and request lines with a user id (`logs.userId`), with a request id
   * (`logs.requestId`) and with status 401. Absent in results recorded before they were counted.
   */
  linesRead?: number;
  requestLines?: number;
  withUser?: number;
  withRequestId?: number;
  unauthorized?: number;
}

export interface TransferRow {
  id: string;
  direction: 'sent' | 'received';
  amount: number;
  status: string;
  createdAt: string;
  appliedAt: string | null;
  approval?: { id: string; status: string; createdAt: string };
}

export interface QueueState {
  key: string;
  /** The component that consumes the queue. */
  consumer: string;
  length: number;
  /** Length again after `sampleMs`: a queue that does not shrink is not being consumed. */
  lengthAfter: number;
  sampleMs: number;
  /** Jobs ahead of each transfer's job (the worker pops from the tail); absent = not queued. */
  ahead: Record<string, number>;
  scanned: number;
  /**
   * Jobs among those scanned that call `queue.transferFunction`; and whether the key is a queue at all
   * (a list in Redis, or registered in RQ's `rq:queues`). Absent in results recorded before.
   */
  transferJobs?: number;
  known?: boolean;
}

export interface WorkerLogErrors {
  available: boolean;
  error?: string;
  errors: number;
  warnings: number;
  /** Error / warning lines naming one of the transfers. */
  forTransfers: number;
  /** A few of those lines, as the worker wrote them (they hold ids, never secrets). */
  samples: string[];
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

const MAX_QUEUE_SCAN = 20_000;

/** The account whose email is `$1` (case-insensitive): id, admin flag, creation time. */
export function userByEmailStatement(schema: PgSchemaNames): PgStatement {
  return pgStatement(
    schema,
    (n) => `SELECT u.id::text AS id, ${n('users.isAdmin', 'u')} AS is_admin, ${n('users.createdAt', 'u')} AS created_at
              FROM users u WHERE lower(u.email) = lower($1) LIMIT 1`,
  );
}

/** The charged requests of user `$1` between `$2` and `$3`, per status. */
export function requestsByStatusStatement(schema: PgSchemaNames): PgStatement {
  return pgStatement(
    schema,
    (n) => `SELECT ${n('requestLogs.status', 'r')} AS status, count(*)::text AS n, min(r.created_at) AS first, max(r.created_at) AS last
              FROM request_logs r
             WHERE r.user_id = $1 AND r.amount > 0 AND r.created_at BETWEEN $2 AND $3 GROUP BY ${n('requestLogs.status', 'r')}`,
  );
}

/** The first row of request id `$1`, whoever it belongs to. */
export function requestRowStatement(schema: PgSchemaNames): PgStatement {
  return pgStatement(
    schema,
    (n) => `SELECT ${n('requestLogs.id', 'r')}::text AS id, r.user_id::text AS user_id, r.amount::text AS amount, ${n('requestLogs.status', 'r')} AS status,
                   ${n('requestLogs.provider', 'r')} AS provider, r.created_at
              FROM request_logs r WHERE r.request_id = $1 ORDER BY ${n('requestLogs.id', 'r')} LIMIT 1`,
  );
}

/** The transfers user `$1` sent or received (optionally transfer `$2`, between `$3` and `$4`), each with its latest approval request. */
export function userTransfersStatement(schema: PgSchemaNames): PgStatement {
  return pgStatement(
    schema,
    (n) => `SELECT t.id::text AS id, t.sender_id::text AS sender_id, t.amount::text AS amount, t.status, t.created_at, ${n('transfers.appliedAt', 't')} AS applied_at,
                   ${n('approvals.id', 'a')}::text AS approval_id, ${n('approvals.status', 'a')} AS approval_status, ${n('approvals.createdAt', 'a')} AS approval_at
              FROM token_transfers t
              LEFT JOIN LATERAL (SELECT * FROM approval_requests ar WHERE ${n('approvals.transferId', 'ar')} = t.id ORDER BY ${n('approvals.id', 'ar')} DESC LIMIT 1) a ON true
             WHERE (t.sender_id = $1 OR t.recipient_id = $1)
               AND ($2::bigint IS NULL OR t.id = $2::bigint)
               AND ($3::timestamptz IS NULL OR t.created_at >= $3::timestamptz)
               AND ($4::timestamptz IS NULL OR t.created_at <= $4::timestamptz)
             ORDER BY t.created_at DESC, t.id DESC LIMIT 20`,
  );
}

export function createSupportActivities(deps: ActivityDeps) {
  const docker = createDockerActivities(deps);

  const withPg = <T>(target: string, fn: (c: PgQueryable) => Promise<T>): Promise<T> => withPgClient(deps, target, fn);

  const withRedis = <T>(target: string, fn: (r: RedisClient) => Promise<T>): Promise<T> => withRedisClient(deps, target, fn);

  /** The account behind an email (case-insensitive). An unknown email is a finding, not an error. */
  async function lookupUser(input: { target: string; email: string }): Promise<SupportUser> {
    const stmt = userByEmailStatement(targetSchemaNames(deps, input.target));
    return withPg(input.target, async (c) => {
      const r = await runStatement<{ id: string; is_admin: boolean; created_at: Date }>(c, input.target, stmt, [input.email]);
      const row = r.rows[0];
      if (!row) return { found: false };
      return { found: true, userId: row.id, isAdmin: row.is_admin, createdAt: row.created_at.toISOString() };
    });
  }

  /** Key rotations and erasures of the user up to `to` (newest first): why a key that worked stops working. */
  async function keyEvents(input: { target: string; userId: string; to: string }): Promise<{ events: KeyEvent[] }> {
    const sec = targetConfig(deps, input.target).security;
    return withPg(input.target, async (c) => {
      const r = await c.query<{ action: string; created_at: Date }>(
        `SELECT action, created_at FROM audit_logs
          WHERE target_type = 'user' AND target_id = $1 AND action = ANY($3::text[]) AND created_at <= $2
          ORDER BY created_at DESC LIMIT 5`,
        [input.userId, input.to, [sec.keyRotatedAction, sec.erasureAction]],
      );
      const kind = (action: string): KeyEvent['kind'] => (action === sec.keyRotatedAction ? 'rotation' : 'erasure');
      return { events: r.rows.map((x) => ({ action: x.action, at: x.created_at.toISOString(), kind: kind(x.action) })) };
    });
  }

  /** The user's charged requests in the window, and the row of one request id if it exists. */
  async function requestRows(input: { target: string; userId: string; requestId?: string; from: string; to: string }): Promise<RequestRows> {
    const schema = targetSchemaNames(deps, input.target);
    return withPg(input.target, async (c) => {
      const agg = await runStatement<{ status: string; n: string; first: Date; last: Date }>(c, input.target, requestsByStatusStatement(schema), [
        input.userId,
        input.from,
        input.to,
      ]);
      const byStatus: Record<string, number> = {};
      let first: Date | undefined;
      let last: Date | undefined;
      for (const row of agg.rows) {
        byStatus[row.status] = Number(row.n);
        if (!first || row.first < first) first = row.first;
        if (!last || row.last > last) last = row.last;
      }
      const out: RequestRows = {
        inWindow: Object.values(byStatus).reduce((a, b) => a + b, 0),
        byStatus,
        ...(first ? { first: first.toISOString() } : {}),
        ...(last ? { last: last.toISOString() } : {}),
      };
      if (input.requestId) {
        const m = await runStatement<{ id: string; user_id: string; amount: string; status: string; provider: string | null; created_at: Date }>(
          c,
          input.target,
          requestRowStatement(schema),
          [input.requestId],
        );
        const row = m.rows[0];
        if (row) {
          out.match = {
            rowId: row.id,
            mine: row.user_id === input.userId,
            amount: Number(row.amount),
            status: row.status,
            provider: row.provider,
            createdAt: row.created_at.toISOString(),
          };
        }
      }
      return out;
    });
  }

  /** Log lines of a component inside [from, to] (by `logs.timestamp`; lines without one are kept), optionally only those matching `grep`. */
  async function logLines(target: string, component: string, from: string, to: string, grep?: string): Promise<string[]> {
    const m = logMatchers(deps, target);
    const sinceSeconds = Math.ceil((Date.now() - Date.parse(from)) / 1000) + 5;
    const r = await docker.containerLogs({ target, component, sinceSeconds, limit: 50_000, ...(grep ? { grep } : {}) });
    const lo = Date.parse(from);
    const hi = Date.parse(to);
    return r.lines.filter((line) => {
      const t = Date.parse(logValue(m, 'timestamp', line) ?? '');
      return Number.isNaN(t) || (t >= lo && t <= hi);
    });
  }

  /**
   * The api's request log around the time: the request's own line, the user's requests, failed
   * authentications, and how much of the log the log settings recognise (lines read, request lines,
   * request lines with a user id or a request id): a request not found among lines nobody can read
   * is not a request that never came.
   */
  async function apiRequestLog(input: { target: string; requestId?: string; userId?: string; from: string; to: string }): Promise<ApiLogTrace> {
    const out: ApiLogTrace = { available: true, userRequests: 0, userByStatus: {}, authFailures: 0, linesRead: 0, requestLines: 0, withUser: 0, withRequestId: 0, unauthorized: 0 };
    try {
      const m = logMatchers(deps, input.target);
      const value = (key: LogPattern, line: string): string | undefined => logValue(m, key, line);
      const lines = await logLines(input.target, 'api', input.from, input.to);
      out.linesRead = lines.length;
      // The id as a literal narrows the lines whatever the log format; the pattern then checks it is the request id.
      const mentions = input.requestId ? new RegExp(escapeRe(input.requestId), 'i') : undefined;
      for (const l of lines) {
        if (m.authFailed.test(l)) out.authFailures++;
        const status = value('status', l);
        if (status === undefined) continue;
        out.requestLines = (out.requestLines ?? 0) + 1;
        if (status === '401') out.unauthorized = (out.unauthorized ?? 0) + 1;
        const userId = value('userId', l);
        if (userId !== undefined) out.withUser = (out.withUser ?? 0) + 1;
        const requestId = value('requestId', l);
        if (requestId !== undefined) out.withRequestId = (out.withRequestId ?? 0) + 1;
        if (mentions && !out.request && mentions.test(l) && requestId === input.requestId) {
          out.request = { status: Number(status), path: value('path', l) ?? '', at: value('timestamp', l) ?? '', ...(userId ? { userId } : {}) };
        }
        if (input.userId && userId === input.userId && value('path', l)?.startsWith('/v1/')) {
          out.userRequests++;
          out.userByStatus[status] = (out.userByStatus[status] ?? 0) + 1;
        }
      }
    } catch (err) {
      return { available: false, error: describeError(err), userRequests: 0, userByStatus: {}, authFailures: 0 };
    }
    return out;
  }

  /** The user's transfers (sent or received) with their approval requests, newest first. */
  async function userTransfers(input: { target: string; userId: string; transferId?: string; from?: string; to?: string }): Promise<{ transfers: TransferRow[] }> {
    const stmt = userTransfersStatement(targetSchemaNames(deps, input.target));
    return withPg(input.target, async (c) => {
      const r = await runStatement<{
        id: string;
        sender_id: string;
        amount: string;
        status: string;
        created_at: Date;
        applied_at: Date | null;
        approval_id: string | null;
        approval_status: string | null;
        approval_at: Date | null;
      }>(c, input.target, stmt, [input.userId, input.transferId ?? null, input.from ?? null, input.to ?? null]);
      return {
        transfers: r.rows.map((x) => ({
          id: x.id,
          direction: x.sender_id === input.userId ? ('sent' as const) : ('received' as const),
          amount: Number(x.amount),
          status: x.status,
          createdAt: x.created_at.toISOString(),
          appliedAt: x.applied_at ? x.applied_at.toISOString() : null,
          ...(x.approval_id && x.approval_status && x.approval_at
            ? { approval: { id: x.approval_id, status: x.approval_status, createdAt: x.approval_at.toISOString() } }
            : {}),
        })),
      };
    });
  }

  /** LLEN of the job queue, sampled twice, and where each transfer's job waits in it. */
  async function jobQueueState(input: { target: string; transferIds: string[]; sampleMs?: number }): Promise<QueueState> {
    const queue = targetConfig(deps, input.target).queue;
    if (!queue) throw permanent(ErrorType.NotConfigured, `target "${input.target}" has no job queue configured`);
    const key = queue.key;
    const sampleMs = Math.min(Math.max(input.sampleMs ?? 3000, 0), 10_000);
    return withRedis(input.target, async (r) => {
      const length = await r.llen(key);
      const wanted = new Set(input.transferIds);
      const ahead: Record<string, number> = {};
      let scanned = 0;
      let transferJobs = 0;
      // Jobs are scanned even when no transfer is wanted: that they are recognised is evidence too.
      for (let start = 0; start < Math.min(length, MAX_QUEUE_SCAN); start += 1000) {
        const ids = await r.lrange(key, start, start + 999);
        // RQ: ids on the list, each job's call in its hash's description (`func(args)`); one round trip for all.
        const descriptions = await r.hgetEach(
          ids.map((id) => `${RQ_JOB_PREFIX}${id}`),
          'description',
        );
        descriptions.forEach((description, i) => {
          const id = transferIdOf(description, queue.transferFunction);
          if (id) transferJobs++;
          // Enqueued on the right, taken from the left: the job at index i has i jobs ahead of it.
          if (id && wanted.has(id) && ahead[id] === undefined) ahead[id] = start + i;
        });
        scanned += ids.length;
      }
      if (sampleMs > 0) await new Promise((res) => setTimeout(res, sampleMs));
      const lengthAfter = await r.llen(key);
      const known = length > 0 || lengthAfter > 0 || (await queueRegistered(r, key));
      return { key, consumer: queue.component, length, lengthAfter, sampleMs, ahead, scanned, transferJobs, known };
    });
  }

  /** Errors and warnings in the queue consumer's log since the window began, and those naming the transfers. */
  async function workerLogErrors(input: { target: string; transferIds: string[]; from: string; to: string }): Promise<WorkerLogErrors> {
    try {
      const consumer = targetConfig(deps, input.target).queue?.component;
      if (!consumer) throw permanent(ErrorType.NotConfigured, `target "${input.target}" has no job queue configured`);
      const m = logMatchers(deps, input.target);
      const lines = await logLines(input.target, consumer, input.from, input.to, `(?:${m.levelError.source})|(?:${m.levelWarning.source})`);
      const ids = new Set(input.transferIds);
      const named = lines.filter((l) => {
        const id = logValue(m, 'transferId', l);
        return id !== undefined && ids.has(id);
      });
      return {
        available: true,
        errors: lines.filter((l) => m.levelError.test(l)).length,
        warnings: lines.filter((l) => m.levelWarning.test(l)).length,
        forTransfers: named.length,
        samples: named.slice(-3).map((l) =>
          [logValue(m, 'timestamp', l), m.levelError.test(l) ? 'error' : 'warn', logValue(m, 'message', l), `transfer_id=${logValue(m, 'transferId', l) ?? ''}`]
            .filter((x) => x !== undefined && x !== '')
            .join(' '),
        ),
      };
    } catch (err) {
      return { available: false, error: describeError(err), errors: 0, warnings: 0, forTransfers: 0, samples: [] };
    }
  }

  return { lookupUser, keyEvents, requestRows, apiRequestLog, userTransfers, jobQueueState, workerLogErrors };
}

/** The transfer a job applies, from its RQ description `<transferFunction>(<id>)`; other jobs have none. */
export function transferIdOf(description: string | null, transferFunction: string): string | undefined {
  if (!description || !description.startsWith(`${transferFunction}(`)) return undefined;
  const arg = /^\(\s*'?(\d+)'?\s*[,)]/.exec(description.slice(transferFunction.length))?.[1];
  return arg;
}
