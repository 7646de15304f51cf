/** Routing rules: validation with file and path in errors, matching, target resolution, severity. */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/config';
import { checkParams } from '../../src/lib/runbook-params';
import { loadReceiverConfig, type SourceName } from '../../src/receiver/config';
import { isIgnored, isInvalid, parsePayload, type IncomingAlert } from '../../src/receiver/payloads';
import { MatcherSyntaxError, parseMatchers } from '../../src/receiver/matchers';
import { compileRoutes, loadRoutes, parseSeverity, routeAlert, type RouteDecision } from '../../src/receiver/routes';
import { RUNBOOKS } from '../../src/workflows/catalog';
import { alertmanagerPayload, grafanaPayload, pagerDutyPayload, REPO, STACK_DIR } from './helpers';
import { CODEC_FIXTURE } from '../helpers/codec';

const targets = ['alfred', 'beta'];

function alert(
  name: string,
  labels: Record<string, string> = {},
  source: IncomingAlert['source'] = 'alertmanager',
): IncomingAlert {
  return { source, name, status: 'firing', labels: { alertname: name, ...labels }, annotations: {} };
}

describe('the shipped routes', () => {
  test('config/routes.yaml compiles against config/engine.yaml and includes every catalog alert', () => {
    const engine = loadConfig(path.join(REPO, 'config/engine.yaml'), { ...process.env, STACK_DIR });
    const table = loadRoutes(path.join(REPO, 'config/routes.yaml'), engine);
    for (const [runbook, meta] of Object.entries(RUNBOOKS)) {
      for (const name of meta.alerts) {
        expect(routeAlert(table, alert(name, { target: 'alfred' }))).toMatchObject({
          kind: 'routed',
          runbook,
          target: 'alfred',
        });
      }
    }
    expect(routeAlert(table, alert('AlfredDbPoolExhausted', { target: 'alfred' }))).toMatchObject({
      rule: 'db-pool',
      severity: 2,
    });
  });

  test('config/receiver.yaml parses, with secrets as references only', () => {
    const cfg = loadReceiverConfig(path.join(REPO, 'config/receiver.yaml'), { STACK_DIR: '/x' });
    expect(cfg.listen).toEqual({ host: '127.0.0.1', port: 8095 });
    expect(cfg.bodyLimitBytes).toBe(262144);
    expect(cfg.stateDir).toBe('/x/receiver');
    expect(cfg.sources.alertmanager?.bearerTokens).toEqual([{ file: '/x/secrets/receiver-alertmanager-token' }]);
    expect(cfg).toMatchObject({
      bodyTimeoutMs: 10_000,
      headersTimeoutMs: 10_000,
      requestTimeoutMs: 30_000,
      maxConnections: 256,
      readyTimeoutMs: 2_000,
      lanes: { maxIncidents: 1024, maxQueuedPerIncident: 256 },
      unroutedFile: { maxBytes: 16 * 1024 * 1024, keep: 3 },
    });
  });
});

