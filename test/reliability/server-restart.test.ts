/**
 * The Temporal server (the persistent dev server) is restarted while an incident waits for
 * approval: the incident survives, takes the approval afterwards, remediates and completes.
 */
import { readFileSync } from 'node:fs';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { decideUpdate, statusQuery } from '../../src/workflows/contracts';
import { REPO, STACK_DIR, startEngine, waitUntil, type Engine } from '../helpers/engine';
import { fillRedis, health, unfillRedis } from '../helpers/drill';

jest.setTimeout(300_000);
const exec = promisify(execFile);
const FILL = 'alfred:cache:restart-fill:';

let engine: Engine;

beforeAll(async () => {
  engine = await startEngine();
});

afterAll(async () => {
  await unfillRedis(FILL);
  await engine.stop();
});

test('an incident waiting for approval survives a Temporal server restart and completes', async () => {
  await fillRedis(FILL);
  const h = await engine.start({ runbook: 'cacheFailure', target: 'alfred' });
  await engine.waitFor(h, (s) => s.pending.some((p) => p.stepId === 'evict-cache'));

  // Stop the server the stack started, then bring it back the way users do.
  const pid = Number(readFileSync(path.join(STACK_DIR, 'started/temporal.pid'), 'utf8'));
  process.kill(pid, 'SIGTERM');
  await waitUntil('server gone', async () => {
    try {
      process.kill(pid, 0);
      return false;
    } catch {
      return true;
    }
  });
  await exec('bash', [path.join(REPO, 'scripts/stack.sh'), 'up'], { env: { ...process.env, STACK_DIR }, timeout: 120_000 });

  await waitUntil('the incident answers again', async () => (await h.query(statusQuery)).pending.length === 1, 120_000);
  await h.executeUpdate(decideUpdate, { args: [{ incidentId: h.workflowId, stepId: 'evict-cache', approver: 'alice', decision: 'approve' }] });
  const rec = await engine.result(h);
  expect(rec.outcome).toBe('resolved');
  expect(rec.actions.find((a) => a.stepId === 'evict-cache')?.state).toBe('done');
  await waitUntil('api healthy', async () => (await health())?.status === 'ok');
});
