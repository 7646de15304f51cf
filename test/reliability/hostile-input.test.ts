/**
 * Hostile input, by property-based fuzzing (fast-check), against a real receiver that routes to a
 * configured target and calls the real Temporal server:
 *
 * - near-valid alerts of every source, aimed at the receiver's configured target: each alert is a
 *   valid one, or one mutated so that it must not start anything (a field missing or of the wrong
 *   type, an unknown target, an alert name no route knows). Some are routed and dispatched (the
 *   receiver's answers and its /metrics say so); every workflow that started belongs to a valid
 *   alert of the request that started it; never a 5xx.
 * - the request line and the headers, over raw sockets (node:net): methods, request targets, HTTP
 *   versions, header names and values, lengths and encodings. Never a 5xx, and the server keeps
 *   answering /healthz after every one.
 * - the client script's arguments: it only ever ends with exit code 0/1/2 and a clear message.
 *
 * FUZZ_RUNS sets the number of cases per property, FUZZ_SEED replays a run (fast-check prints the
 * seed of a failing one).
 */
import { createHmac } from 'node:crypto';
import { connect } from 'node:net';
import fc from 'fast-check';
import { incidentWorkflowId } from '../../src/workflows/contracts';
import { RUNBOOKS } from '../../src/workflows/catalog';
import { GRAFANA_SECRET, PD_SECRETS, startTestReceiver, TOKENS, type Answer, type TestReceiver } from '../receiver/helpers';
import { Failure, run, UsageError } from '../../scripts/remediate';
import { credentialFile, startTestCodecServer, type TestCodecServer } from '../helpers/codec';

jest.setTimeout(300_000);

/** Near-valid alerts per source (each one that routes is a real Temporal call). */
const RUNS = Number(process.env.FUZZ_RUNS ?? 500);
/** Raw requests, and argument lists of the client script. */
const RAW_RUNS = Number(process.env.FUZZ_RAW_RUNS ?? 1000);
const SEED = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : undefined;
const params = (numRuns: number): fc.Parameters<unknown> => ({ numRuns, ...(SEED === undefined ? {} : { seed: SEED }) });

let t: TestReceiver;
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => {
  unhandled.push(reason);
};
/** Workflow ids a valid alert may start; every other start is a failure. */
const allowed = new Set<string>();

beforeAll(async () => {
  process.on('unhandledRejection', onUnhandled);
  t = await startTestReceiver();
});

afterAll(async () => {
  process.off('unhandledRejection', onUnhandled);
  // Terminates every incident the fuzzing opened (by the run's task queue).
  await t.stop();
});

/** Alert names the catalog routes (the default routes of a test receiver), with their runbook. */
const CATALOG: Array<[string, string]> = Object.entries(RUNBOOKS).flatMap(([runbook, meta]) =>
  (meta.alerts as readonly string[]).map((name) => [name, runbook] as [string, string]),
);
const runbookOf = new Map(CATALOG);

const hostileText = fc.oneof(
  fc.string({ maxLength: 30 }),
  fc.fullUnicodeString({ maxLength: 30 }),
  fc.constantFrom('__proto__', 'constructor', '${jndi:ldap://x}', '\u0000', "'; DROP TABLE x; --", 'x'.repeat(3000)),
);
/** Never a string, nor a map of strings (which a label or annotation map would accept). */
const notAString = fc.oneof(fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.array(fc.integer(), { minLength: 1, maxLength: 2 }), fc.constant({ nested: 1 }));

/**
 * One alert as the fuzzer means it: its name, status and target, extra labels and annotations with
 * hostile text, and at most one mutation. `valid` says whether the receiver may act on it.
 */
interface AlertSpec {
  name: string;
  status: 'firing' | 'resolved';
  target: string | undefined;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  mutation: string;
  valid: boolean;
  /** The incident a valid alert maps to (routed on the catalog), if any. */
  expectedId?: string;
}

