/**
 * Maintenance windows as operators use them, on the real stack: `remediate maintenance start` (the
 * engineer's credential, sealed by the real codec server) opens a window on alfred; an alert with
 * Redis down then opens an incident that only diagnoses — Podman records no start of the container —
 * and the UI's details say why; `stop` ends the window and the next incident restarts Redis. A
 * configured record-only window records the alert without diagnosing it. Who may open windows, for how
 * long, and on which targets is the worker's configuration: the others are refused.
 */
import type { IncidentRecord } from '../../src/workflows/contracts';
import { startTestCodecServer, type TestCodecServer } from '../helpers/codec';
import { podmanStartsSince, redisUp } from '../helpers/drill';
import { drillContainer, startEngine, waitUntil, type Engine } from '../helpers/engine';
import { remediateCli, type RemediateCli } from '../helpers/remediate-cli';

jest.setTimeout(180_000);

let engine: Engine;
let codec: TestCodecServer;
let cli: RemediateCli;

const alert = (name: string) => ({ source: 'alertmanager' as const, name, status: 'firing' as const, receivedAt: new Date().toISOString() });

async function healRedis(): Promise<void> {
  const c = await drillContainer(engine.docker, 'redis');
  if (!(await c.inspect()).State.Running) await c.start();
  await waitUntil('redis up', () => redisUp());
}

beforeAll(async () => {
  codec = await startTestCodecServer();
  engine = await startEngine({
    configure: (c) => {
      const alfred = c.targets.alfred as (typeof c.targets)[string];
      // A change freeze configured on a copy of the drill: alerts there are only recorded.
      c.targets['alfred-frozen'] = {
        ...alfred,
        maintenance: {
          mode: 'diagnose',
          maxDurationMs: 3600_000,
          windows: [{ name: 'year-end-freeze', mode: 'record', reason: 'year-end change freeze', from: '2026-01-01T00:00:00Z', to: '2036-01-01T00:00:00Z' }],
        },
      };
    },
  });
  cli = remediateCli({ taskQueue: engine.taskQueue, codecUrl: codec.url });
});

afterAll(async () => {
  await healRedis();
  await engine.stop();
  await codec.close();
  cli.close();
});

