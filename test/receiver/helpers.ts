/**
 * Receiver test harness: a real receiver on an ephemeral port, talking to the real Temporal dev
 * server. Every run gets its own target name (so workflow ids never collide with earlier runs) and
 * its own task queue (no worker polls it, so the incidents stay in DETECT until terminated).
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { Client, Connection, WorkflowNotFoundError } from '@temporalio/client';
import { loadConfig, type EngineConfig } from '../../src/config';
import type { AlertOutcome } from '../../src/receiver/dispatch';
import { ReceiverConfigSchema, readYamlFile, type ReceiverConfig, type ResolvedAuth } from '../../src/receiver/config';
import { compileRoutes, RoutesFileSchema, type RoutesFile, type RoutesFileInput } from '../../src/receiver/routes';
import { createReceiver, createReceiverLogger, type Receiver } from '../../src/receiver/server';
import { CODEC_FIXTURE, testDataConverter } from '../helpers/codec';
import { testLogStream } from '../helpers/test-logs';

export const REPO = path.resolve(__dirname, '../..');
export const STACK_DIR = process.env.STACK_DIR ?? path.join(REPO, '.stack');

export const TOKENS = { alertmanager: 'am-token-0123456789', generic: 'generic-token-abcdef' };
export const PD_SECRETS = ['pd-secret-current', 'pd-secret-previous'];
export const GRAFANA_SECRET = 'grafana-hmac-secret';

/** The shipped engine config with one target, `alfred-<run>`, copied from `alfred`. */
export function engineForRun(run: string): { engine: EngineConfig; target: string } {
  const engine = loadConfig(path.join(REPO, 'config/engine.yaml'), { ...process.env, STACK_DIR });
  const alfred = engine.targets.alfred;
  if (!alfred) throw new Error('config/engine.yaml has no target "alfred"');
  const target = `alfred-${run}`;
  engine.targets = { [target]: alfred };
  engine.codec.secretsFile = CODEC_FIXTURE;
  return { engine, target };
}

/**
 * config/routes.yaml as shipped, every mention of the target `alfred` replaced by `target` (a run's
 * copy of it), so tests exercise the real rules without ever opening an incident on the drill target.
 */
export function shippedRoutes(target: string): Partial<RoutesFile> {
  const file = RoutesFileSchema.parse(readYamlFile(path.join(REPO, 'config/routes.yaml'), process.env));
  const retarget = (spec: RoutesFile['defaultTarget']): RoutesFile['defaultTarget'] => {
    if (typeof spec === 'string') return spec === 'alfred' ? target : spec;
    return spec.default === 'alfred' ? { ...spec, default: target } : spec;
  };
  return {
    ...file,
    defaultTarget: retarget(file.defaultTarget),
    rules: file.rules.map((r) => (r.target ? { ...r, target: retarget(r.target) } : r)),
  };
}

export function runId(): string {
  return `${Date.now().toString(36)}${randomUUID().slice(0, 4)}`;
}

/** The receiver's JSON answer (an error, or one outcome per alert). */
export interface Answer {
  error?: string;
  issues?: string[];
  received?: number;
  results: AlertOutcome[];
}

export interface LogCapture {
  lines: string[];
  text(): string;
}

export interface TestReceiver {
  receiver: Receiver;
  client: Client;
  engine: EngineConfig;
  target: string;
  run: string;
  taskQueue: string;
  stateDir: string;
  logs: LogCapture;
  post(
    source: string,
    body: unknown,
    init?: { headers?: Record<string, string>; raw?: string | Buffer },
  ): Promise<{ status: number; json: Answer; headers: Headers }>;
  /** Terminates every incident this run opened (by its task queue) and closes everything. */
  stop(): Promise<void>;
}

