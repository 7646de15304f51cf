/** Routing rules: validation with file and path in errors, matching, target resolution, severity. */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/config';
import { loadReceiverConfig } from '../../src/receiver/config';
import type { IncomingAlert } from '../../src/receiver/payloads';
import { compileRoutes, loadRoutes, parseSeverity, routeAlert } from '../../src/receiver/routes';
import { RUNBOOKS } from '../../src/workflows/catalog';
import { REPO, STACK_DIR } from './helpers';

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

  test('severity: rule, then the alert label, then the runbook default', () => {
    expect(routeAlert(table, alert('AlfredRedisDown', { target: 'alfred', severity: 'critical' }))).toMatchObject({
      severity: 1,
    });
    expect(routeAlert(table, alert('AlfredRedisDown', { target: 'alfred', severity: 'sev3' }))).toMatchObject({
      severity: 3,
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

  test('the receiver process exits 1 with the file and path when its routes file is invalid', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'routes-'));
    const routes = path.join(dir, 'routes.yaml');
    writeFileSync(routes, 'rules:\n  - match: { alertname: X }\n    runbook: cacheFailure\n    target: nowhere\n');
    writeFileSync(path.join(dir, 'tok'), 'x');
    const receiverCfg = path.join(dir, 'receiver.yaml');
    writeFileSync(
      receiverCfg,
      `routesFile: ${routes}\nstateDir: ${dir}\nsources:\n  generic: { bearerTokens: [{ file: ${dir}/tok }] }\n`,
    );
    const run = (args: string[]) =>
      spawnSync(process.execPath, [require.resolve('tsx/cli'), 'src/receiver/main.ts', ...args], {
        cwd: REPO,
        encoding: 'utf8',
        env: { ...process.env, STACK_DIR },
      });
    const bad = run(['--config', receiverCfg, '--check']);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain(`routes file ${routes} is invalid`);
    expect(bad.stderr).toContain('rules[0].target: unknown target "nowhere"');

    writeFileSync(routes, 'rules: []\n');
    const good = run(['--config', receiverCfg, '--check']);
    expect(good.stderr).toBe('');
    expect(good.status).toBe(0);
    expect(good.stdout).toContain('receiver config OK');

    const help = run(['--help']);
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('POST /alerts/{alertmanager,pagerduty,grafana,generic}');
    rmSync(dir, { recursive: true, force: true });
  });
});
