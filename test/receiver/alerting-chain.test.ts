/**
 * The whole chain, for real: scripts/alerting.sh starts Prometheus and Alertmanager (own ports and
 * STACK_DIR), Prometheus evaluates a rule that is always true, Alertmanager sends it with its bearer
 * token to a receiver started here, and the receiver starts the cacheFailure incident.
 */
import { execFile, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { incidentWorkflowId, SA_TARGET } from '../../src/workflows/contracts';
import { eventually, REPO, startTestReceiver, TOKENS, type TestReceiver } from './helpers';
import { freePort } from '../helpers/drill';
import { decodedHistory } from '../helpers/codec';

// scripts/install.sh installs them (Debian prometheus, prometheus-alertmanager): without them the
// chain is not shown, and the test says so by failing rather than by skipping itself.
const missing = ['prometheus', 'prometheus-alertmanager', 'promtool'].filter(
  (b) => spawnSync('sh', ['-c', `command -v ${b}`]).status !== 0,
);

test('Prometheus and Alertmanager are installed (scripts/install.sh)', () => {
  expect(missing).toEqual([]);
});

describe('Prometheus → Alertmanager → receiver → workflow', () => {
  let t: TestReceiver;
  let env: NodeJS.ProcessEnv;
  let stack: string | undefined;

  // Asynchronous: the receiver runs in this process and must keep answering while the script runs.
  function alerting(cmd: 'up' | 'down' | 'status'): Promise<{ status: number; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      execFile(
        'bash',
        [path.join(REPO, 'scripts/alerting.sh'), cmd],
        { env, encoding: 'utf8', timeout: 90_000 },
        (err, stdout, stderr) => {
          resolve({ status: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
        },
      );
    });
  }

  beforeAll(async () => {
    t = await startTestReceiver();
    stack = mkdtempSync(path.join(tmpdir(), 'alerting-stack-'));
    mkdirSync(path.join(stack, 'secrets'), { recursive: true, mode: 0o700 });
    writeFileSync(path.join(stack, 'secrets/receiver-alertmanager-token'), TOKENS.alertmanager, { mode: 0o600 });
    const rules = path.join(stack, 'receiver-chain-test.yml');
    writeFileSync(
      rules,
      [
        'groups:',
        '  - name: receiver-chain-test',
        '    interval: 1s',
        '    rules:',
        '      - alert: CacheFailure',
        '        expr: vector(1)',
        '        for: 0s',
        `        labels: { target: ${t.target}, severity: high }`,
        '        annotations: { summary: "always firing, for the receiver chain test" }',
        '',
      ].join('\n'),
    );
    env = {
      ...process.env,
      STACK_DIR: stack,
      PROMETHEUS_PORT: String(await freePort()),
      ALERTMANAGER_PORT: String(await freePort()),
      RECEIVER_URL: t.receiver.url,
      ALERTING_INTERVAL: '1s',
      ALERTING_RESEND_DELAY: '1s',
      ALERTING_EXTRA_RULES: rules,
    };
    const up = await alerting('up');
    if (up.status !== 0) throw new Error(`scripts/alerting.sh up failed:\n${up.stderr}`);
  }, 120_000);

  afterAll(async () => {
    if (env) {
      const down = await alerting('down');
      if (down.status !== 0) console.warn(down.stderr);
      else if (stack) rmSync(stack, { recursive: true, force: true });
    }
    await t?.stop();
  }, 60_000);

  test('a real alert from Prometheus arrives as a started workflow', async () => {
    const workflowId = incidentWorkflowId('cacheFailure', t.target);
    const desc = await eventually(
      () =>
        t.client.workflow
          .getHandle(workflowId)
          .describe()
          .catch(() => undefined),
      (d) => d !== undefined,
      45_000,
      500,
    );
    expect(desc?.type).toBe('cacheFailure');
    expect(desc?.typedSearchAttributes.get(SA_TARGET)).toBe(t.target);
    const history = await decodedHistory(t.client.workflow.getHandle(workflowId));
    const input = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0]?.data;
    const started = JSON.parse(Buffer.from(input ?? []).toString());
    expect(started).toMatchObject({
      target: t.target,
      requestedBy: 'alertmanager',
      severity: 2,
      alert: {
        source: 'alertmanager',
        name: 'CacheFailure',
        status: 'firing',
        labels: expect.objectContaining({ target: t.target }),
      },
    });
    const metrics = await (await fetch(`${t.receiver.url}/metrics`)).text();
    expect(metrics).toMatch(/remediation_receiver_incidents_started_total\{runbook="cacheFailure"\} 1/);

    const status = await alerting('status');
    expect(status.stdout).toMatch(/prometheus\s+ok/);
    expect(status.stdout).toMatch(/alertmanager\s+ok/);
    expect(status.stdout).toMatch(/receiver\s+ok/);
  }, 60_000);

  test('up again is idempotent and quick', async () => {
    const t0 = Date.now();
    const again = await alerting('up');
    expect(again.status).toBe(0);
    expect(again.stderr).not.toContain('starting');
    expect(Date.now() - t0).toBeLessThan(10_000);
  });
});
