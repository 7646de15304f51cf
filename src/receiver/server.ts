/**
 * The alert receiver's HTTP server (node:http, no framework), built by a factory so tests run it
 * in-process on an ephemeral port against a real Temporal server.
 *
 *   POST /alerts/alertmanager | /alerts/pagerduty | /alerts/grafana | /alerts/generic
 *   GET  /healthz, GET /metrics
 *
 * Bad input is always a 4xx (401, 404, 405, 413, 415, 400, 422); the only 5xx is 503 with
 * Retry-After when Temporal cannot be used, so the sender retries and no alert is lost.
 */
import { randomUUID } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Client } from '@temporalio/client';
import pino, { type Logger } from 'pino';
import type { EngineConfig } from '../config';
import { checkBearer, checkGrafanaSignature, checkPagerDutySignature, type AuthResult } from './auth';
import { resolveAuth, SOURCES, type ReceiverConfig, type ResolvedAuth, type SourceName } from './config';
import { createDispatcher, TemporalUnavailableError, type AlertOutcome } from './dispatch';
import { createReceiverMetrics, type ReceiverMetrics } from './metrics';
import { isIgnored, parsePayload, type ParsedItem } from './payloads';
import { createRecorder, type Recorder } from './record';
import { routeAlert, type RouteTable } from './routes';

export interface CreateReceiverOptions {
  config: ReceiverConfig;
  engine: EngineConfig;
  routes: RouteTable;
  client: Client;
  logger?: Logger;
  /** Overrides `config.taskQueue` and the engine's task queue (tests use one per run). */
  taskQueue?: string;
  /** Secrets already resolved; by default they are read from the config's references. */
  auth?: ResolvedAuth;
  /** Also export Node.js process metrics (the standalone process does; tests need not). */
  defaultMetrics?: boolean;
}

export interface Receiver {
  listen(port?: number, host?: string): Promise<AddressInfo>;
  close(): Promise<void>;
  /** Base URL once listening, e.g. `http://127.0.0.1:8095`. */
  readonly url: string;
  readonly metrics: ReceiverMetrics;
  readonly recorder: Recorder;
  readonly taskQueue: string;
}

/** Headers whose values are never logged. */
export const REDACTED_HEADERS = ['authorization', 'x-pagerduty-signature', 'x-grafana-alerting-signature', 'cookie'];

/** The receiver's logger: JSON lines, with credentials redacted should a header object ever be logged. */
export function createReceiverLogger(
  level: string,
  extraRedactedHeaders: string[] = [],
  destination?: pino.DestinationStream,
): Logger {
  const headers = [...new Set([...REDACTED_HEADERS, ...extraRedactedHeaders.map((h) => h.toLowerCase())])];
  const paths = headers.flatMap((h) => [`headers["${h}"]`, `req.headers["${h}"]`]);
  const opts: pino.LoggerOptions = {
    level,
    base: { service: 'alert-receiver' },
    redact: { paths, censor: '[redacted]' },
  };
  return destination ? pino(opts, destination) : pino(opts);
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
    readonly details?: Record<string, unknown>,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

interface Body {
  bytes: Buffer;
  tooLarge: boolean;
}

/** Reads the body up to `limit`; past it the rest is drained (bounded) so the client still gets its 413. */
function readBody(req: IncomingMessage, limit: number): Promise<Body> {
  const drainCap = Math.max(limit * 16, 4 * 1024 * 1024);
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > drainCap) {
    req.resume();
    return Promise.resolve({ bytes: Buffer.alloc(0), tooLarge: true });
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = Number.isFinite(declared) && declared > limit;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) tooLarge = true;
      if (!tooLarge) chunks.push(chunk);
      if (size > drainCap) {
        resolve({ bytes: Buffer.alloc(0), tooLarge: true });
        req.destroy();
      }
    });
    req.on('end', () => resolve({ bytes: tooLarge ? Buffer.alloc(0) : Buffer.concat(chunks), tooLarge }));
    req.on('error', reject);
  });
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent) return;
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;.*)?$/i;

