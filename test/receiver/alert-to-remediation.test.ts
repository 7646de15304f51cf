/**
 * The whole path, for real: the drill's Redis is killed; real Prometheus scrapes the drill api and
 * evaluates the shipped AlfredRedisDown rule; real Alertmanager posts to the receiver; the receiver
 * starts cacheFailure; the engine worker restarts Redis and verifies PONG; the alert then resolves
 * and Alertmanager's resolved notification reaches the receiver.
 */
import { execFile, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import { incidentWorkflowId, type IncidentRecord } from '../../src/workflows/contracts';
import { drillContainer, startEngine, waitUntil, type Engine } from '../helpers/engine';
import { freePort, health, redisUp } from '../helpers/drill';
import { REPO, startTestReceiver, TOKENS, type TestReceiver } from './helpers';

jest.setTimeout(180_000);

const haveBinaries = ['prometheus', 'prometheus-alertmanager'].every((b) => spawnSync('sh', ['-c', `command -v ${b}`]).status === 0);
const maybe = haveBinaries ? describe : describe.skip;



interface Rule {
  alert?: string;
  for?: string;
  labels?: Record<string, string>;
}

maybe('alert → remediation → resolution, with the shipped rule', () => {
  let t: TestReceiver;
  let engine: Engine;
  let env: NodeJS.ProcessEnv;
  let stack: string;

  function alerting(cmd: 'up' | 'down'): Promise<number> {
    return new Promise((resolve) => {
      execFile('bash', [path.join(REPO, 'scripts/alerting.sh'), cmd], { env, timeout: 90_000 }, (err) =>
        resolve(err ? 1 : 0),
      );
    });
  }

  beforeAll(async () => {
    t = await startTestReceiver();
    engine = await startEngine({
      taskQueue: t.taskQueue,
      extraTargets: [t.target],
      configure: (c) => {
        c.policy.settleMs = 3000;
      },
    });
    stack = mkdtempSync(path.join(tmpdir(), 'alert-remediation-'));
    mkdirSync(path.join(stack, 'secrets'), { recursive: true, mode: 0o700 });
    writeFileSync(path.join(stack, 'secrets/receiver-alertmanager-token'), TOKENS.alertmanager, { mode: 0o600 });
    // The shipped AlfredRedisDown rule, expression unchanged, without its 30 s hold and labelled for this run's target.
    const shipped = parse(readFileSync(path.join(REPO, 'config/prometheus/alert-rules.yml'), 'utf8')) as {
      groups: { name: string; rules: Rule[] }[];
    };
    const rule = shipped.groups.flatMap((g) => g.rules).find((r) => r.alert === 'AlfredRedisDown');
    if (!rule) throw new Error('AlfredRedisDown is not in the shipped rules');
    const derived = { ...rule, for: '0s', labels: { ...rule.labels, target: t.target } };
    const file = path.join(stack, 'redis-down-now.yml');
    writeFileSync(file, stringify({ groups: [{ name: 'redis-down-now', interval: '1s', rules: [derived] }] }));
    env = {
      ...process.env,
      STACK_DIR: stack,
      PROMETHEUS_PORT: String(await freePort()),
      ALERTMANAGER_PORT: String(await freePort()),
      RECEIVER_URL: t.receiver.url,
      ALERTING_INTERVAL: '1s',
      ALERTING_RESEND_DELAY: '1s',
      ALERTING_EXTRA_RULES: file,
    };
    if ((await alerting('up')) !== 0) throw new Error('scripts/alerting.sh up failed');
  }, 120_000);

  afterAll(async () => {
    await alerting('down');
    rmSync(stack, { recursive: true, force: true });
    const c = await drillContainer(engine.docker, 'redis');
    if (!(await c.inspect()).State.Running) await c.start();
    await waitUntil('redis up', redisUp);
    await engine.stop();
    await t.stop();
  }, 60_000);

  test('killing Redis fires the alert, the runbook restarts it, and the alert resolves', async () => {
    const c = await drillContainer(engine.docker, 'redis');
    await c.kill();
    const id = incidentWorkflowId('cacheFailure', t.target);
    await waitUntil('the incident to start', async () => Boolean(await engine.client.workflow.getHandle(id).describe()), 60_000);
    const rec = (await engine.result(engine.client.workflow.getHandle(id))) as IncidentRecord;

    expect(rec.outcome).toBe('resolved');
    expect(rec.requestedBy).toBe('alertmanager');
    expect(rec.actions).toEqual([expect.objectContaining({ stepId: 'restart-redis', state: 'done' })]);
    expect(rec.timeline.some((e) => /alert AlfredRedisDown firing from alertmanager/.test(e.event))).toBe(true);
    expect(await redisUp()).toBe(true);
    await waitUntil('api sees redis', async () => (await health())?.redis === 'healthy');

    // Prometheus sees Redis back; Alertmanager sends the resolution; the receiver records it.
    await waitUntil(
      'the resolved notification',
      async () => /remediation_receiver_alerts_resolved_total\{[^}]*\} [1-9]/.test(await (await fetch(`${t.receiver.url}/metrics`)).text()),
      60_000,
    );
  });
});
