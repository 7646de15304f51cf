/**
 * The maintenance keeper (src/workflows/maintenance.ts) on Temporal's time-skipping test server, with
 * the real activity that reads who may open windows from an engine configuration: a window opened by
 * an allowed, authenticated person lasts what was asked and ends by itself; stopped early, it is kept
 * as stopped; unsealed, unknown, unauthorised, too long and malformed requests are refused; the keeper
 * ends an hour after its last window.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import pino from 'pino';
import { stringify } from 'yaml';
import { loadConfig } from '../../src/config';
import type { ActivityDeps } from '../../src/activities';
import { createMaintenanceActivities } from '../../src/activities/engine/maintenance';
import type { CodecSecrets } from '../../src/lib/codec';
import { isCurrentOrAhead } from '../../src/lib/maintenance';
import {
  maintenanceStateQuery,
  maintenanceUpdate,
  maintenanceWorkflowId,
  type MaintenanceKeeperInput,
  type MaintenanceRequest,
} from '../../src/workflows/contracts';
import { sealedClient, startTimeSkipping, testSecrets, testWorker } from '../helpers/time-skipping';

jest.setTimeout(60_000);

const MIN = 60_000;
let env: TestWorkflowEnvironment;
let secrets: CodecSecrets;
let worker: Worker;
let running: Promise<void>;
const taskQueue = `maintenance-${randomUUID().slice(0, 8)}`;

function config() {
  const dir = mkdtempSync(path.join(tmpdir(), 'engine-maintenance-'));
  const file = path.join(dir, 'engine.yaml');
  const target = { baseUrl: 'http://127.0.0.1:58000', containers: { project: 'alfred' }, components: ['api', 'db', 'redis'] };
  writeFileSync(
    file,
    stringify({
      docker: { socketPath: '/run/docker.sock' },
      targets: { alfred: { ...target, maintenance: { maxDurationMs: '2h', mode: 'record' } }, beta: target },
      policy: { approvers: ['alice', 'bob'], tiers: [{ name: 'tier-1', contacts: ['@on-call'], waitMs: 900_000 }] },
    }),
  );
  return loadConfig(file, {});
}

beforeAll(async () => {
  secrets = testSecrets();
  env = await startTimeSkipping(secrets);
  const deps = { config: config(), logger: pino({ level: 'silent' }) } as unknown as ActivityDeps;
  worker = await testWorker(env, secrets, taskQueue, createMaintenanceActivities(deps));
  running = worker.run();
});

afterAll(async () => {
  worker?.shutdown();
  await running;
  await env?.teardown();
});

async function keeper(target: string) {
  const input: MaintenanceKeeperInput = { target };
  return env.client.workflow.start('maintenanceWindows', { taskQueue, workflowId: `${maintenanceWorkflowId(target)}-${randomUUID().slice(0, 6)}`, args: [input] });
}

const as = (who: string) => sealedClient(env, secrets, who);
const ask = (who: string, workflowId: string, req: MaintenanceRequest) =>
  as(who).workflow.getHandle(workflowId).executeUpdate(maintenanceUpdate, { args: [req] });
const refusal = (p: Promise<unknown>) => expect(p).rejects.toMatchObject({ cause: { message: expect.any(String) } });
async function refusedWith(p: Promise<unknown>, pattern: RegExp): Promise<void> {
  await refusal(p);
  const err = (await p.catch((e: unknown) => e)) as { cause?: { message?: string } };
  expect(err.cause?.message).toMatch(pattern);
}

test('an allowed person opens a window for what they asked; it ends by itself, and the keeper an hour later', async () => {
  const h = await keeper('alfred');
  const before = await env.currentTimeMs();
  const res = await ask('alice', h.workflowId, { target: 'alfred', action: 'start', forMs: 90 * MIN, reason: 'redis 7.4 upgrade' });
  expect(res.windows).toHaveLength(1);
  const w = res.windows[0]!;
  // The target's configured mode (record) applies when the request names none.
  expect(w).toMatchObject({ id: 'mw-1', mode: 'record', by: 'alice', reason: 'redis 7.4 upgrade' });
  expect(Date.parse(w.until) - Date.parse(w.from)).toBe(90 * MIN);
  expect(Date.parse(w.from)).toBeGreaterThanOrEqual(before - 1000);

  await env.sleep(89 * MIN);
  expect(isCurrentOrAhead((await h.query(maintenanceStateQuery)).windows[0]!, await env.currentTimeMs())).toBe(true);
  await env.sleep(2 * MIN);
  const state = await h.query(maintenanceStateQuery);
  expect(isCurrentOrAhead(state.windows[0]!, await env.currentTimeMs())).toBe(false);
  expect((await h.describe()).status.name).toBe('RUNNING');
  // An hour after its last window, the keeper ends (its record stays readable).
  await env.sleep(61 * MIN);
  await h.result();
  expect((await h.query(maintenanceStateQuery)).windows.map((x) => x.id)).toEqual(['mw-1']);
});

test('a window stopped early is kept as stopped, by whom; stopping again is refused', async () => {
  const h = await keeper('alfred');
  await ask('alice', h.workflowId, { target: 'alfred', action: 'start', forMs: 60 * MIN, reason: 'failover drill', mode: 'diagnose' });
  await ask('alice', h.workflowId, { target: 'alfred', action: 'start', forMs: 30 * MIN, reason: 'second', from: new Date((await env.currentTimeMs()) + 10 * MIN).toISOString() });
  await env.sleep(5 * MIN);
  const stopped = await ask('bob', h.workflowId, { target: 'alfred', action: 'stop', id: 'mw-1', reason: 'done early' });
  expect(stopped.windows).toEqual([expect.objectContaining({ id: 'mw-1', stopped: expect.objectContaining({ by: 'bob', reason: 'done early' }) })]);
  await refusedWith(ask('bob', h.workflowId, { target: 'alfred', action: 'stop', id: 'mw-1' }), /no open or upcoming window mw-1 on alfred/);
  // Without an id, every open or upcoming window stops: the one ahead too.
  const all = await ask('alice', h.workflowId, { target: 'alfred', action: 'stop' });
  expect(all.windows.map((w) => w.id)).toEqual(['mw-2']);
  const state = await h.query(maintenanceStateQuery);
  expect(state.windows.map((w) => [w.id, w.stopped?.by])).toEqual([
    ['mw-1', 'bob'],
    ['mw-2', 'alice'],
  ]);
  await h.terminate('test finished');
});

test('refused: unsealed, not an approver, longer than allowed, malformed, another target, an unknown target', async () => {
  const h = await keeper('alfred');
  const start: MaintenanceRequest = { target: 'alfred', action: 'start', forMs: 30 * MIN, reason: 'x' };
  // env.client encrypts but does not seal: the sender is nobody.
  await refusedWith(env.client.workflow.getHandle(h.workflowId).executeUpdate(maintenanceUpdate, { args: [start] }), /not sealed by the codec server/);
  await refusedWith(ask('dave', h.workflowId, start), /dave may not start maintenance windows on alfred \(allowed: alice, bob\)/);
  await refusedWith(ask('alice', h.workflowId, { ...start, forMs: 3 * 60 * MIN }), /lasts at most 7200000 ms \(maintenance.maxDurationMs\); asked for 10800000 ms/);
  await refusedWith(ask('alice', h.workflowId, { ...start, reason: ' ' }), /a reason \(1 to 500 characters\) is required/);
  await refusedWith(ask('alice', h.workflowId, { ...start, forMs: -1 }), /forMs/);
  await refusedWith(ask('alice', h.workflowId, { ...start, mode: 'silence' as 'record' }), /mode must be "diagnose" or "record"/);
  await refusedWith(ask('alice', h.workflowId, { ...start, target: 'beta' }), /this is the keeper of alfred, not of beta/);
  await refusedWith(ask('alice', h.workflowId, { ...start, extra: 1 } as MaintenanceRequest), /unknown field\(s\): extra/);
  const unknown = await keeper('gamma');
  await refusedWith(ask('alice', unknown.workflowId, { ...start, target: 'gamma' }), /unknown target "gamma": not in the worker's configuration/);

  const state = await h.query(maintenanceStateQuery);
  expect(state.windows).toEqual([]);
  // Refusals the configuration decided are kept with who asked.
  expect(state.refused.map((r) => [r.by, r.why])).toEqual([
    ['dave', 'start refused: not allowed to open or stop windows here'],
    ['alice', 'start refused: 10800000 ms is longer than 7200000 ms'],
  ]);
  await h.terminate('test finished');
  await unknown.terminate('test finished');
});