export function createReceiver(opts: CreateReceiverOptions): Receiver {
  const { config, engine, routes, client } = opts;
  const logger = opts.logger ?? createReceiverLogger(config.logLevel);
  const auth = opts.auth ?? resolveAuth(config);
  const taskQueue = opts.taskQueue ?? config.taskQueue ?? engine.temporal.taskQueue;
  const metrics = createReceiverMetrics({ defaultMetrics: opts.defaultMetrics ?? false });
  const recorder = createRecorder(config.stateDir);
  const dispatcher = createDispatcher({
    client,
    engine,
    taskQueue,
    timeoutMs: config.temporalTimeoutMs,
    logger,
    onCoalesced: (runbook, repeats) => metrics.coalesced.inc({ runbook }, repeats),
  });
  let baseUrl = '';

  for (const s of SOURCES) metrics.received.inc({ source: s }, 0);

  function authenticate(source: SourceName, req: IncomingMessage, body: Body | undefined): AuthResult {
    switch (source) {
      case 'alertmanager':
      case 'generic': {
        const a = auth[source];
        return a ? checkBearer(req.headers, a.bearerTokens) : notEnabled(source);
      }
      case 'pagerduty': {
        const a = auth.pagerduty;
        if (!a) return notEnabled(source);
        return body ? checkPagerDutySignature(req.headers, body.bytes, a.signingSecrets) : { ok: true };
      }
      case 'grafana': {
        const a = auth.grafana;
        if (!a) return notEnabled(source);
        if (!body) return a.bearerTokens ? checkBearer(req.headers, a.bearerTokens) : { ok: true };
        return a.hmac ? checkGrafanaSignature(req.headers, body.bytes, a.hmac) : { ok: true };
      }
    }
  }

  function notEnabled(source: SourceName): never {
    throw new HttpError(
      404,
      'disabled',
      `source "${source}" is not enabled on this receiver (sources.${source} in its config)`,
    );
  }

  function refuseAuth(source: SourceName, result: AuthResult): void {
    if (result.ok) return;
    throw new HttpError(401, 'unauthenticated', `${source}: ${result.message}`, undefined, {
      'www-authenticate':
        source === 'alertmanager' || source === 'generic' ? 'Bearer realm="alert-receiver"' : 'Signature',
    });
  }

  async function record(entry: Parameters<Recorder['record']>[0], log: Logger): Promise<void> {
    try {
      await recorder.record(entry);
    } catch (err) {
      // The log line still carries the whole alert, so it is not lost.
      log.error({ err, entry }, 'could not append to %s', recorder.file);
    }
  }

  async function processItem(
    item: ParsedItem,
    source: SourceName,
    receivedAt: string,
    log: Logger,
  ): Promise<AlertOutcome> {
    metrics.received.inc({ source });
    if (isIgnored(item)) {
      metrics.ignored.inc({ source });
      log.info({ alertname: item.name, action: 'ignored', reason: item.reason }, 'event ignored');
      return { alertname: item.name, action: 'ignored', reason: item.reason };
    }
    const decision = routeAlert(routes, item);
    if (decision.kind === 'unrouted') {
      metrics.unrouted.inc({ source });
      log.warn({ alertname: item.name, status: item.status, labels: item.labels, action: 'unrouted' }, decision.reason);
      await record(recorder.fromAlert(item, 'unrouted', decision.reason), log);
      return { alertname: item.name, status: item.status, action: 'unrouted', reason: decision.reason };
    }
    if (decision.kind === 'refused') {
      metrics.refused.inc({ runbook: decision.runbook });
      log.warn(
        { alertname: item.name, runbook: decision.runbook, labels: item.labels, action: 'refused' },
        decision.reason,
      );
      await record(recorder.fromAlert(item, 'refused', decision.reason, decision.runbook), log);
      return {
        alertname: item.name,
        status: item.status,
        action: 'refused',
        runbook: decision.runbook,
        reason: decision.reason,
      };
    }
    const outcome = await dispatcher.dispatch(item, decision, receivedAt);
    switch (outcome.action) {
      case 'started':
        metrics.started.inc({ runbook: decision.runbook });
        break;
      case 'deduplicated':
        metrics.deduplicated.inc({ runbook: decision.runbook });
        break;
      case 'resolved-signalled':
        metrics.resolved.inc({ runbook: decision.runbook, outcome: 'signalled' });
        break;
      case 'resolved-no-incident':
        metrics.resolved.inc({ runbook: decision.runbook, outcome: 'no_incident' });
        await record(recorder.fromAlert(item, outcome.action, outcome.reason ?? '', decision.runbook), log);
        break;
      case 'refused':
        metrics.refused.inc({ runbook: decision.runbook });
        await record(recorder.fromAlert(item, outcome.action, outcome.reason ?? '', decision.runbook), log);
        break;
      default:
        break;
    }
    log.info({ ...outcome, rule: decision.rule, severity: decision.severity }, 'alert %s', outcome.action);
    return outcome;
  }

  async function handleAlerts(
    source: SourceName,
    req: IncomingMessage,
    res: ServerResponse,
    log: Logger,
  ): Promise<void> {
    const receivedAt = new Date().toISOString();
    const body = await readBody(req, config.bodyLimitBytes);
    refuseAuth(source, authenticate(source, req, undefined));
    if (body.tooLarge) {
      throw new HttpError(413, 'too_large', `body is larger than the limit of ${config.bodyLimitBytes} bytes`);
    }
    const type = req.headers['content-type'];
    if (!type || !JSON_TYPE.test(type)) {
      throw new HttpError(
        415,
        'content_type',
        `content-type must be application/json, got ${type ? `"${type}"` : 'none'}`,
      );
    }
    refuseAuth(source, authenticate(source, req, body));
    let json: unknown;
    try {
      json = JSON.parse(body.bytes.toString('utf8'));
    } catch (err) {
      throw new HttpError(400, 'not_json', `body is not valid JSON: ${(err as Error).message}`);
    }
    const parsed = parsePayload(source, json);
    if (!parsed.ok) {
      throw new HttpError(422, 'invalid', `${source} payload is invalid: ${parsed.issues.join('; ')}`, {
        issues: parsed.issues,
      });
    }

    // All alerts of a webhook at once: each reaches its incident's lane in the webhook's order (the
    // lane is joined before the first await), so a firing alert followed by its resolution keeps
    // that order, and a group's repeats for one incident share a signal.
    const settled = await Promise.allSettled(parsed.items.map((item) => processItem(item, source, receivedAt, log)));
    const results = settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const failed = settled.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
    const unavailable = failed.find((e): e is TemporalUnavailableError => e instanceof TemporalUnavailableError);
    if (failed.length > 0 && !unavailable) throw failed[0];
    if (unavailable) {
      metrics.rejected.inc({ source, reason: 'temporal_unavailable' });
      log.error({ err: unavailable.message, done: results.length, total: parsed.items.length }, 'Temporal unavailable');
      sendJson(
        res,
        503,
        { error: `${unavailable.message}; retry later`, results },
        { 'retry-after': String(config.retryAfterSeconds) },
      );
      return;
    }
    // 202 when nothing was done for any alert (unrouted, refused, ignored): accepted and recorded only.
    const handled = results.some((r) =>
      ['started', 'deduplicated', 'resolved-signalled', 'resolved-no-incident'].includes(r.action),
    );
    sendJson(res, handled ? 200 : 202, { received: results.length, results });
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const t0 = process.hrtime.bigint();
    const reqId = randomUUID();
    // A request target the URL parser refuses (`//`, `//[`, a bad port) is the client's error: 400 below.
    const parsed = URL.canParse(req.url ?? '/', 'http://receiver');
    const url = new URL(parsed ? (req.url ?? '/') : '/', 'http://receiver');
    let route = 'other';
    const log = logger.child({ reqId });
    res.setHeader('x-request-id', reqId);
    res.on('finish', () => {
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      metrics.duration.observe({ route, code: String(res.statusCode) }, seconds);
      if (route.startsWith('alerts/')) {
        log.info(
          {
            method: req.method,
            path: url.pathname,
            status: res.statusCode,
            ms: Math.round(seconds * 1000),
            ua: req.headers['user-agent'],
          },
          'request',
        );
      }
    });

    const alertPath = /^\/alerts\/([a-z]+)\/?$/.exec(url.pathname);
    const source = SOURCES.find((s) => s === alertPath?.[1]);
    try {
      if (!parsed) {
        req.resume();
        throw new HttpError(400, 'bad_target', `malformed request target: ${JSON.stringify(req.url?.slice(0, 200))}`);
      }
      if (url.pathname === '/healthz' || url.pathname === '/metrics') {
        route = url.pathname.slice(1);
        if (req.method !== 'GET' && req.method !== 'HEAD') {
          req.resume();
          throw new HttpError(405, 'method', `${req.method} not allowed`, undefined, { allow: 'GET, HEAD' });
        }
        if (route === 'healthz') {
          sendJson(res, 200, { status: 'ok', taskQueue, sources: SOURCES.filter((s) => auth[s]) });
        } else {
          const text = await metrics.registry.metrics();
          res.writeHead(200, { 'content-type': metrics.registry.contentType });
          res.end(text);
        }
        return;
      }
      if (!source) {
        req.resume();
        throw new HttpError(
          404,
          'not_found',
          `no such endpoint: ${url.pathname}; alerts go to /alerts/{${SOURCES.join(',')}}`,
        );
      }
      route = `alerts/${source}`;
      if (req.method !== 'POST') {
        req.resume();
        throw new HttpError(405, 'method', `${req.method} not allowed; use POST`, undefined, { allow: 'POST' });
      }
      await handleAlerts(source, req, res, log);
    } catch (err) {
      if (err instanceof HttpError) {
        if (source) metrics.rejected.inc({ source, reason: err.reason });
        (err.status === 401 || err.status >= 413 ? log.warn.bind(log) : log.info.bind(log))(
          { status: err.status, reason: err.reason, path: url.pathname },
          err.message,
        );
        sendJson(res, err.status, { error: err.message, ...err.details }, err.headers);
        return;
      }
      log.error({ err }, 'unexpected error');
      sendJson(res, 500, { error: 'internal error' });
    }
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      logger.error({ err }, 'request handler failed');
      if (!res.headersSent) sendJson(res, 500, { error: 'internal error' });
    });
  });
  server.requestTimeout = 30_000;
  server.headersTimeout = 10_000;

  return {
    get url() {
      return baseUrl;
    },
    metrics,
    recorder,
    taskQueue,
    listen(port = config.listen.port, host = config.listen.host) {
      return new Promise<AddressInfo>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          const addr = server.address() as AddressInfo;
          baseUrl = `http://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}`;
          logger.info(
            { url: baseUrl, taskQueue, routes: routes.rules.length, sources: SOURCES.filter((s) => auth[s]) },
            'receiver listening',
          );
          resolve(addr);
        });
      });
    },
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
      // Pending appends finish before the process exits.
      await recorder.flush();
    },
  };
}