describe("Alertmanager's matcher syntax", () => {
  const ops = (text: string) => parseMatchers(text).map((m) => [m.label, m.op, m.value]);

  test('the four operators, quoted or bare values, one or several per string, braces or not', () => {
    expect(ops('alertname="X"')).toEqual([['alertname', '=', 'X']]);
    expect(ops('severity=~"crit|warn"')).toEqual([['severity', '=~', 'crit|warn']]);
    expect(ops(' env != dev ')).toEqual([['env', '!=', 'dev']]);
    expect(ops('job!~"test.*"')).toEqual([['job', '!~', 'test.*']]);
    expect(ops('{env="prod", job!~"test.*",team=sre}')).toEqual([
      ['env', '=', 'prod'],
      ['job', '!~', 'test.*'],
      ['team', '=', 'sre'],
    ]);
    expect(ops('summary="a, \\"quoted\\" \\\\ value\\n"')).toEqual([['summary', '=', 'a, "quoted" \\ value\n']]);
    expect(ops('"odd.label"="x"')).toEqual([['odd.label', '=', 'x']]);
  });

  test('regular expressions are anchored; a missing label is the empty string', () => {
    const [re] = parseMatchers('job=~"api|web"');
    expect([re!.test('api'), re!.test('web'), re!.test('api-2'), re!.test('')]).toEqual([true, true, false, false]);
    const [notTest] = parseMatchers('job!~"test.*"');
    expect([notTest!.test('test-1'), notTest!.test('ci-test'), notTest!.test('')]).toEqual([false, true, true]);
    const [ci] = parseMatchers('details=~"(?i).*redis.*"');
    expect(ci!.test('REDIS down')).toBe(true);
  });

  test.each([
    ['env', 'expected one of =, !=, =~, !~ after "env"'],
    ['=x', 'expected a label name'],
    ['env="dev', 'unterminated quoted string'],
    ['env="dev" job="x"', 'expected ","'],
    ['{env="dev"', '"{" without a closing "}"'],
    ['job=~"("', 'job=~: Invalid regular expression'],
    ['env=de"v', 'a value with a quote must be quoted'],
  ])('%s is refused: %s', (text, message) => {
    expect(() => parseMatchers(text)).toThrow(MatcherSyntaxError);
    expect(() => parseMatchers(text)).toThrow(message);
  });

  const table = compileRoutes(
    {
      catalogDefaults: false,
      rules: [
        {
          name: 'prod-db',
          matchers: ['alertname=~"Alfred(DatabaseUnhealthy|DbPoolExhausted)"', 'env!="dev"', 'job!~"test.*"'],
          runbook: 'databaseUnreachable',
          target: 'alfred',
        },
        { name: 'mixed', match: { alertname: 'Mixed' }, matchers: ['severity=~"crit|warn"'], runbook: 'cacheFailure', target: 'alfred' },
      ],
    },
    { origin: 'inline', targets },
  );

  test('in a route, beside match and matchRegex: every condition must hold', () => {
    expect(routeAlert(table, alert('AlfredDbPoolExhausted', { env: 'prod', job: 'api' }))).toMatchObject({
      kind: 'routed',
      rule: 'prod-db',
    });
    expect(routeAlert(table, alert('AlfredDatabaseUnhealthy'))).toMatchObject({ kind: 'routed', rule: 'prod-db' });
    expect(routeAlert(table, alert('AlfredDbPoolExhausted', { env: 'dev' })).kind).toBe('unrouted');
    expect(routeAlert(table, alert('AlfredDbPoolExhausted', { job: 'test-load' })).kind).toBe('unrouted');
    expect(routeAlert(table, alert('Mixed', { severity: 'warn' }))).toMatchObject({ rule: 'mixed' });
    expect(routeAlert(table, alert('Mixed', { severity: 'info' })).kind).toBe('unrouted');
    expect(routeAlert(table, alert('Other', { severity: 'crit' })).kind).toBe('unrouted');
  });
});