export async function startTestReceiver(
  opts: {
    /** Replaces the default rules; a function gets the run's target (e.g. `shippedRoutes`). */
    routes?: Partial<RoutesFileInput> | ((target: string) => Partial<RoutesFileInput>);
    config?: Record<string, unknown>;
    auth?: ResolvedAuth;
    client?: Client;
    run?: string;
  } = {},
): Promise<TestReceiver> {
  const run = opts.run ?? runId();
  const { engine, target } = engineForRun(run);
  const stateDir = mkdtempSync(path.join(tmpdir(), 'receiver-state-'));
  const config: ReceiverConfig = ReceiverConfigSchema.parse({
    stateDir,
    temporalTimeoutMs: 5000,
    retryAfterSeconds: 7,
    sources: {
      alertmanager: { bearerTokens: [{ value: TOKENS.alertmanager }] },
      generic: { bearerTokens: [{ value: TOKENS.generic }] },
      pagerduty: { signingSecrets: PD_SECRETS.map((value) => ({ value })) },
      grafana: { hmac: { secrets: [{ value: GRAFANA_SECRET }], timestampHeader: 'X-Grafana-Alerting-Timestamp' } },
    },
    ...opts.config,
  });
  const routes = compileRoutes(
    {
      rules: [
        {
          name: 'pd-cache',
          sources: ['pagerduty'],
          match: { service: 'alfred-cache' },
          runbook: 'cacheFailure',
          target,
        },
      ],
      ...(typeof opts.routes === 'function' ? opts.routes(target) : opts.routes),
    },
    { origin: 'test routes', targets: Object.keys(engine.targets) },
  );
  const ownClient = !opts.client;
  const client =
    opts.client ??
    new Client({
      connection: await Connection.connect({ address: engine.temporal.address }),
      namespace: engine.temporal.namespace,
      dataConverter: testDataConverter(),
    });
  const lines: string[] = [];
  // Kept for the test, and appended to the test receiver log that the secrets scan reads.
  const file = testLogStream('receiver');
  const sink = new Writable({
    write(chunk: Buffer, enc, cb) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      file.write(chunk, enc, cb);
    },
  });
  const logger = createReceiverLogger('debug', [], sink);
  const taskQueue = `receiver-test-${run}`;
  const receiver = createReceiver({
    config,
    engine,
    routes,
    client,
    logger,
    taskQueue,
    ...(opts.auth ? { auth: opts.auth } : {}),
  });
  await receiver.listen(0, '127.0.0.1');

  return {
    receiver,
    client,
    engine,
    target,
    run,
    taskQueue,
    stateDir,
    logs: { lines, text: () => lines.join('\n') },
    async post(source, body, init = {}) {
      const headers: Record<string, string> = { 'content-type': 'application/json', ...init.headers };
      if (!('authorization' in headers) && source in TOKENS)
        headers.authorization = `Bearer ${TOKENS[source as keyof typeof TOKENS]}`;
      for (const [k, v] of Object.entries(headers)) if (v === '') delete headers[k];
      const res = await fetch(`${receiver.url}/alerts/${source}`, {
        method: 'POST',
        headers,
        body: init.raw ?? JSON.stringify(body),
      });
      const text = await res.text();
      let json: Answer;
      try {
        json = JSON.parse(text) as Answer;
      } catch {
        json = { error: `not JSON: ${text}`, results: [] };
      }
      return { status: res.status, json, headers: res.headers };
    },
    async stop() {
      await receiver.close();
      await terminateRun(client, taskQueue);
      if (ownClient) await client.connection.close();
      rmSync(stateDir, { recursive: true, force: true });
    },
  };
}

/** Terminates every running workflow on the run's task queue. */
export async function terminateRun(client: Client, taskQueue: string): Promise<void> {
  for await (const wf of client.workflow.list({
    query: `TaskQueue = "${taskQueue}" AND ExecutionStatus = "Running"`,
  })) {
    try {
      await client.workflow.getHandle(wf.workflowId, wf.runId).terminate('receiver test cleanup');
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError)) throw err;
    }
  }
}

