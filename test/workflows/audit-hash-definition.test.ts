/**
 * INC-09 on the real drill with the target's hash definition (`audit.hash`) set wrong: the migration
 * break (entries without hashes) is really made in PostgreSQL, and the runbook must escalate saying
 * the hash definition does not match the target's entries, with no step and not a row changed. The
 * same break on the target with the right definition plans the forward re-hash (control, dry-run).
 */
import { runFault } from '../../drill/src/faults/catalog';
import { FaultContext } from '../../drill/src/faults/context';
import type { TargetConfig } from '../../src/config';
import type { IncidentRecord } from '../../src/workflows/contracts';
import { startEngine, type Engine } from '../helpers/engine';

jest.setTimeout(180_000);

let engine: Engine;
const drill = new FaultContext();

const GARBLED: Record<string, (t: TargetConfig) => void> = {
  'audit-digest': (t) => {
    t.audit.hash.digest = 'sha512';
  },
  'audit-column-order': (t) => {
    t.audit.hash.serialise = 'json';
    t.audit.hash.columns = ['id', 'action', 'actor_user_id', 'created_at', { column: 'details', nullAs: {} }, 'target_id', 'target_type'];
  },
  'audit-previous-last': (t) => {
    t.audit.hash.previousHash = 'suffix';
  },
};

async function snapshot(): Promise<string> {
  const { rows } = await (await drill.pg()).query(
    'SELECT id::text AS id, actor_user_id, action, target_type, target_id, details, created_at, previous_hash, hash FROM audit_logs ORDER BY audit_logs.id',
  );
  return JSON.stringify(rows);
}

const settled = (r: IncidentRecord) => r.phase === 'ESCALATED' || r.outcome !== undefined;

beforeAll(async () => {
  await runFault('break-audit-chain', true);
  engine = await startEngine({
    configure: (cfg) => {
      for (const [name, garble] of Object.entries(GARBLED)) {
        const t = structuredClone(cfg.targets.alfred) as TargetConfig;
        garble(t);
        cfg.targets[name] = t;
      }
    },
  });
});

afterAll(async () => {
  await runFault('break-audit-chain', true);
  await drill.close();
  await engine.stop();
});

test('migration break with a wrong hash definition: escalates naming it, no step, no audit row changed', async () => {
  await runFault('break-audit-chain', false, { kind: 'missing-hash' });
  const broken = await drill.api.admin<{ valid: boolean; break_kind: string | null }>('POST', '/v1/admin/audit-logs/verify');
  expect(broken).toMatchObject({ valid: false, break_kind: 'missing_hash' });
  const before = await snapshot();

  const runs = await Promise.all(
    Object.keys(GARBLED).map(async (target) => {
      const h = await engine.start({ runbook: 'auditChainBreak', target });
      return { target, h, rec: await engine.waitFor(h, settled, 100_000) };
    }),
  );
  // Control: the same break, the right definition, in dry-run: the forward re-hash is what it would do.
  const control = await engine.result(await engine.start({ runbook: 'auditChainBreak', target: 'alfred', dryRun: true }), 100_000);

  for (const { target, rec } of runs) {
    const why = `${target}: ${JSON.stringify({ phase: rec.phase, outcome: rec.outcome, diagnosis: rec.diagnosis, escalations: rec.escalations, actions: rec.actions })}`;
    expect([why, rec.phase]).toEqual([why, 'ESCALATED']);
    expect([why, rec.actions]).toEqual([why, []]);
    expect(rec.escalations.join(' ')).toMatch(/the hash definition \(setting audit\.hash: .*\) does not match the target's entries: it does not reproduce the stored hash of entry \d+, before the break; nothing written/);
    expect(rec.findings).toEqual(expect.arrayContaining([expect.objectContaining({ check: 'hash definition', ok: false })]));
  }
  expect(await snapshot()).toBe(before);

  expect(control.outcome).toBe('dry-run');
  expect(control.actions).toEqual([expect.objectContaining({ stepId: 'rehash-chain', state: 'would-do' })]);
  expect(control.findings).toEqual(expect.arrayContaining([expect.objectContaining({ check: 'hash definition', ok: true })]));

  for (const { h } of runs) await h.terminate('test over');
});