describe('matching', () => {
  const table = compileRoutes(
    {
      rules: [
        {
          name: 'regex',
          matchRegex: { alertname: 'Redis.*', env: 'prod|staging' },
          runbook: 'cacheFailure',
          target: 'beta',
          severity: 1,
        },
        {
          name: 'pd-only',
          sources: ['pagerduty'],
          match: { service: 'db' },
          runbook: 'databaseUnreachable',
          target: { fromLabel: 'cluster', default: 'alfred' },
        },
        {
          name: 'by-service',
          match: { alertname: 'Down' },
          runbook: 'databaseUnreachable',
          target: { fromLabel: 'service' },
        },
      ],
    },
    { origin: 'inline', targets },
  );

  test('regex matchers are anchored and all matchers must hold', () => {
    expect(routeAlert(table, alert('RedisDown', { env: 'prod' }))).toMatchObject({
      kind: 'routed',
      rule: 'regex',
      target: 'beta',
      severity: 1,
    });
    expect(routeAlert(table, alert('RedisDown', { env: 'production' })).kind).toBe('unrouted');
    expect(routeAlert(table, alert('MyRedisDown', { env: 'prod' })).kind).toBe('unrouted');
  });

  test('source filters apply; a label default is used only when the label is absent', () => {
    expect(routeAlert(table, alert('x', { service: 'db' }))).toMatchObject({ kind: 'unrouted' });
    expect(routeAlert(table, alert('x', { service: 'db' }, 'pagerduty'))).toMatchObject({
      kind: 'routed',
      target: 'alfred',
    });
    expect(routeAlert(table, alert('x', { service: 'db', cluster: 'beta' }, 'pagerduty'))).toMatchObject({
      target: 'beta',
    });
    expect(routeAlert(table, alert('x', { service: 'db', cluster: 'gamma' }, 'pagerduty'))).toMatchObject({
      kind: 'refused',
      reason: 'unknown target "gamma"; configured: alfred, beta',
    });
  });

  test('target from another label, refused when unknown or missing', () => {
    expect(routeAlert(table, alert('Down', { service: 'alfred' }))).toMatchObject({ kind: 'routed', target: 'alfred' });
    expect(routeAlert(table, alert('Down', { service: 'payments' }))).toMatchObject({
      kind: 'refused',
      runbook: 'databaseUnreachable',
    });
    expect(routeAlert(table, alert('Down'))).toMatchObject({
      kind: 'refused',
      reason: expect.stringContaining('no "service" label'),
    });
  });

  test('catalog rules come after file rules, target from the "target" label', () => {
    expect(routeAlert(table, alert('AlfredRedisDown', { target: 'alfred' }))).toMatchObject({
      rule: 'catalog:cacheFailure',
      runbook: 'cacheFailure',
    });
    const noCatalog = compileRoutes({ catalogDefaults: false }, { origin: 'inline', targets });
    expect(routeAlert(noCatalog, alert('AlfredRedisDown', { target: 'alfred' })).kind).toBe('unrouted');
  });

  test('rules match the details pseudo-label, which hides a real label of that name', () => {
    const byDetails = compileRoutes(
      {
        catalogDefaults: false,
        rules: [{ matchRegex: { details: '.*connectivity lost.*' }, runbook: 'databaseUnreachable', target: 'alfred' }],
      },
      { origin: 'inline', targets },
    );
    const described = { ...alert('SYSTEM_ERROR'), details: 'summary: db connectivity lost' };
    expect(routeAlert(byDetails, described)).toMatchObject({ kind: 'routed', runbook: 'databaseUnreachable' });
    expect(routeAlert(byDetails, alert('SYSTEM_ERROR', { details: 'connectivity lost' })).kind).toBe('unrouted');
  });

  test('a leading (?i) makes a matcher ignore case; without it case matters', () => {
    const table2 = compileRoutes(
      {
        catalogDefaults: false,
        rules: [
          { name: 'ci', matchRegex: { details: '(?i).*database.*' }, runbook: 'databaseUnreachable', target: 'alfred' },
          { name: 'cs', matchRegex: { details: '.*redis.*' }, runbook: 'cacheFailure', target: 'alfred' },
        ],
      },
      { origin: 'inline', targets },
    );
    const withDetails = (details: string) => ({ ...alert('SYSTEM_ERROR'), details });
    expect(routeAlert(table2, withDetails('DATABASE gone'))).toMatchObject({ rule: 'ci' });
    expect(routeAlert(table2, withDetails('redis gone'))).toMatchObject({ rule: 'cs' });
    expect(routeAlert(table2, withDetails('Redis gone')).kind).toBe('unrouted');
  });

  test('severity: rule, then the alert label, then the runbook default; never below the seed\'s', () => {
    expect(routeAlert(table, alert('AlfredRedisDown', { target: 'alfred', severity: 'critical' }))).toMatchObject({
      severity: 1,
    });
    // INC-05 is SEV-2 in seed 002: a label saying sev3 or "low" does not make it less severe.
    expect(RUNBOOKS.cacheFailure.severity).toBe(2);
    expect(routeAlert(table, alert('AlfredRedisDown', { target: 'alfred', severity: 'sev3' }))).toMatchObject({
      severity: 2,
    });
    expect(routeAlert(table, alert('AlfredRedisDown', { target: 'alfred', severity: 'low' }))).toMatchObject({
      severity: 2,
    });
    expect(routeAlert(table, alert('AlfredRedisDown', { target: 'alfred', severity: 'whatever' }))).toMatchObject({
      severity: RUNBOOKS.cacheFailure.severity,
    });
    expect([parseSeverity('P1'), parseSeverity('SEV-4'), parseSeverity('warning'), parseSeverity('5')]).toEqual([
      1,
      4,
      3,
      undefined,
    ]);
  });
});

