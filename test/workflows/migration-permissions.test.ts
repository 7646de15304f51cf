/**
 * Migration permission drills on the real drill target: the app role really loses UPDATE on
 * alembic_version and the migration really fails with "permission denied"; the runbook really
 * GRANTs it back after approval and re-runs the migration with `alembic ... upgrade head` in the api container.
 */
import { runFault } from '../../drill/src/faults/catalog';
import { FaultContext } from '../../drill/src/faults/context';
import { approveSignal } from '../../src/workflows/contracts';
import { startEngine, type Engine } from '../helpers/engine';

jest.setTimeout(180_000);

let engine: Engine;
const drill = new FaultContext();

async function canUpdate(): Promise<boolean> {
  const { rows } = await (
    await drill.pg()
  ).query<{ ok: boolean }>("SELECT has_table_privilege('alfred', 'alembic_version', 'UPDATE') AS ok");
  return rows[0]?.ok === true;
}

const migrations = () => drill.api.admin<{ current: number; target: number }>('GET', '/v1/admin/migrations');

beforeAll(async () => {
  engine = await startEngine();
});

afterAll(async () => {
  // Leave the drill as we found it: the grant back and the schema at the release's version.
  try {
    await runFault('migration-grant', true);
  } finally {
    await drill.close();
    await engine.stop();
  }
});

test('a migration role without UPDATE on the migrations table: grant after approval, migration re-run, verified', async () => {
  const injected = await runFault('migration-grant', false);
  expect(injected.messages.join('\n')).toMatch(/migration run answered 500/);
  expect(await canUpdate()).toBe(false);
  const before = await migrations();
  expect(before.current).toBeLessThan(before.target);

  const h = await engine.start({ runbook: 'migrationPermissions', target: 'alfred', requestedBy: 'dave' });
  const waiting = await engine.waitFor(h, (s) => s.pending.some((p) => p.stepId === 'apply-grants'));
  expect(waiting.diagnosis).toMatch(
    /alfred lacks UPDATE on alembic_version: the pending migration cannot be recorded/,
  );
  expect(waiting.rootCause).toMatch(/missing grant UPDATE on alembic_version for the migration role alfred/);
  expect(waiting.findings.find((f) => f.check === 'alfred privileges on alembic_version')).toMatchObject({
    ok: false,
    detail: expect.stringMatching(/missing UPDATE/),
  });
  expect(waiting.findings.find((f) => /permission errors in api logs/.test(f.check))).toMatchObject({
    ok: false,
    detail: expect.stringMatching(/permission denied for table alembic_version/),
  });
  expect(waiting.findings.find((f) => f.check === 'migration status')).toMatchObject({
    ok: false,
    detail: `schema at ${String(before.current).padStart(4, '0')}, release expects ${String(before.target).padStart(4, '0')}`,
  });
  expect(waiting.report).toMatch(/GRANT UPDATE ON alembic_version TO alfred \(after approval\)/);
  expect(waiting.report).toMatch(/Reply to the customer \(initial response\)/);
  // Nothing changes before the approval.
  expect(await canUpdate()).toBe(false);

  await h.signal(approveSignal, { incidentId: h.workflowId, stepId: 'apply-grants', approver: 'alice' });
  const rec = await engine.result(h);
  expect(rec.outcome).toBe('resolved');
  expect(rec.actions.map((a) => [a.stepId, a.state])).toEqual([
    ['apply-grants', 'done'],
    ['rerun-migration', 'done'],
  ]);
  expect(rec.actions[0]).toMatchObject({
    approvals: ['alice'],
    detail: 'granted UPDATE on alembic_version to alfred',
  });
  // The seeds' alembic in the api container re-ran it: from the reverted revision to the release's head.
  const rev = (n: number): string => String(n).padStart(4, '0');
  expect(rec.actions[1]?.detail).toBe(`alembic upgrade head: ${rev(before.current)} → ${rev(before.target)}`);
  expect(rec.timeline.some((t) => /verification passed: alfred has SELECT, INSERT, UPDATE, DELETE/.test(t.event))).toBe(
    true,
  );
  // The real effect: the privilege is there and the schema is at the release's version.
  expect(await canUpdate()).toBe(true);
  const after = await migrations();
  expect(after.current).toBe(after.target);
});

test('complete grants and no pending migration are a false alarm: nothing is granted', async () => {
  const h = await engine.start({ runbook: 'migrationPermissions', target: 'alfred' });
  const rec = await engine.result(h);
  expect(rec.outcome).toBe('false-alarm');
  expect(rec.diagnosis).toMatch(
    /alfred has SELECT, INSERT, UPDATE, DELETE on alembic_version and the schema is at the release's version/,
  );
  expect(rec.actions).toEqual([]);
  expect(rec.report).toMatch(/Reply to the customer \(resolution\)/);
});