/** Mutations that make an alert invalid (the receiver must not act on it), by name. */
const BREAKING = ['no-alertname', 'alertname-not-string', 'empty-alertname', 'status-upper', 'status-number', 'label-not-string', 'annotations-not-object'] as const;
/** Mutations that leave an alert well formed but not routable to the configured target. */
const UNROUTABLE = ['unknown-target', 'target-case', 'target-padded', 'target-path', 'unknown-name'] as const;
/** Mutations that must not change what the receiver does with a valid alert. */
const HARMLESS = ['none', 'none', 'none', 'hostile-labels', 'hostile-annotations', 'resolved'] as const;

function alertSpec(target: () => string): fc.Arbitrary<AlertSpec> {
  return fc
    .record({
      entry: fc.constantFrom(...CATALOG),
      other: fc.string({ minLength: 1, maxLength: 20 }),
      mutation: fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...HARMLESS) }, fc.constantFrom(...BREAKING), fc.constantFrom(...UNROUTABLE)),
      labels: fc.dictionary(fc.string({ minLength: 1, maxLength: 12 }).filter((k) => !['alertname', 'target', 'severity', 'details', 'service'].includes(k)), hostileText, { maxKeys: 3 }),
      annotations: fc.dictionary(fc.string({ minLength: 1, maxLength: 12 }), hostileText, { maxKeys: 3 }),
    })
    .map(({ entry, other, mutation, labels, annotations }) => {
      const tgt = target();
      let name = entry[0];
      let alertTarget: string | undefined = tgt;
      if (mutation === 'unknown-target') alertTarget = `${tgt}-elsewhere`;
      if (mutation === 'target-case') alertTarget = tgt.toUpperCase();
      if (mutation === 'target-padded') alertTarget = ` ${tgt}`;
      if (mutation === 'target-path') alertTarget = `../${tgt}`;
      if (mutation === 'unknown-name') name = `Fuzz${other}`.replace(/\s/g, '_');
      const valid = (HARMLESS as readonly string[]).includes(mutation);
      const runbook = runbookOf.get(name);
      return {
        name,
        status: mutation === 'resolved' ? 'resolved' : 'firing',
        target: alertTarget,
        labels: mutation === 'hostile-labels' ? labels : {},
        annotations: mutation === 'hostile-annotations' ? annotations : {},
        mutation,
        valid,
        ...(valid && runbook ? { expectedId: incidentWorkflowId(runbook, tgt) } : {}),
      };
    });
}

/** An Alertmanager / Grafana alert object carrying the spec's mutation. */
function labelledAlert(s: AlertSpec, bad: unknown): Record<string, unknown> {
  const labels: Record<string, unknown> = { ...s.labels, alertname: s.name, ...(s.target ? { target: s.target } : {}) };
  if (s.mutation === 'no-alertname') delete labels.alertname;
  if (s.mutation === 'alertname-not-string') labels.alertname = bad;
  if (s.mutation === 'empty-alertname') labels.alertname = '';
  if (s.mutation === 'label-not-string') labels.extra = bad;
  return {
    status: s.mutation === 'status-upper' ? 'FIRING' : s.mutation === 'status-number' ? 1 : s.status,
    labels,
    annotations: s.mutation === 'annotations-not-object' ? bad : { summary: `fuzz ${s.mutation}`, ...s.annotations },
    startsAt: new Date().toISOString(),
    fingerprint: `fp-${s.mutation}`,
  };
}

interface Case {
  raw: string;
  headers: Record<string, string>;
  alerts: AlertSpec[];
  /** The whole payload is well formed (its envelope, as opposed to its alerts). */
  envelopeValid: boolean;
}

function grafanaHeaders(raw: string): Record<string, string> {
  const ts = String(Math.floor(Date.now() / 1000));
  return {
    'x-grafana-alerting-timestamp': ts,
    'x-grafana-alerting-signature': createHmac('sha256', GRAFANA_SECRET).update(`${ts}:${raw}`).digest('hex'),
  };
}

function pagerDutyHeaders(raw: string): Record<string, string> {
  return { 'x-pagerduty-signature': `v1=${createHmac('sha256', PD_SECRETS[0] as string).update(raw).digest('hex')}` };
}

/** Envelope mutations of a group webhook (Alertmanager, Grafana): `none` keeps it valid. */
const ENVELOPE = fc.constantFrom('none', 'none', 'none', 'none', 'alerts-not-array', 'status-missing', 'receiver-not-string', 'version-number');