describe('invalid routes are refused at start, naming the file and the path', () => {
  function errorOf(doc: unknown): string {
    try {
      compileRoutes(doc, { origin: '/etc/routes.yaml', targets });
    } catch (err) {
      return (err as Error).message;
    }
    throw new Error('expected compileRoutes to throw');
  }

  test.each([
    [
      { rules: [{ match: { alertname: 'X' }, runbook: 'noSuchRunbook' }] },
      'rules[0].runbook: unknown runbook "noSuchRunbook"',
    ],
    [
      { rules: [{ match: { alertname: 'X' }, runbook: 'cacheFailure', target: 'gamma' }] },
      'rules[0].target: unknown target "gamma"',
    ],
    [
      { rules: [{ matchRegex: { alertname: '(' }, runbook: 'cacheFailure' }] },
      'rules[0].matchRegex.alertname: Invalid regular expression',
    ],
    [{ rules: [{ runbook: 'cacheFailure' }] }, 'rules[0]: a rule needs at least one matcher'],
    [
      { rules: [{ matchers: ['env!="dev"', 'job!~"test.*"'], runbook: 'cacheFailure', target: 'alfred' }] },
      'rules[0]: a rule needs at least one positive matcher (=, =~, match or matchRegex)',
    ],
    [
      { rules: [{ matchers: ['alertname="X"', 'env'], runbook: 'cacheFailure', target: 'alfred' }] },
      'rules[0].matchers[1]: "env": expected one of =, !=, =~, !~ after "env"',
    ],
    [
      { rules: [{ match: { alertname: 'X' }, runbook: 'cacheFailure', severity: 7 }] },
      'rules[0].severity: Number must be less than or equal to 4',
    ],
    [
      { rules: [{ match: { alertname: 'X' }, runbook: 'cacheFailure', sources: ['opsgenie'] }] },
      'rules[0].sources[0]: Invalid enum value',
    ],
    [{ defaultTarget: { fromLabel: 'target', default: 'gamma' } }, 'defaultTarget.default: unknown target "gamma"'],
    [{ rulez: [] }, "(root): Unrecognized key(s) in object: 'rulez'"],
  ])('%j', (doc, expected) => {
    const message = errorOf(doc);
    expect(message).toContain('routes file /etc/routes.yaml is invalid');
    expect(message).toContain(expected);
  });

  test('the receiver process exits 1 with the file and path when its routes file is invalid', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'routes-'));
    writeFileSync(path.join(dir, 'tok'), 'x');
    // The shipped engine config with the TEST-ONLY codec secrets (JSON is YAML to the loader).
    const engine = loadConfig(path.join(REPO, 'config/engine.yaml'), { ...process.env, STACK_DIR });
    /** A receiver settings file, its routes and an engine settings file, each case its own. */
    const setup = (name: string, routes: string, codecSecrets = CODEC_FIXTURE) => {
      const routesFile = path.join(dir, `${name}-routes.yaml`);
      writeFileSync(routesFile, routes);
      const receiverCfg = path.join(dir, `${name}-receiver.yaml`);
      writeFileSync(
        receiverCfg,
        `routesFile: ${routesFile}\nstateDir: ${dir}\nsources:\n  generic: { bearerTokens: [{ file: ${dir}/tok }] }\n`,
      );
      const engineCfg = path.join(dir, `${name}-engine.json`);
      writeFileSync(engineCfg, JSON.stringify({ ...engine, codec: { ...engine.codec, secretsFile: codecSecrets } }));
      return { routesFile, args: ['--engine-config', engineCfg, '--config', receiverCfg, '--check'] };
    };
    // The processes run side by side: each spends its time loading modules.
    const run = (args: string[]) =>
      new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
        execFile(
          process.execPath,
          ['--import', 'tsx', 'src/receiver/main.ts', ...args],
          { cwd: REPO, encoding: 'utf8', env: { ...process.env, STACK_DIR } },
          (err, stdout, stderr) => resolve({ status: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr }),
        );
      });
    const badSetup = setup('bad', 'rules:\n  - match: { alertname: X }\n    runbook: cacheFailure\n    target: nowhere\n');
    const goodSetup = setup('good', 'rules: []\n');
    // What it starts and signals is encrypted: without the codec's secrets file it does not start.
    const missing = path.join(dir, 'no-such-codec.yaml');
    const noSecretsSetup = setup('no-secrets', 'rules: []\n', missing);
    const [bad, good, noSecrets, help] = await Promise.all([
      run(badSetup.args),
      run(goodSetup.args),
      run(noSecretsSetup.args),
      run(['--help']),
    ]);

    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain(`routes file ${badSetup.routesFile} is invalid`);
    expect(bad.stderr).toContain('rules[0].target: unknown target "nowhere"');

    expect(good.stderr).toBe('');
    expect(good.status).toBe(0);
    expect(good.stdout).toContain('receiver config OK');
    expect(good.stdout).toContain(`codec secrets ${CODEC_FIXTURE} (encryption key test-k1)`);

    expect(noSecrets.status).toBe(1);
    expect(noSecrets.stderr).toContain(`codec secrets file ${missing} (codec.secretsFile) does not exist`);
    expect(noSecrets.stderr).toContain(`npx tsx scripts/codec-secrets.ts init --file ${missing}`);

    expect(help.status).toBe(0);
    expect(help.stdout).toContain('POST /alerts/{alertmanager,pagerduty,grafana,generic}');
    expect(help.stdout).toContain('GET /readyz');
    rmSync(dir, { recursive: true, force: true });
  });
});

