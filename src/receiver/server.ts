/**
 * The alert receiver's HTTP server (node:http, no framework), built by a factory so tests run it
 * in-process on an ephemeral port against a real Temporal server.
 *
 *   POST /alerts/alertmanager | /alerts/pagerduty | /alerts/grafana | /alerts/generic
 *   GET  /healthz (liveness), GET /readyz (Temporal answers), GET /metrics
 *
 * Bad input is always a 4xx (400, 401, 404, 405, 408, 413, 415, 422, 431), a malformed request line
 * or target included; the only 5xx is 503 with Retry-After when Temporal cannot be used or the
 * dispatcher's lanes are full, so the sender retries and no alert is lost.
 *
 * A request is authenticated before its body is read (a bearer token, or the presence of a signature
 * whose check needs the body), and refused unread otherwise. Headers, body and the whole request
 * have deadlines, and open connections are capped (`maxConnections`).
 */
import { randomUUID } from 'node:crypto';
import http, { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Client } from '@temporalio/client';
import pino, { type Logger } from 'pino';
import type { EngineConfig } from '../config';
import { HttpError, readBody, type Body } from '../lib/http-body';
import {
  checkBearer,
  checkGrafanaHeaders,
  checkGrafanaSignature,
  checkPagerDutyHeader,
  checkPagerDutySignature,
  type AuthResult,
} from './auth';
import { resolveAuth, SOURCES, type ReceiverConfig, type ResolvedAuth, type SourceName } from './config';
import { createDispatcher, LaneFullError, TemporalUnavailableError, type AlertOutcome } from './dispatch';
import { createReceiverMetrics, type ReceiverMetrics } from './metrics';
import { isIgnored, isInvalid, parsePayload, type ParsedItem } from './payloads';
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

/** The receiver keeps a larger margin than the codec server: senders batch many alerts in one body. */
const DRAIN_FACTOR = 16;

/**
 * A request target for the error message (which is also logged): quoted, at most 100 characters,
 * without its query string, where a client might have put a credential.
 */
function quoteTarget(target: string): string {
  const q = target.indexOf('?');
  const shown = q === -1 ? target : `${target.slice(0, q)}?…`;
  return JSON.stringify(shown.length > 100 ? `${shown.slice(0, 100)}…` : shown);
}

/**
 * The path of a request target, which node hands over unchecked: origin-form (`/alerts/x`) or
 * absolute-form (`http://host/alerts/x`). Anything else, or a URL that does not parse (`http://[`,
 * `http://a:b:c/x`, `http://%zz/`), is a 400 saying so.
 */
export function requestPath(target: string | undefined): string {
  if (!target) throw new HttpError(400, 'the request has no target', {}, { reason: 'bad_target' });
  const absolute = /^[a-z][a-z\d+.-]*:/i.test(target);
  if (!absolute && !target.startsWith('/')) {
    throw new HttpError(
      400,
      `malformed request target ${quoteTarget(target)}: expected a path such as /alerts/alertmanager or an absolute http URL`,
      {},
      { reason: 'bad_target' },
    );
  }
  let url: URL;
  try {
    // A path starting with `//` would be read as a host: the base's scheme and host are given as-is.
    url = absolute ? new URL(target) : new URL(`http://receiver${target}`);
  } catch {
    throw new HttpError(
      400,
      `malformed request target ${quoteTarget(target)}: ${
        absolute ? 'not a valid absolute URL (check its host and port)' : 'not a valid path'
      }`,
      {},
      { reason: 'bad_target' },
    );
  }
  if (absolute && url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new HttpError(
      400,
      `malformed request target ${quoteTarget(target)}: only http and https URLs are served`,
      {},
      { reason: 'bad_target' },
    );
  }
  return url.pathname;
}