function groupCase(source: 'alertmanager' | 'grafana'): fc.Arbitrary<Case> {
  return fc
    .record({ alerts: fc.array(alertSpec(() => t.target), { minLength: 1, maxLength: 3 }), envelope: ENVELOPE, bad: notAString })
    .map(({ alerts, envelope, bad }) => {
      const body: Record<string, unknown> = {
        version: source === 'alertmanager' ? '4' : '1',
        groupKey: '{}:{alertname="fuzz"}',
        status: alerts.some((a) => a.status === 'firing') ? 'firing' : 'resolved',
        receiver: 'remediation-engine',
        groupLabels: {},
        commonLabels: {},
        commonAnnotations: {},
        externalURL: 'http://127.0.0.1:59093',
        alerts: alerts.map((a) => labelledAlert(a, bad)),
      };
      if (envelope === 'alerts-not-array') body.alerts = bad;
      if (envelope === 'status-missing') delete body.status;
      if (envelope === 'receiver-not-string') body.receiver = bad;
      if (envelope === 'version-number' && source === 'alertmanager') body.version = 4;
      const raw = JSON.stringify(body);
      return { raw, headers: source === 'grafana' ? grafanaHeaders(raw) : {}, alerts, envelopeValid: envelope === 'none' || (envelope === 'version-number' && source === 'grafana') };
    });
}

const genericCase: fc.Arbitrary<Case> = fc
  .record({ a: alertSpec(() => t.target), extra: fc.constantFrom('none', 'none', 'unknown-field', 'severity-0', 'severity-sev2'), bad: notAString })
  .map(({ a, extra, bad }) => {
    const l = labelledAlert(a, bad);
    const labels = l.labels as Record<string, unknown>;
    const body: Record<string, unknown> = { alertname: labels.alertname, status: l.status, target: a.target, labels: a.labels, annotations: l.annotations };
    if (!('alertname' in labels)) delete body.alertname;
    if (a.mutation === 'label-not-string') body.labels = { ...a.labels, extra: bad };
    if (extra === 'unknown-field') body.frobnicate = true;
    if (extra === 'severity-0') body.severity = 0;
    if (extra === 'severity-sev2') body.severity = 'sev2';
    const raw = JSON.stringify(body);
    return { raw, headers: {}, alerts: [a], envelopeValid: extra !== 'unknown-field' && extra !== 'severity-0' };
  });

/** PagerDuty routes by service (the receiver's rule: alfred-cache → cacheFailure on the target). */
const pagerDutyCase: fc.Arbitrary<Case> = fc
  .record({
    eventType: fc.constantFrom('incident.triggered', 'incident.triggered', 'incident.resolved', 'incident.reopened', 'incident.acknowledged', 'incident.annotated'),
    service: fc.constantFrom('alfred-cache', 'alfred-cache', 'alfred-elsewhere'),
    title: hostileText,
    mutation: fc.constantFrom('none', 'none', 'none', 'no-id', 'no-title', 'occurred-number', 'data-not-object', 'resource-other'),
    bad: notAString,
  })
  .map(({ eventType, service, title, mutation, bad }) => {
    const data: Record<string, unknown> = { id: 'Q1FUZZ', type: 'incident', title: title || 'untitled', status: 'triggered', service: { id: 'PSVC', summary: service }, urgency: 'high' };
    const event: Record<string, unknown> = { id: '01FUZZ', event_type: eventType, resource_type: 'incident', occurred_at: new Date().toISOString(), data };
    if (mutation === 'no-id') delete event.id;
    if (mutation === 'no-title') delete data.title;
    if (mutation === 'occurred-number') event.occurred_at = bad ?? 0;
    if (mutation === 'data-not-object') event.data = bad;
    if (mutation === 'resource-other') event.resource_type = 'service';
    const raw = JSON.stringify({ event });
    const acts = mutation === 'none' && ['incident.triggered', 'incident.reopened', 'incident.resolved'].includes(eventType);
    const valid = acts && service === 'alfred-cache';
    const spec: AlertSpec = {
      name: String(data.title),
      status: eventType === 'incident.resolved' ? 'resolved' : 'firing',
      target: t.target,
      labels: {},
      annotations: {},
      mutation,
      valid,
      ...(valid ? { expectedId: incidentWorkflowId('cacheFailure', t.target) } : {}),
    };
    return { raw, headers: pagerDutyHeaders(raw), alerts: [spec], envelopeValid: mutation === 'none' || mutation === 'resource-other' };
  });

