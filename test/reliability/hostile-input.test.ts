/**
 * Hostile input, by property-based fuzzing (fast-check): every receiver endpoint, authenticated so
 * the payload reaches the parsers, answers only 2xx-acknowledged or 4xx with a message — never a
 * 5xx, never a started workflow, never an unhandled rejection. The client script's argument parser
 * likewise only ever ends with exit code 0/1/2 and a clear message.
 */
import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import { GRAFANA_SECRET, PD_SECRETS, startTestReceiver, type TestReceiver } from '../receiver/helpers';
import { Failure, run, UsageError } from '../../scripts/remediate';
import { credentialFile, startTestCodecServer, type TestCodecServer } from '../helpers/codec';

jest.setTimeout(300_000);

const RUNS = Number(process.env.FUZZ_RUNS ?? 1000);
let t: TestReceiver;
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => {
  unhandled.push(reason);
};

beforeAll(async () => {
  process.on('unhandledRejection', onUnhandled);
  t = await startTestReceiver();
});

afterAll(async () => {
  process.off('unhandledRejection', onUnhandled);
  await t.stop();
});

/** JSON shaped like an alert, with hostile values in every field. */
const hostileScalar = fc.oneof(
  fc.string(),
  fc.fullUnicodeString({ maxLength: 40 }),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.constant('__proto__'),
  fc.constant('x'.repeat(5000)),
);
const hostileLabels = fc.dictionary(fc.oneof(fc.string(), fc.constant('__proto__'), fc.constant('alertname')), hostileScalar, {
  maxKeys: 6,
});
const alertLike = fc.record(
  {
    status: fc.oneof(fc.constantFrom('firing', 'resolved'), hostileScalar),
    labels: fc.oneof(hostileLabels, hostileScalar),
    annotations: fc.oneof(hostileLabels, hostileScalar),
    startsAt: hostileScalar,
    fingerprint: hostileScalar,
    alertname: hostileScalar,
    target: hostileScalar,
    severity: hostileScalar,
  },
  { requiredKeys: [] },
);
/** Well-formed alerts with hostile names and targets: they validate, and must still start nothing. */
const wellFormed = fc.record({
  alertname: fc.string({ minLength: 1, maxLength: 40 }),
  status: fc.constantFrom('firing', 'resolved'),
  target: fc.oneof(fc.string({ minLength: 1, maxLength: 20 }), fc.constantFrom('alfred', '../alfred', 'ALFRED')),
});
const wellFormedAm = fc.array(wellFormed, { minLength: 1, maxLength: 3 }).map((alerts) => ({
  version: '4',
  status: 'firing',
  receiver: 'remediation',
  groupKey: '{}:{}',
  groupLabels: {},
  commonLabels: {},
  commonAnnotations: {},
  externalURL: 'http://am',
  alerts: alerts.map((a) => ({ status: a.status, labels: { alertname: a.alertname, target: a.target }, annotations: {}, startsAt: new Date().toISOString(), fingerprint: 'f' })),
}));
const bodies = fc.oneof(
  wellFormed.map((v) => JSON.stringify(v)),
  wellFormedAm.map((v) => JSON.stringify(v)),
  fc.jsonValue().map((v) => JSON.stringify(v)),
  fc.record({ version: hostileScalar, status: hostileScalar, alerts: fc.oneof(fc.array(alertLike, { maxLength: 5 }), hostileScalar) }, { requiredKeys: [] }).map((v) => JSON.stringify(v)),
  alertLike.map((v) => JSON.stringify(v)),
  fc.record({ event: fc.oneof(fc.record({ event_type: hostileScalar, data: fc.oneof(alertLike, hostileScalar) }, { requiredKeys: [] }), hostileScalar) }, { requiredKeys: [] }).map((v) => JSON.stringify(v)),
  fc.string({ maxLength: 300 }),
  fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b).toString('latin1')),
);

function signFor(source: string, raw: string): Record<string, string> {
  if (source === 'pagerduty') return { 'x-pagerduty-signature': `v1=${createHmac('sha256', PD_SECRETS[0] as string).update(raw).digest('hex')}` };
  if (source === 'grafana') {
    const ts = String(Math.floor(Date.now() / 1000));
    return {
      'x-grafana-alerting-timestamp': ts,
      'x-grafana-alerting-signature': createHmac('sha256', GRAFANA_SECRET).update(`${ts}:${raw}`).digest('hex'),
    };
  }
  return {};
}

test.each(['alertmanager', 'generic', 'pagerduty', 'grafana'])(
  `%s: ${RUNS} hostile payloads get 4xx or an acknowledgement, never a 5xx or a started workflow`,
  async (source) => {
    const seen = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(bodies, fc.boolean(), async (raw, signed) => {
        const { status, json } = await t.post(source, undefined, { raw, headers: signed ? signFor(source, raw) : {} });
        seen.set(status, (seen.get(status) ?? 0) + 1);
        expect(status).toBeLessThan(500);
        if (status >= 400) expect(typeof (json as { error?: unknown }).error === 'string' || JSON.stringify(json).length > 2).toBe(true);
        for (const r of json.results ?? []) expect(['started', 'deduplicated']).not.toContain((r as { action: string }).action);
      }),
      { numRuns: RUNS },
    );
    expect([...seen.keys()].every((s) => s < 500)).toBe(true);
    // The payloads reach the parsers (not only the auth check): some are refused for their content.
    expect((seen.get(400) ?? 0) + (seen.get(422) ?? 0)).toBeGreaterThan(0);
    if (source === 'alertmanager' || source === 'generic') expect(seen.get(202) ?? seen.get(200) ?? 0).toBeGreaterThan(0);
    if (process.env.FUZZ_VERBOSE) console.log(source, Object.fromEntries(seen));
    let started = 0;
    for await (const _ of t.client.workflow.list({ query: `TaskQueue = "${t.taskQueue}"` })) started += 1;
    expect(started).toBe(0);
    expect(unhandled).toEqual([]);
  },
);

test(`client script: ${RUNS} hostile argument lists end with exit 0/1/2 and a message, never a crash`, async () => {
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
  try {
    await fc.assert(
      fc.asyncProperty(fc.array(word, { maxLength: 7 }), async (argv) => {
        // Keep the parser honest: no argument list here may name the configured target.
        fc.pre(!argv.includes('alfred'));
        try {
          const code = await run(argv);
          expect([0, 1, 2]).toContain(code);
        } catch (e) {
          expect(e instanceof UsageError || e instanceof Failure).toBe(true);
          expect((e as Error).message.length).toBeGreaterThan(5);
        }
      }),
      { numRuns: RUNS },
    );
  } finally {
    log.mockRestore();
    err.mockRestore();
    delete process.env.TEMPORAL_TASK_QUEUE;
    delete process.env.CODEC_SERVER_URL;
    delete process.env.REMEDIATE_CREDENTIALS;
    await codec.close();
  }
  let started = 0;
  for await (const _ of t.client.workflow.list({ query: `TaskQueue = "${t.taskQueue}"` })) started += 1;
  expect(started).toBe(0);
  expect(unhandled).toEqual([]);
});