/** Answers on the raw socket a request node could not parse (no ServerResponse exists for it). */
function answerRawSocket(socket: Socket, status: number, message: string): void {
  const body = JSON.stringify({ error: message });
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n` +
      'content-type: application/json; charset=utf-8\r\n' +
      `content-length: ${Buffer.byteLength(body)}\r\n` +
      'connection: close\r\n\r\n' +
      body,
  );
}

export function createReceiver(opts: CreateReceiverOptions): Receiver {
  const { config, engine, routes, client } = opts;
  const logger = opts.logger ?? createReceiverLogger(config.logLevel);
  const auth = opts.auth ?? resolveAuth(config);
  const taskQueue = opts.taskQueue ?? config.taskQueue ?? engine.temporal.taskQueue;
  const metrics = createReceiverMetrics({ defaultMetrics: opts.defaultMetrics ?? false });
  const recorder = createRecorder(config.stateDir, {
    ...config.unroutedFile,
    onRotate: ({ file, bytes, deleted }) => {
      metrics.recordRotations.inc();
      if (deleted) metrics.recordDropped.inc();
      logger.warn(
        { file, bytes, maxBytes: config.unroutedFile.maxBytes, keep: config.unroutedFile.keep, deleted },
        deleted ? 'unrouted alerts file rotated; the oldest rotated file was deleted' : 'unrouted alerts file rotated',
      );
    },
  });
  const dispatcher = createDispatcher({
    client,
    engine,
    taskQueue,
    timeoutMs: config.temporalTimeoutMs,
    logger,
    limits: { maxIncidents: config.lanes.maxIncidents, maxQueuedPerIncident: config.lanes.maxQueuedPerIncident },
    coalesceWindowMs: config.lanes.coalesceWindowMs,
    onCoalesced: (runbook, repeats) => metrics.coalesced.inc({ runbook }, repeats),
    onOverflow: (runbook, bound) => {
      metrics.laneOverflow.inc({ runbook, bound });
      logger.warn({ runbook, bound, lanes: config.lanes }, 'dispatcher lanes full: alert answered 503 for a retry');
    },
  });
  let baseUrl = '';

  for (const s of SOURCES) metrics.received.inc({ source: s }, 0);

  /**
   * Without `body`: everything that can be checked before the body is read (a bearer token; that a
   * signature header is there, and a timestamp is fresh). With it: the signatures over the body.
   */
  function authenticate(source: SourceName, req: IncomingMessage, body: Body | undefined): AuthResult {
    switch (source) {
      case 'alertmanager':
      case 'generic': {
        const a = auth[source];
        if (!a) return notEnabled(source);
        return body ? { ok: true } : checkBearer(req.headers, a.bearerTokens);
      }
      case 'pagerduty': {
        const a = auth.pagerduty;
        if (!a) return notEnabled(source);
        return body
          ? checkPagerDutySignature(req.headers, body.bytes, a.signingSecrets)
          : checkPagerDutyHeader(req.headers, a.signingSecrets);
      }
      case 'grafana': {
        const a = auth.grafana;
        if (!a) return notEnabled(source);
        if (body) return a.hmac ? checkGrafanaSignature(req.headers, body.bytes, a.hmac) : { ok: true };
        const bearer = a.bearerTokens ? checkBearer(req.headers, a.bearerTokens) : { ok: true as const };
        if (!bearer.ok || !a.hmac) return bearer;
        return checkGrafanaHeaders(req.headers, a.hmac);
      }
    }
  }

  function notEnabled(source: SourceName): never {
    throw new HttpError(
      404,
      `source "${source}" is not enabled on this receiver (sources.${source} in its config)`,
      {},
      { reason: 'disabled' },
    );
  }

  function refuseAuth(source: SourceName, result: AuthResult): void {
    if (result.ok) return;
    throw new HttpError(
      401,
      `${source}: ${result.message}`,
      {
        'www-authenticate':
          source === 'alertmanager' || source === 'generic' ? 'Bearer realm="alert-receiver"' : 'Signature',
      },
      { reason: 'unauthenticated' },
    );
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
    if (isInvalid(item)) {
      const reason = `invalid alert: ${item.issues.join('; ')}`;
      metrics.invalid.inc({ source });
      log.warn(
        { alertname: item.name, action: 'invalid', issues: item.issues },
        'alert of the group refused on its own',
      );
      await record(
        {
          at: new Date().toISOString(),
          source,
          action: 'invalid',
          reason,
          alertname: item.name,
          received: item.received,
        },
        log,
      );
      return { alertname: item.name, action: 'invalid', reason };
    }
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
    expectsContinue: boolean,
  ): Promise<void> {
    const receivedAt = new Date().toISOString();
    // Everything that needs no body is refused before a byte of it is read (the answer then closes
    // the connection, see handle()).
    refuseAuth(source, authenticate(source, req, undefined));
    const type = req.headers['content-type'];
    if (!type || !JSON_TYPE.test(type)) {
      throw new HttpError(
        415,
        `content-type must be application/json, got ${type ? `"${type}"` : 'none'}`,
        {},
        { reason: 'content_type' },
      );
    }
    if (expectsContinue) res.writeContinue();
    const body = await readBody(req, config.bodyLimitBytes, {
      drainFactor: DRAIN_FACTOR,
      timeoutMs: config.bodyTimeoutMs,
    });
    if (body.tooLarge) {
      throw new HttpError(
        413,
        `body is larger than the limit of ${config.bodyLimitBytes} bytes`,
        {},
        { reason: 'too_large' },
      );
    }
    refuseAuth(source, authenticate(source, req, body));
    let json: unknown;
    try {
      json = JSON.parse(body.bytes.toString('utf8'));
    } catch (err) {
      throw new HttpError(400, `body is not valid JSON: ${(err as Error).message}`, {}, { reason: 'not_json' });
    }
    const parsed = parsePayload(source, json);
    if (!parsed.ok) {
      throw new HttpError(
        422,
        `${source} payload is invalid: ${parsed.issues.join('; ')}`,
        {},
        { reason: 'invalid', details: { issues: parsed.issues } },
      );
    }
    const truncated = parsed.truncatedAlerts ?? 0;
    if (truncated > 0) {
      // The sender dropped these alerts from the group (Alertmanager's max_alerts): they never arrive.
      metrics.truncated.inc({ source }, truncated);
      log.warn(
        {
          truncatedAlerts: truncated,
          received: parsed.items.length,
          groupKey: (json as { groupKey?: unknown }).groupKey,
        },
        'the sender left %d alerts out of this group (truncatedAlerts)',
        truncated,
      );
    }

    // All alerts of a webhook at once: each reaches its incident's lane in the webhook's order (the
    // lane is joined before the first await), so a firing alert followed by its resolution keeps
    // that order, and a group's repeats for one incident share a signal.
    const settled = await Promise.allSettled(parsed.items.map((item) => processItem(item, source, receivedAt, log)));
    const results = settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const failed = settled.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
    const retry =
      failed.find((e): e is TemporalUnavailableError => e instanceof TemporalUnavailableError) ??
      failed.find((e): e is LaneFullError => e instanceof LaneFullError);
    if (failed.length > 0 && !retry) throw failed[0];
    if (retry) {
      const reason = retry instanceof LaneFullError ? 'lane_full' : 'temporal_unavailable';
      metrics.rejected.inc({ source, reason });
      log.error({ err: retry.message, reason, done: results.length, total: parsed.items.length }, 'answered 503');
      sendJson(
        res,
        503,
        { error: `${retry.message}; retry later`, results },
        { 'retry-after': String(config.retryAfterSeconds) },
      );
      return;
    }
    // 202 when nothing was done for any alert (unrouted, refused, ignored, invalid): accepted and recorded only.
    const handled = results.some((r) =>
      ['started', 'deduplicated', 'resolved-signalled', 'resolved-no-incident'].includes(r.action),
    );
    sendJson(res, handled ? 200 : 202, {
      received: results.length,
      ...(truncated > 0 ? { truncatedAlerts: truncated } : {}),
      results,
    });
  }

  /** Why Temporal cannot be used, or undefined when it answers (a namespace lookup within `readyTimeoutMs`). */
  async function temporalProblem(): Promise<string | undefined> {
    let timer: NodeJS.Timeout | undefined;
    // The gRPC deadline cancels the call; the timer also bounds the wait for a connection, so a
    // probe is always answered within readyTimeoutMs.
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`no answer within ${config.readyTimeoutMs} ms`)),
        config.readyTimeoutMs,
      );
    });
    try {
      await Promise.race([
        client.withDeadline(Date.now() + config.readyTimeoutMs, () =>
          client.workflowService.describeNamespace({ namespace: client.options.namespace }),
        ),
        late,
      ]);
      return undefined;
    } catch (err) {
      return `Temporal does not answer at ${engine.temporal.address} (namespace ${client.options.namespace}): ${
        (err as Error).message
      }`;
    } finally {
      clearTimeout(timer);
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse, expectsContinue = false): Promise<void> {
    const t0 = process.hrtime.bigint();
    const reqId = randomUUID();
    let route = 'other';
    let pathname = '';
    const log = logger.child({ reqId });
    res.setHeader('x-request-id', reqId);
    res.on('finish', () => {
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      metrics.duration.observe({ route, code: String(res.statusCode) }, seconds);
      if (route.startsWith('alerts/')) {
        log.info(
          {
            method: req.method,
            path: pathname,
            status: res.statusCode,
            ms: Math.round(seconds * 1000),
            ua: req.headers['user-agent'],
          },
          'request',
        );
      }
    });

    let source: SourceName | undefined;
    try {
      pathname = requestPath(req.url);
      const alertPath = /^\/alerts\/([a-z]+)\/?$/.exec(pathname);
      source = SOURCES.find((s) => s === alertPath?.[1]);
      if (pathname === '/healthz' || pathname === '/readyz' || pathname === '/metrics') {
        route = pathname.slice(1);
        if (req.method !== 'GET' && req.method !== 'HEAD') {
          throw new HttpError(405, `${req.method} not allowed`, { allow: 'GET, HEAD' }, { reason: 'method' });
        }
        req.resume();
        if (route === 'healthz') {
          // Liveness only: the process answers. Whether it can do its work is /readyz.
          sendJson(res, 200, { status: 'ok', taskQueue, sources: SOURCES.filter((s) => auth[s]) });
        } else if (route === 'readyz') {
          const problem = await temporalProblem();
          if (problem) log.warn({ reason: problem }, 'not ready');
          sendJson(
            res,
            problem ? 503 : 200,
            problem ? { status: 'not ready', reason: problem } : { status: 'ready', taskQueue },
          );
        } else {
          const text = await metrics.registry.metrics();
          res.writeHead(200, { 'content-type': metrics.registry.contentType });
          res.end(text);
        }
        return;
      }
      if (!source) {
        throw new HttpError(
          404,
          `no such endpoint: ${pathname}; alerts go to /alerts/{${SOURCES.join(',')}}`,
          {},
          { reason: 'not_found' },
        );
      }
      route = `alerts/${source}`;
      if (req.method !== 'POST') {
        throw new HttpError(405, `${req.method} not allowed; use POST`, { allow: 'POST' }, { reason: 'method' });
      }
      await handleAlerts(source, req, res, log, expectsContinue);
    } catch (err) {
      if (err instanceof HttpError) {
        if (source) metrics.rejected.inc({ source, reason: err.reason });
        (err.status === 401 || err.status >= 408 ? log.warn.bind(log) : log.info.bind(log))(
          { status: err.status, reason: err.reason, path: pathname },
          err.message,
        );
        // A body not read in full is not read at all: the connection closes instead of draining it.
        const hasBody =
          Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined;
        const unread = hasBody && !req.complete;
        sendJson(
          res,
          err.status,
          { error: err.message, ...err.extra.details },
          {
            ...err.headers,
            ...(unread ? { connection: 'close' } : {}),
          },
        );
        return;
      }
      log.error({ err }, 'unexpected error');
      sendJson(res, 500, { error: 'internal error' });
    }
  }

  const server = http.createServer(
    {
      headersTimeout: config.headersTimeoutMs,
      requestTimeout: config.requestTimeoutMs,
      // How often node looks for requests past those deadlines (its default, 30 s, would let a
      // stalled request outlive its deadline by that much).
      connectionsCheckingInterval: Math.min(1000, config.headersTimeoutMs),
    },
    (req, res) => {
      handle(req, res).catch((err: unknown) => {
        logger.error({ err }, 'request handler failed');
        if (!res.headersSent) sendJson(res, 500, { error: 'internal error' });
      });
    },
  );
  // With Expect: 100-continue the client waits for a go-ahead before it sends the body: it gets
  // one only once the request is authenticated.
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    handle(req, res, true).catch((err: unknown) => {
      logger.error({ err }, 'request handler failed');
      if (!res.headersSent) sendJson(res, 500, { error: 'internal error' });
    });
  });
  server.maxConnections = config.maxConnections;
  let lastDropLog = 0;
  server.on('drop', (data?: { remoteAddress?: string }) => {
    metrics.connectionsDropped.inc();
    // One line a second at most: a flood of connections must not become a flood of log lines.
    const now = Date.now();
    if (now - lastDropLog >= 1000) {
      lastDropLog = now;
      logger.warn(
        { maxConnections: config.maxConnections, remote: data?.remoteAddress },
        'connection closed on arrival: maxConnections are open',
      );
    }
  });
  // Requests node cannot parse (bad request line, bad headers) or that miss the header deadline
  // never reach handle(): they are answered here, in JSON like every other refusal.
  server.on('clientError', (err: NodeJS.ErrnoException & { reason?: string }, socket: Socket) => {
    const inFlight = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
    if (err.code === 'ECONNRESET' || !socket.writable || inFlight?.headersSent) {
      socket.destroy();
      return;
    }
    const [status, message] =
      err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [
            408,
            `the request did not arrive within its deadline (headers ${config.headersTimeoutMs} ms, request ${config.requestTimeoutMs} ms)`,
          ]
        : err.code === 'HPE_HEADER_OVERFLOW'
          ? [431, 'the request headers are too large']
          : [400, `malformed HTTP request: ${err.reason ?? err.message}`];
    metrics.clientErrors.inc({ status: String(status) });
    logger.info({ status, code: err.code }, message);
    answerRawSocket(socket, status, message);
  });

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