const CASES: Record<string, fc.Arbitrary<Case>> = {
  alertmanager: groupCase('alertmanager'),
  grafana: groupCase('grafana'),
  generic: genericCase,
  pagerduty: pagerDutyCase,
};

/** Sums a counter of the receiver's /metrics (over its labels), whatever prefix its name carries. */
async function counter(name: string): Promise<number> {
  const text = await (await fetch(`${t.receiver.url}/metrics`)).text();
  const re = new RegExp(`^(?:\\w+_)?${name}(?:\\{[^}]*\\})? (\\d+(?:\\.\\d+)?)$`, 'gm');
  return [...text.matchAll(re)].reduce((sum, m) => sum + Number(m[1]), 0);
}

interface Outcome {
  status: number;
  firing: string[];
  joined: string[];
  error?: string;
  raw: string;
}

const DISPATCHED = ['started', 'deduplicated', 'resolved-signalled', 'resolved-no-incident'];

describe.each(Object.keys(CASES))('%s', (source) => {
  test(`${RUNS} near-valid alerts aimed at the configured target: never a 5xx; valid ones are dispatched, nothing else starts a workflow`, async () => {
    const statuses = new Map<number, number>();
    const actions = new Map<string, number>();
    const validCases: Outcome[] = [];
    const otherCases: Outcome[] = [];
    const startedBefore = await counter('incidents_started_total');
    const dedupBefore = await counter('alerts_deduplicated_total');
    await fc.assert(
      fc.asyncProperty(CASES[source] as fc.Arbitrary<Case>, async (c) => {
        const { status, json } = await t.post(source, undefined, { raw: c.raw, headers: c.headers });
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
        expect({ status: status < 500 ? 'below 500' : status, body: c.raw.slice(0, 300) }).toEqual({ status: 'below 500', body: c.raw.slice(0, 300) });
        const answer = json as Answer;
        const results = answer.results ?? [];
        for (const r of results) actions.set(r.action, (actions.get(r.action) ?? 0) + 1);
        // Whatever a group with an invalid alert gets (refused whole, or answered alert by alert), an
        // incident is only ever reached for a valid alert of this request.
        const mayReach = new Set(c.alerts.filter((a) => a.valid && c.envelopeValid).flatMap((a) => (a.expectedId ? [a.expectedId] : [])));
        const reached = results.filter((r) => DISPATCHED.includes(r.action)).map((r) => r.workflowId);
        expect(reached.filter((id) => !mayReach.has(id ?? ''))).toEqual([]);
        for (const id of mayReach) allowed.add(id);
        // Checked below over every such case: a request whose alerts are all valid is handled, each
        // firing alert reaching its incident; a refusal carries its reason.
        const allValid = c.envelopeValid && c.alerts.every((a) => a.valid);
        const firing = c.alerts.filter((a) => a.expectedId && a.status === 'firing').map((a) => a.expectedId ?? '');
        const joined = results.filter((r) => r.action === 'started' || r.action === 'deduplicated').map((r) => r.workflowId ?? '');
        (allValid ? validCases : otherCases).push({ status, firing: firing.sort(), joined: joined.sort(), error: answer.error, raw: c.raw.slice(0, 200) });
      }),
      params(RUNS),
    );
    const dispatched = (await counter('incidents_started_total')) - startedBefore + ((await counter('alerts_deduplicated_total')) - dedupBefore);
    console.log(`${source}: HTTP ${JSON.stringify(Object.fromEntries(statuses))}, actions ${JSON.stringify(Object.fromEntries(actions))}, firing alerts dispatched ${dispatched}`);
    // Valid requests (a good share of the cases) were handled, every firing alert reaching its incident.
    expect(validCases.length).toBeGreaterThan(RUNS / 10);
    expect(validCases.filter((o) => ![200, 202].includes(o.status) || JSON.stringify(o.firing) !== JSON.stringify(o.joined))).toEqual([]);
    // Refusals are 4xx with a message.
    const refusals = [...validCases, ...otherCases].filter((o) => o.status >= 400);
    expect(refusals.length).toBeGreaterThan(0);
    expect(refusals.filter((o) => typeof o.error !== 'string' || o.error.length < 5)).toEqual([]);
    // The fuzzing reached routing and Temporal: firing alerts were started or joined their incident...
    expect(dispatched).toBeGreaterThan(RUNS / 20);
    expect((actions.get('started') ?? 0) + (actions.get('deduplicated') ?? 0)).toBe(dispatched);
    // ...and the parsers: some payloads were refused for their content.
    expect((statuses.get(400) ?? 0) + (statuses.get(422) ?? 0) + (actions.get('refused') ?? 0)).toBeGreaterThan(0);
    expect(unhandled).toEqual([]);
  });
});