/** Polls until `fn` returns a value that passes `ok`, or fails after `timeoutMs`. */
export async function eventually<T>(
  fn: () => Promise<T>,
  ok: (v: T) => boolean,
  timeoutMs = 10_000,
  everyMs = 200,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T = await fn();
  while (!ok(last)) {
    if (Date.now() > deadline)
      throw new Error(`condition not met within ${timeoutMs} ms; last value: ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, everyMs));
    last = await fn();
  }
  return last;
}

export function alertmanagerPayload(
  alerts: Array<{
    alertname: string;
    status?: 'firing' | 'resolved';
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  }>,
  groupKey = '{}:{alertname="x"}',
) {
  const status = alerts.some((a) => (a.status ?? 'firing') === 'firing') ? 'firing' : 'resolved';
  return {
    version: '4',
    groupKey,
    truncatedAlerts: 0,
    status,
    receiver: 'remediation-engine',
    groupLabels: {},
    commonLabels: {},
    commonAnnotations: {},
    externalURL: 'http://127.0.0.1:59093',
    alerts: alerts.map((a, i) => ({
      status: a.status ?? 'firing',
      labels: { alertname: a.alertname, ...a.labels },
      annotations: { summary: `${a.alertname} test alert`, ...a.annotations },
      startsAt: new Date().toISOString(),
      endsAt: '0001-01-01T00:00:00Z',
      generatorURL: 'http://127.0.0.1:59090/graph',
      fingerprint: `fp${i}`,
    })),
  };
}

export function pagerDutyPayload(eventType: string, title: string, service = 'alfred-cache') {
  return {
    event: {
      id: `01${randomUUID().replace(/-/g, '').slice(0, 24).toUpperCase()}`,
      event_type: eventType,
      resource_type: 'incident',
      occurred_at: new Date().toISOString(),
      agent: {
        html_url: 'https://example.pagerduty.com/users/PXXXXXX',
        id: 'PXXXXXX',
        summary: 'On-call',
        type: 'user_reference',
      },
      client: null,
      data: {
        id: 'Q1ABCDEF2GHIJK',
        type: 'incident',
        self: 'https://api.pagerduty.com/incidents/Q1ABCDEF2GHIJK',
        html_url: 'https://example.pagerduty.com/incidents/Q1ABCDEF2GHIJK',
        number: 42,
        status: eventType === 'incident.resolved' ? 'resolved' : 'triggered',
        incident_key: `key-${title}`,
        created_at: new Date().toISOString(),
        title,
        service: {
          html_url: 'https://example.pagerduty.com/services/PSVC',
          id: 'PSVC',
          summary: service,
          type: 'service_reference',
        },
        assignees: [],
        escalation_policy: { id: 'PEP', summary: 'Default', type: 'escalation_policy_reference' },
        teams: [],
        priority: { id: 'PPRIO', summary: 'P2', type: 'priority_reference' },
        urgency: 'high',
        conference_bridge: null,
        resolve_reason: null,
      },
    },
  };
}

export function grafanaPayload(
  alertname: string,
  labels: Record<string, string>,
  status: 'firing' | 'resolved' = 'firing',
) {
  return {
    receiver: 'remediation-engine',
    status,
    orgId: 1,
    alerts: [
      {
        status,
        labels: { alertname, grafana_folder: 'Alfred', ...labels },
        annotations: { summary: `${alertname} from Grafana` },
        startsAt: new Date().toISOString(),
        endsAt: '0001-01-01T00:00:00Z',
        generatorURL: 'http://grafana.local/alerting/grafana/abc/view',
        fingerprint: 'a1b2c3d4e5f6',
        silenceURL: 'http://grafana.local/alerting/silence/new',
        dashboardURL: '',
        panelURL: '',
        values: { B: 1 },
        valueString: "[ var='B' labels={} value=1 ]",
      },
    ],
    groupLabels: { alertname },
    commonLabels: { alertname, ...labels },
    commonAnnotations: {},
    externalURL: 'http://grafana.local/',
    version: '1',
    groupKey: `{}/{}:{alertname="${alertname}"}`,
    truncatedAlerts: 0,
    title: `[FIRING:1] ${alertname}`,
    state: 'alerting',
    message: `**Firing** ${alertname}`,
  };
}

/** What came back on a raw connection: the parsed response (if any) and whether the server closed it. */
export interface RawAnswer {
  status?: number;
  headers: Record<string, string>;
  body: string;
  /** Bytes received in all. */
  bytes: number;
  /** The server closed the connection (or refused it) before `waitMs` ran out. */
  closed: boolean;
  /** Milliseconds from the first byte written to the answer (or to the close, if nothing came). */
  ms: number;
}

/**
 * Writes `text` on a fresh TCP connection (node:net) and reads what comes back, for requests fetch
 * cannot send (malformed request lines, stalled bodies). Resolves once a whole response has arrived
 * (and, when it says `connection: close`, the close), or the server closed the connection, or after `waitMs`.
 */
export function rawRequest(
  baseUrl: string,
  text: string | Buffer,
  opts: { waitMs?: number; socket?: Socket; keepOpen?: boolean } = {},
): Promise<RawAnswer> {
  const { hostname, port } = new URL(baseUrl);
  const socket = opts.socket ?? connect(Number(port), hostname);
  const t0 = Date.now();
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let answer: RawAnswer | undefined;
    let settled = false;
    const finish = (closed: boolean): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      const raw = Buffer.concat(chunks);
      resolve({ ...(answer ?? parse(raw)), closed, ms: answer?.ms ?? Date.now() - t0 });
      if (!opts.keepOpen) socket.destroy();
    };
    const parse = (raw: Buffer): RawAnswer => {
      let text = raw.toString('utf8');
      // Interim answers (100 Continue) come first: the final one is what counts.
      while (/^HTTP\/1\.[01] 1\d\d /.test(text) && text.includes('\r\n\r\n'))
        text = text.slice(text.indexOf('\r\n\r\n') + 4);
      const end = text.indexOf('\r\n\r\n');
      const head = end === -1 ? text : text.slice(0, end);
      const [statusLine = '', ...lines] = head.split('\r\n');
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1];
      const headers: Record<string, string> = {};
      for (const l of lines) {
        const i = l.indexOf(':');
        if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      return {
        ...(status ? { status: Number(status) } : {}),
        headers,
        body: end === -1 ? '' : text.slice(end + 4),
        bytes: raw.length,
        closed: false,
        ms: Date.now() - t0,
      };
    };
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      const parsed = parse(Buffer.concat(chunks));
      const length = Number(parsed.headers['content-length']);
      const chunked = parsed.headers['transfer-encoding'] === 'chunked';
      const complete = chunked
        ? parsed.body.endsWith('0\r\n\r\n')
        : Number.isFinite(length) && Buffer.byteLength(parsed.body) >= length;
      if (parsed.status && complete) {
        answer ??= parsed;
        // A kept-alive connection stays open: the answer is all there is to wait for.
        if (opts.keepOpen || parsed.headers.connection !== 'close') finish(false);
      }
    };
    const onClose = (): void => finish(true);
    const timer = setTimeout(() => finish(false), opts.waitMs ?? 5000);
    socket.on('data', onData);
    socket.on('close', onClose);
    socket.on('error', () => undefined);
    socket.write(text);
  });
}