describe("Alfred's own alerts (seed 002) through the shipped routes", () => {
  const engine = loadConfig(path.join(REPO, 'config/engine.yaml'), { ...process.env, STACK_DIR });
  const shipped = loadRoutes(path.join(REPO, 'config/routes.yaml'), engine);

  /** One alert as the receiver parses it from `source`'s webhook body. */
  function received(source: SourceName, body: unknown): IncomingAlert {
    const r = parsePayload(source, body);
    if (!r.ok) throw new Error(r.issues.join('; '));
    const [item] = r.items;
    if (!item || isIgnored(item) || isInvalid(item)) throw new Error('expected one alert');
    return item;
  }
  /** PagerDuty v3 incident.triggered; Alfred's service is neither alfred-cache nor alfred-database. */
  const pagerduty = (title: string) => received('pagerduty', pagerDutyPayload('incident.triggered', title, 'alfred'));
  /** The SLA monitor posting our generic format. */
  const slaMonitor = (
    alertname: string,
    annotations: Record<string, string> = {},
    extra: Record<string, unknown> = {},
  ) => received('generic', { alertname, annotations, ...extra });
  const alertmanager = (alertname: string, labels: Record<string, string>) =>
    received('alertmanager', alertmanagerPayload([{ alertname, labels }]));

  const routed = (rule: string, runbook: string, severity: number): RouteDecision =>
    ({ kind: 'routed', rule, runbook, target: 'alfred', severity }) as RouteDecision;

  test.each<[string, () => IncomingAlert, RouteDecision]>([
    [
      'INC-01: PagerDuty SYSTEM_ERROR with database connectivity in its title → databaseUnreachable, SEV-1',
      () => pagerduty('SYSTEM_ERROR: database connectivity lost'),
      routed('alfred-system-error-database', 'databaseUnreachable', 1),
    ],
    [
      'INC-01: SYSTEM_ERROR with Database Connectivity (any case) in its annotations → databaseUnreachable, SEV-1',
      () => slaMonitor('SYSTEM_ERROR', { details: 'Database Connectivity check failed: could not connect to server' }),
      routed('alfred-system-error-database', 'databaseUnreachable', 1),
    ],
    [
      'INC-02: SLA monitor SYSTEM_ERROR naming openai → providerDown, SEV-2',
      () => slaMonitor('SYSTEM_ERROR', { provider: 'openai', error_rate_pct: '12.5' }),
      routed('alfred-system-error-provider', 'providerDown', 2),
    ],
    [
      'INC-02: PagerDuty SYSTEM_ERROR naming Anthropic in its title → providerDown, SEV-2',
      () => pagerduty('SYSTEM_ERROR: Anthropic error rate 14% over 5 min'),
      routed('alfred-system-error-provider', 'providerDown', 2),
    ],
    [
      'INC-02: Alertmanager SYSTEM_ERROR with a provider label → providerDown, SEV-2',
      () => alertmanager('SYSTEM_ERROR', { provider: 'google' }),
      routed('alfred-system-error-provider-label', 'providerDown', 2),
    ],
    [
      'INC-05: SLA monitor SYSTEM_ERROR with cache_hit_rate_pct: 0.0 → cacheFailure, SEV-2',
      () => slaMonitor('SYSTEM_ERROR', { cache_hit_rate_pct: '0.0' }),
      routed('alfred-system-error-cache', 'cacheFailure', 2),
    ],
    [
      'INC-05: PagerDuty SYSTEM_ERROR with "cache_hit_rate_pct": 0 in its title → cacheFailure, SEV-2',
      () => pagerduty('SYSTEM_ERROR {"cache_hit_rate_pct": 0, "requests": 1200}'),
      routed('alfred-system-error-cache', 'cacheFailure', 2),
    ],
    [
      'INC-04: SLA monitor HIGH_LATENCY with a P95 value → latencySpike, SEV-2',
      () => slaMonitor('HIGH_LATENCY', { p95_latency_ms: '212' }),
      routed('alfred-high-latency', 'latencySpike', 2),
    ],
    [
      'INC-04: PagerDuty HIGH_LATENCY title → latencySpike, SEV-2',
      () => pagerduty('HIGH_LATENCY: P95 212 ms above 150 ms'),
      routed('alfred-high-latency', 'latencySpike', 2),
    ],
    [
      'INC-04: Grafana HIGH_LATENCY → latencySpike, SEV-2',
      () => received('grafana', grafanaPayload('HIGH_LATENCY', {})),
      routed('alfred-high-latency', 'latencySpike', 2),
    ],
    [
      'INC-07: PagerDuty QUOTA_EXCEEDED from multiple users → quotaExhaustion, SEV-2',
      () => pagerduty('QUOTA_EXCEEDED from 23 users'),
      routed('alfred-quota-exceeded', 'quotaExhaustion', 2),
    ],
  ])('%s', (_name, make, expected) => {
    expect(routeAlert(shipped, make())).toEqual(expected);
  });

  test.each<[string, () => IncomingAlert]>([
    [
      'a SYSTEM_ERROR whose details match no rule',
      () => slaMonitor('SYSTEM_ERROR', { details: 'disk usage 97% on worker' }),
    ],
    ['a SYSTEM_ERROR without any details', () => slaMonitor('SYSTEM_ERROR')],
    ['a PagerDuty SYSTEM_ERROR whose title says nothing more', () => pagerduty('SYSTEM_ERROR')],
    [
      'a SYSTEM_ERROR naming a provider the target does not have',
      () => slaMonitor('SYSTEM_ERROR', { provider: 'mistral', error_rate_pct: '40' }),
    ],
    [
      'a PagerDuty SYSTEM_ERROR naming a provider the target does not have',
      () => pagerduty('SYSTEM_ERROR: mistral 502s'),
    ],
    [
      'a SYSTEM_ERROR with a provider label the target does not have',
      () => alertmanager('SYSTEM_ERROR', { provider: 'mistral' }),
    ],
    [
      'a SYSTEM_ERROR whose cache hit rate is low but not zero',
      () => slaMonitor('SYSTEM_ERROR', { cache_hit_rate_pct: '0.05' }),
    ],
    ['a provider name inside a longer word', () => pagerduty('SYSTEM_ERROR: googleapis.com DNS lookup failed')],
    [
      'a name with the type inside a longer word',
      () => slaMonitor('NOT_A_SYSTEM_ERROR', { details: 'database connectivity' }),
    ],
    ['a name extending the type', () => slaMonitor('HIGH_LATENCY_BUDGET', { p95_latency_ms: '212' })],
  ])('stays unrouted, never guessed: %s', (_name, make) => {
    const a = make();
    expect(routeAlert(shipped, a)).toEqual({ kind: 'unrouted', reason: `no route matches alert "${a.name}"` });
  });

  test("the seed's severity holds whatever severity label the alert carries", () => {
    const dbLabelledWarning = slaMonitor('SYSTEM_ERROR', { details: 'database connectivity' }, { severity: 'warning' });
    expect(routeAlert(shipped, dbLabelledWarning)).toMatchObject({ runbook: 'databaseUnreachable', severity: 1 });
    const latencyLabelledLow = slaMonitor('HIGH_LATENCY', {}, { severity: 'low' });
    expect(routeAlert(shipped, latencyLabelledLow)).toMatchObject({ runbook: 'latencySpike', severity: 2 });
  });

  test('a target label naming an unconfigured target is refused, never sent to alfred', () => {
    const elsewhere = slaMonitor('SYSTEM_ERROR', { cache_hit_rate_pct: '0.0' }, { target: 'payments' });
    expect(routeAlert(shipped, elsewhere)).toEqual({
      kind: 'refused',
      rule: 'alfred-system-error-cache',
      runbook: 'cacheFailure',
      reason: `unknown target "payments"; configured: ${Object.keys(engine.targets).join(', ')}`,
    });
  });

  test('every provider configured for alfred in config/engine.yaml is recognised by name', () => {
    const providers = Object.keys(engine.targets.alfred?.providers ?? {});
    expect(providers.length).toBeGreaterThan(0);
    for (const provider of providers) {
      expect(routeAlert(shipped, pagerduty(`SYSTEM_ERROR: ${provider} error rate 9%`))).toMatchObject({
        runbook: 'providerDown',
      });
      expect(routeAlert(shipped, alertmanager('SYSTEM_ERROR', { provider }))).toMatchObject({
        runbook: 'providerDown',
      });
    }
  });

  test('providerDown takes no provider parameter, so its routes pass none (one would be refused)', () => {
    expect(() => checkParams('providerDown', { provider: 'openai' })).toThrow(
      "Unrecognized key(s) in object: 'provider'",
    );
    expect(routeAlert(shipped, pagerduty('SYSTEM_ERROR: openai error rate 12%'))).not.toHaveProperty('params');
  });

  test('resolutions take the same route as the alert they resolve', () => {
    const resolved = received(
      'pagerduty',
      pagerDutyPayload('incident.resolved', 'SYSTEM_ERROR: database connectivity lost', 'alfred'),
    );
    expect(resolved.status).toBe('resolved');
    expect(routeAlert(shipped, resolved)).toMatchObject({ runbook: 'databaseUnreachable', target: 'alfred' });
  });
});