test('every workflow the fuzzing started belongs to a valid alert', async () => {
  const started: string[] = [];
  for await (const wf of t.client.workflow.list({ query: `TaskQueue = "${t.taskQueue}"` })) started.push(wf.workflowId);
  // At least the cache incident (PagerDuty's route, and the catalog's) and a handful of others.
  expect(started.length).toBeGreaterThan(3);
  expect(started.filter((id) => !allowed.has(id))).toEqual([]);
  expect(started.every((id) => id.endsWith(`-${t.target}`))).toBe(true);
});

/** What a raw request got: the status line's code, or nothing (the server closed or did not answer). */
function rawExchange(port: number, bytes: Buffer, timeoutMs = 1000): Promise<{ status?: number; text: string }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const socket = connect(port, '127.0.0.1');
    const done = (): void => {
      clearTimeout(timer);
      socket.destroy();
      const text = Buffer.concat(chunks).toString('latin1');
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(text);
      resolve({ ...(m ? { status: Number(m[1]) } : {}), text });
    };
    const timer = setTimeout(done, timeoutMs);
    socket.on('data', (d: Buffer) => {
      chunks.push(d);
      // The first response's head is all it takes.
      if (/\r\n\r\n/.test(Buffer.concat(chunks).toString('latin1'))) done();
    });
    socket.on('error', done);
    socket.on('close', done);
    // No half-close: the server would abort a request whose client ended its side before the answer.
    socket.write(bytes);
  });
}

