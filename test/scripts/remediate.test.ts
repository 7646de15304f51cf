/**
 * The client script as engineers run it (a subprocess), against the real Temporal server and a real
 * engine worker: usage errors, unknown ids and targets, refusals, dry-run rollback with --wait.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { incidentWorkflowId } from '../../src/workflows/contracts';
import { REPO, STACK_DIR, startEngine, type Engine } from '../helpers/engine';

jest.setTimeout(120_000);
const exec = promisify(execFile);

let engine: Engine;

async function remediate(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await exec(path.join(REPO, 'bin/remediate'), args, {
      env: { ...process.env, STACK_DIR, TEMPORAL_TASK_QUEUE: engine.taskQueue },
      timeout: 90_000,
    });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

beforeAll(async () => {
  engine = await startEngine();
});

afterAll(async () => {
  for (const id of [incidentWorkflowId('rollback', 'alfred'), incidentWorkflowId('cacheFailure', 'alfred')]) {
    try {
      const h = engine.client.workflow.getHandle(id);
      const d = await h.describe();
      if (d.status.name === 'RUNNING' && d.taskQueue === engine.taskQueue) await h.terminate('test finished');
    } catch {
      /* none */
    }
  }
  await engine.stop();
});

test('--help documents every command; bad usage exits 2 with a message', async () => {
  const help = await remediate('--help');
  expect(help.code).toBe(0);
  for (const c of ['runbooks', 'list', 'show', 'start', 'rollback', 'approve', 'reject', 'close', 'postmortem', 'schedules', '--dry-run', '--wait']) {
    expect(help.stdout).toContain(c);
  }
  const bad = await remediate('explode');
  expect(bad).toMatchObject({ code: 2 });
  expect(bad.stderr).toMatch(/unknown command "explode"/);
  expect((await remediate('rollback')).stderr).toMatch(/--target is required/);
  expect((await remediate('approve', 'x', 'y')).stderr).toMatch(/--as NAME is required/);
  expect((await remediate('start', 'cacheFailure', '--target', 'alfred', '--severity', '9')).stderr).toMatch(/--severity must be/);
  expect((await remediate('list', '--frobnicate')).code).toBe(2);
});

test('unknown targets and runbooks are refused before any workflow starts', async () => {
  const r = await remediate('rollback', '--target', 'mainframe');
  expect(r.code).toBe(2);
  expect(r.stderr).toMatch(/unknown target "mainframe"; configured: alfred/);
  const u = await remediate('start', 'fixEverything', '--target', 'alfred');
  expect(u.code).toBe(2);
  expect(u.stderr).toMatch(/unknown runbook "fixEverything"/);
  await expect(engine.client.workflow.getHandle(incidentWorkflowId('fixEverything', 'alfred')).describe()).rejects.toThrow();
});

test('unknown incident ids get a clear error', async () => {
  const r = await remediate('show', 'incident-nope-nowhere');
  expect(r.code).toBe(1);
  expect(r.stderr).toMatch(/no incident "incident-nope-nowhere"/);
});

test('a dry-run rollback with --wait prints progress and the plan, and exits 0', async () => {
  const r = await remediate('rollback', '--target', 'alfred', '--dry-run', '--wait', '--as', 'erin');
  expect(r.code).toBe(0);
  expect(r.stdout).toMatch(/started incident-rollback-alfred/);
  expect(r.stdout).toMatch(/\[TRIAGE\] phase TRIAGE/);
  expect(r.stdout).toMatch(/step recreate-api \[approve\] would-do/);
  expect(r.stdout).toMatch(/outcome dry-run/);
  const json = await remediate('show', incidentWorkflowId('rollback', 'alfred'), '--json');
  expect(JSON.parse(json.stdout)).toMatchObject({ runbook: 'rollback', outcome: 'dry-run', requestedBy: 'erin' });
  // The post-mortem is written from the incident's event history.
  const pm = await remediate('postmortem', incidentWorkflowId('rollback', 'alfred'));
  expect(pm.code).toBe(0);
  expect(pm.stdout).toMatch(/## Post-Mortem: INC-\d{4}-\d{2}-\d{2}-rollback/);
  expect(pm.stdout).toMatch(/\| \d{2}:\d{2}:\d{2} \| Incident opened by erin/);
  expect(pm.stdout).toMatch(/Incident closed: dry-run/);
});

test('approvals through the script: requester and strangers refused, reject escalates, close ends it', async () => {
  const id = incidentWorkflowId('rollback', 'alfred');
  const started = await remediate('rollback', '--target', 'alfred', '--as', 'erin', '--services', 'api', '--tag', '1.0.0');
  expect(started.code).toBe(0);
  await engine.waitFor(engine.client.workflow.getHandle(id), (s) => s.pending.some((p) => p.stepId === 'recreate-api'));

  const listed = await remediate('list', '--target', 'alfred');
  expect(listed.stdout).toContain(id);

  const own = await remediate('approve', id, 'recreate-api', '--as', 'erin');
  expect(own.code).toBe(1);
  expect(own.stderr).toMatch(/refused: erin opened this incident and cannot approve/);
  const stranger = await remediate('approve', id, 'recreate-api', '--as', 'mallory');
  expect(stranger.stderr).toMatch(/not an allowed approver/);
  const notPending = await remediate('approve', id, 'restore-backup', '--as', 'alice');
  expect(notPending.stderr).toMatch(/not waiting for approval/);

  const again = await remediate('rollback', '--target', 'alfred', '--as', 'erin');
  expect(again.code).toBe(1);
  expect(again.stderr).toMatch(/already open/);

  const rejected = await remediate('reject', id, 'recreate-api', '--as', 'bob', '--comment', 'not now');
  expect(rejected.code).toBe(0);
  await engine.waitFor(engine.client.workflow.getHandle(id), (s) => s.phase === 'ESCALATED');
  const shown = await remediate('show', id);
  expect(shown.stdout).toMatch(/step recreate-api \[approve\] rejected/);
  expect(shown.stdout).toMatch(/remediate close/);
  const closed = await remediate('close', id, '--as', 'bob', '--note', 'kept 1.1.0');
  expect(closed.code).toBe(0);
  const rec = await engine.result(engine.client.workflow.getHandle(id));
  expect(rec.outcome).toBe('escalated');
});