test('a window opened with the client script: the incident only diagnoses, nothing runs; once stopped, the next one acts', async () => {
  const opened = await cli.as('alice', 'maintenance', 'start', 'alfred', '--for', '30m', '--reason', 'redis 7.4 upgrade', '--json');
  expect(opened).toMatchObject({ code: 0, stderr: '' });
  const w = JSON.parse(opened.stdout) as { id: string; mode: string; by: string; from: string; until: string };
  expect(w).toMatchObject({ mode: 'diagnose', by: 'alice', reason: 'redis 7.4 upgrade' });
  expect(Date.parse(w.until) - Date.parse(w.from)).toBe(30 * 60_000);
  const listed = await cli.as('erin', 'maintenance', 'list', 'alfred');
  expect(listed.code).toBe(0);
  expect(listed.stdout).toContain(`alfred  ${w.id}  open  diagnose  ${w.from} → ${w.until}  by alice  — redis 7.4 upgrade`);

  const c = await drillContainer(engine.docker, 'redis');
  const name = (await c.inspect()).Name.replace(/^\//, '');
  const since = Date.now();
  await c.kill();
  await waitUntil('redis down', async () => !(await redisUp()));
  const h = await engine.start({ runbook: 'cacheFailure', target: 'alfred', alert: alert('RedisDown') });
  const rec: IncidentRecord = await engine.result(h);
  expect(rec.outcome).toBe('maintenance');
  expect(rec.maintenance).toMatchObject({ id: w.id, source: 'opened', mode: 'diagnose', by: 'alice', until: w.until });
  // Diagnosed for real (Redis does not answer), the remedy written down, not run.
  expect(rec.findings.some((f) => !f.ok && !f.unknown)).toBe(true);
  expect(rec.actions.find((a) => a.stepId === 'restart-redis')?.state).toBe('would-do');
  expect(rec.timeline.map((t) => t.event)).toContain(`opened in maintenance window ${w.id} (diagnose only) until ${w.until}, opened by alice: redis 7.4 upgrade`);
  // Podman's own record: the container was not started, and is still down.
  expect(podmanStartsSince(since, name)).toBe(0);
  expect((await c.inspect()).State.Running).toBe(false);
  // What the Temporal UI shows on the incident (its "current details", from the built-in metadata query).
  const meta = await h.query<{ currentDetails?: string }>('__temporal_workflow_metadata');
  expect(meta.currentDetails).toContain(`**Maintenance window** \`${w.id}\` until ${w.until} (opened by alice): diagnosis only, nothing runs and nobody is paged — redis 7.4 upgrade`);

  const stopped = await cli.as('bob', 'maintenance', 'stop', 'alfred', '--reason', 'upgrade done');
  expect(stopped).toMatchObject({ code: 0, stdout: `stopped ${w.id} on alfred as bob\n` });
  expect((await cli.as('erin', 'maintenance', 'list', 'alfred')).stdout).toContain(`alfred  ${w.id}  stopped  diagnose`);
  const after = await engine.start({ runbook: 'cacheFailure', target: 'alfred', alert: alert('RedisDown') });
  const acted = await engine.result(after);
  expect(acted.maintenance).toBeUndefined();
  expect(acted.outcome).toBe('resolved');
  expect(acted.actions.find((a) => a.stepId === 'restart-redis')?.state).toBe('done');
  expect(podmanStartsSince(since, name)).toBe(1);
});

test('a configured record-only window: the alert is recorded, not diagnosed, and nobody is told', async () => {
  const h = await engine.start({ runbook: 'cacheFailure', target: 'alfred-frozen', alert: alert('RedisDown') });
  const rec = await engine.result(h);
  expect(rec.outcome).toBe('maintenance');
  expect(rec.maintenance).toEqual({
    id: 'config:year-end-freeze',
    source: 'config',
    mode: 'record',
    reason: 'year-end change freeze',
    from: '2026-01-01T00:00:00.000Z',
    until: '2036-01-01T00:00:00.000Z',
  });
  expect(rec.findings).toEqual([]);
  expect(rec.actions).toEqual([]);
});

test('refused: a person who is not an approver, no credential, longer than allowed, an unknown target, bad usage', async () => {
  const dave = await cli.as('dave', 'maintenance', 'start', 'alfred', '--for', '30m', '--reason', 'mine');
  expect(dave.code).toBe(1);
  expect(dave.stderr).toMatch(/refused: dave may not start maintenance windows on alfred \(allowed: /);
  const anonymous = await cli.withEnv({ REMEDIATE_CREDENTIALS: '/nonexistent/credentials' }, ['maintenance', 'start', 'alfred', '--for', '30m', '--reason', 'x']);
  expect(anonymous.code).toBe(2);
  expect(anonymous.stderr).toMatch(/no credential/);
  const long = await cli.as('alice', 'maintenance', 'start', 'alfred', '--for', '13h', '--reason', 'long', '--json');
  expect(long.code).toBe(1);
  expect(JSON.parse(long.stderr)).toEqual({ error: expect.stringMatching(/lasts at most 43200000 ms \(maintenance.maxDurationMs\); asked for 46800000 ms/), code: 1 });
  const unknown = await cli.as('alice', 'maintenance', 'start', 'nowhere', '--for', '30m', '--reason', 'x');
  expect(unknown.code).toBe(2);
  expect(unknown.stderr).toMatch(/unknown target "nowhere"; configured: alfred/);
  expect((await cli.as('alice', 'maintenance', 'start', 'alfred', '--reason', 'x')).stderr).toMatch(/--for is required/);
  expect((await cli.as('alice', 'maintenance', 'start', 'alfred', '--for', 'soon', '--reason', 'x')).stderr).toMatch(/--for: "soon" is not a duration/);
  expect((await cli.as('alice', 'maintenance', 'start', 'alfred', '--for', '1h')).stderr).toMatch(/--reason is required/);
  expect((await cli.as('alice', 'maintenance', 'start', 'alfred', '--for', '1h', '--reason', 'x', '--mode', 'mute')).stderr).toMatch(/--mode: "mute" is not one of diagnose, record/);
  expect((await cli.as('alice', 'maintenance', 'explode')).code).toBe(2);
  // Nothing was opened by any of these.
  const list = await cli.as('erin', 'maintenance', 'list', 'alfred', '--json');
  const rows = JSON.parse(list.stdout) as { state: string }[];
  expect(rows.filter((r) => r.state === 'open' || r.state === 'ahead')).toEqual([]);
});