test(`${RAW_RUNS} fuzzed request lines and headers over raw sockets: never a 5xx, the server keeps answering`, async () => {
  const port = Number(new URL(t.receiver.url).port);
  const validBody = JSON.stringify({ alertname: 'CacheFailure', status: 'firing', target: t.target });
  allowed.add(incidentWorkflowId('cacheFailure', t.target));
  const crlf = fc.constantFrom('\r\n', '\r\n', '\r\n', '\n', '\r');
  const method = fc.oneof(
    fc.constantFrom('POST', 'POST', 'POST', 'GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS', 'PATCH', 'TRACE', 'CONNECT', 'post', 'PO ST', ''),
    fc.string({ minLength: 1, maxLength: 10 }),
  );
  const target = fc.oneof(
    fc.constantFrom('/alerts/generic', '/alerts/generic', '/alerts/alertmanager', '/alerts/generic/', '/healthz', '/metrics', '*', '//', '//[', '///alerts/generic'),
    fc.constantFrom('http://receiver/alerts/generic', 'http://[::1/alerts/generic', '//x:99999/alerts/generic', '/alerts/%00', '/alerts/%zz', '/alerts/../healthz', '/alerts/generic?x=%'),
    fc.string({ maxLength: 40 }).map((s) => `/${s}`),
    fc.fullUnicodeString({ maxLength: 20 }),
    fc.constant(`/${'a'.repeat(20_000)}`),
  );
  const version = fc.constantFrom('HTTP/1.1', 'HTTP/1.1', 'HTTP/1.1', 'HTTP/1.0', 'HTTP/2.0', 'HTTP/9.9', 'http/1.1', 'HTTP/1.1x', 'HTTP/', '');
  const header = fc.oneof(
    fc.constantFrom(
      ['content-type', 'application/json'],
      ['content-type', 'text/plain'],
      ['content-type', 'application/json; charset=\u00ff'],
      ['authorization', `Bearer ${TOKENS.generic}`],
      ['authorization', `Bearer ${TOKENS.generic}`],
      ['authorization', 'Bearer '],
      ['authorization', `bearer ${TOKENS.generic} extra`],
      ['content-length', '-1'],
      ['content-length', '99999999999999999999'],
      ['content-length', 'abc'],
      ['content-length', '0'],
      ['transfer-encoding', 'chunked'],
      ['transfer-encoding', 'gzip, chunked'],
      ['transfer-encoding', 'identity'],
      ['expect', '100-continue'],
      ['connection', 'upgrade'],
      ['upgrade', 'websocket'],
      ['host', ''],
      ['x-long', 'x'.repeat(20_000)],
    ),
    fc.tuple(fc.string({ maxLength: 20 }), fc.string({ maxLength: 40 })),
    fc.tuple(fc.fullUnicodeString({ maxLength: 10 }), fc.fullUnicodeString({ maxLength: 20 })),
  );
  const body = fc.oneof(fc.constant(validBody), fc.constant(validBody), fc.constant(''), fc.string({ maxLength: 100 }), fc.constant('5\r\nhello\r\n0\r\n\r\n'), fc.constant('zz\r\nbad chunk\r\n'));
  // Each request fuzzes one or two of its parts and keeps the others those of a valid, authenticated
  // alert, so the fuzzing reaches the handler as well as the HTTP parser.
  const PARTS = ['method', 'target', 'version', 'eol', 'headers', 'length', 'many', 'fold', 'body'] as const;
  const request = fc
    .record({
      fuzz: fc.subarray([...PARTS], { maxLength: 2 }),
      method,
      target,
      version,
      eol: crlf,
      headers: fc.array(header, { minLength: 1, maxLength: 6 }),
      manyHeaders: fc.constant(300),
      fold: fc.constant(true),
      declareLength: fc.constantFrom('none', 'short', 'twice'),
      body,
    })
    .map((r) => {
      const fuzzed = (part: (typeof PARTS)[number]): boolean => r.fuzz.includes(part);
      const valid: Array<[string, string]> = [
        ['content-type', 'application/json'],
        ['authorization', `Bearer ${TOKENS.generic}`],
      ];
      return {
        method: fuzzed('method') ? r.method : 'POST',
        target: fuzzed('target') ? r.target : '/alerts/generic',
        version: fuzzed('version') ? r.version : 'HTTP/1.1',
        eol: fuzzed('eol') ? r.eol : '\r\n',
        headers: fuzzed('headers') ? [...valid, ...r.headers] : valid,
        manyHeaders: fuzzed('many') ? r.manyHeaders : 0,
        fold: fuzzed('fold') && r.fold,
        declareLength: fuzzed('length') ? r.declareLength : 'exact',
        body: fuzzed('body') ? r.body : validBody,
      };
    });
  const statuses = new Map<string, number>();
  await fc.assert(
    fc.asyncProperty(request, async (r) => {
      const lines = [`${r.method} ${r.target} ${r.version}`.trimEnd(), 'host: 127.0.0.1'];
      for (const [k, v] of r.headers) lines.push(`${k}: ${v}`);
      for (let i = 0; i < r.manyHeaders; i++) lines.push(`x-h${i}: ${i}`);
      if (r.fold) lines.push('x-folded: a', ' continued');
      const bodyBytes = Buffer.from(r.body, 'utf8');
      if (r.declareLength === 'exact') lines.push(`content-length: ${bodyBytes.length}`);
      if (r.declareLength === 'short') lines.push(`content-length: ${Math.max(0, bodyBytes.length - 3)}`);
      if (r.declareLength === 'twice') lines.push(`content-length: ${bodyBytes.length}`, `content-length: ${bodyBytes.length + 1}`);
      const head = Buffer.from(`${lines.join(r.eol)}${r.eol}${r.eol}`, 'utf8');
      const res = await rawExchange(port, Buffer.concat([head, bodyBytes]));
      const key = res.status === undefined ? 'no answer' : String(res.status);
      statuses.set(key, (statuses.get(key) ?? 0) + 1);
      const request = head.toString('latin1').slice(0, 200);
      expect({ status: (res.status ?? 0) < 500 ? 'below 500' : res.status, request }).toEqual({ status: 'below 500', request });
      // The server still answers a plain request on a fresh connection.
      const health = await fetch(`${t.receiver.url}/healthz`);
      expect(health.status).toBe(200);
    }),
    params(RAW_RUNS),
  );
  console.log(`raw request fuzzing: ${JSON.stringify(Object.fromEntries(statuses))}`);
  // Malformed requests were refused, and well-formed ones reached the handler and were dispatched.
  expect(statuses.get('400') ?? 0).toBeGreaterThan(RAW_RUNS / 20);
  expect(statuses.get('200') ?? 0).toBeGreaterThan(RAW_RUNS / 20);
  expect(unhandled).toEqual([]);
});

test(`client script: ${RAW_RUNS} hostile argument lists end with exit 0/1/2 and a message, never a crash`, async () => {
  process.env.TEMPORAL_TASK_QUEUE = t.taskQueue;
  // Signed in (erin's credential, the real codec server): the arguments reach Temporal, not only the credential check.
  const codec: TestCodecServer = await startTestCodecServer();
  process.env.CODEC_SERVER_URL = codec.url;
  process.env.REMEDIATE_CREDENTIALS = credentialFile('erin');
  const log = jest.spyOn(console, 'log').mockImplementation(() => undefined);
  const err = jest.spyOn(console, 'error').mockImplementation(() => undefined);
  const word = fc.oneof(
    fc.constantFrom('list', 'show', 'start', 'rollback', 'approve', 'reject', 'close', 'abort', 'runbooks', 'help', 'completion', 'bash', 'cacheFailure', 'rollback'),
    fc.constantFrom('--target', '--as', '--tag', '--services', '--param', '--severity', '--dry-run', '--json', '--all', '--comment', '--note', '--reason', '--version', '-h', '--frob', '-x', '--'),
    fc.string({ maxLength: 30 }),
    fc.constantFrom("x' OR 1=1 --", '../../etc/passwd', '\u0000', 'incident-$(rm -rf /)', 'a=b', '=', '9', '-1', 'mainframe'),
  );
  const ended = { code: 0, error: 0 };
  const before = new Set<string>();
  for await (const wf of t.client.workflow.list({ query: `TaskQueue = "${t.taskQueue}"` })) before.add(wf.workflowId);
  try {
    await fc.assert(
      fc.asyncProperty(fc.array(word, { maxLength: 7 }), async (argv) => {
        // Keep the parser honest: no argument list here may name the configured target.
        fc.pre(!argv.includes('alfred'));
        try {
          const code = await run(argv);
          expect([0, 1, 2]).toContain(code);
          ended.code += 1;
        } catch (e) {
          expect(e instanceof UsageError || e instanceof Failure).toBe(true);
          expect((e as Error).message.length).toBeGreaterThan(5);
          ended.error += 1;
        }
      }),
      params(RAW_RUNS),
    );
  } finally {
    log.mockRestore();
    err.mockRestore();
    delete process.env.TEMPORAL_TASK_QUEUE;
    delete process.env.CODEC_SERVER_URL;
    delete process.env.REMEDIATE_CREDENTIALS;
    await codec.close();
  }
  // Both ways out were taken: commands that ran to an exit code, and refusals with a message.
  expect(ended.code).toBeGreaterThan(0);
  expect(ended.error).toBeGreaterThan(0);
  const after: string[] = [];
  for await (const wf of t.client.workflow.list({ query: `TaskQueue = "${t.taskQueue}"` })) if (!before.has(wf.workflowId)) after.push(wf.workflowId);
  expect(after).toEqual([]);
  expect(unhandled).toEqual([]);
});
