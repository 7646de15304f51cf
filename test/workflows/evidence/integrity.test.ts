/**
 * The integrity runbooks (INC-08 double-spend, rollback, migration permissions, INC-09) against copies
 * of the drill target whose settings miss the replica's signals (a column the table lacks, a
 * governance field the answer lacks, a service that does not exist, a migration tool that is not
 * there): on the healthy drill each must escalate naming what it could not observe, never call it a
 * false alarm or resolve it, and choose no step. The same runbooks against the ungarbled target are
 * the control. (INC-09's own setting, the audit hash definition, is garbled against a real break in
 * test/workflows/audit-hash-definition.test.ts: on a valid chain it is never used.)
 */
import type { TargetConfig } from '../../../src/config';
import type { IncidentRecord } from '../../../src/workflows/contracts';
import { expectUnobserved, runGarbled, summary, type Garbled } from '../../helpers/garbled';

jest.setTimeout(300_000);

function pg(t: TargetConfig): NonNullable<TargetConfig['postgres']> {
  if (!t.postgres) throw new Error('the drill target has no postgres');
  return t.postgres;
}

test('integrity runbooks escalate naming each signal they cannot observe; the ungarbled target is the control', async () => {
  const cases: Garbled[] = [
    {
      runbook: 'doubleSpend',
      signal: 'deductions in request_logs (postgres.schema.requestLogs.refundOf)',
      garble: (t) => void (pg(t).schema.requestLogs.refundOf = 'no_such_refund_of'),
      expect: /could not observe duplicate request_id deductions: request_logs not readable: .*postgres\.schema\.requestLogs\.refundOf/,
    },
    {
      runbook: 'doubleSpend',
      signal: 'maintenance mode (api.fields.governanceSettings.maintenanceMode)',
      garble: (t) => void (t.api.fields.governanceSettings.maintenanceMode = 'settings.no_such_switch'),
      expect: /could not observe maintenance mode: .*api\.fields\.governanceSettings\.maintenanceMode/,
    },
    {
      runbook: 'doubleSpend',
      signal: 'the last deploy (rollbackOrder)',
      garble: (t) => void (t.rollbackOrder = ['no-such-service']),
      expect: /could not observe last deploy: deploy history of no-such-service unavailable: .*rollbackOrder/,
    },
    {
      runbook: 'rollback',
      signal: 'the release history (containers.services)',
      garble: (t) => void (t.containers.services = { ...t.containers.services, api: 'no-such-api' }),
      expect: /could not observe api release: release history of api unreadable: .*containers\.services/,
    },
    {
      runbook: 'migrationPermissions',
      signal: 'the migration status (postgres.migrations.command)',
      garble: (t) => {
        const m = pg(t).migrations;
        if (!m) throw new Error('the drill target has no postgres.migrations');
        m.command = ['no-such-alembic'];
      },
      expect: /could not observe migration status: .*postgres\.migrations\.command/,
    },
  ];
  const control = [
    { runbook: 'doubleSpend' as const, expect: 'false-alarm' },
    { runbook: 'rollback' as const, expect: 'dry-run' },
    { runbook: 'migrationPermissions' as const, expect: 'false-alarm' },
    { runbook: 'auditChainBreak' as const, expect: 'false-alarm' },
  ];

  const result = await runGarbled(cases, control);
  const failures: string[] = [];
  for (const run of result.garbled) {
    try {
      expectUnobserved(run);
    } catch (err) {
      failures.push((err as Error).message);
    }
  }
  result.control.forEach((r: IncidentRecord, i) => {
    const c = control[i];
    if (r.outcome !== c?.expect) failures.push(`control ${c?.runbook ?? '?'}: expected ${c?.expect ?? '?'}:\n${summary(r)}`);
  });
  expect(failures).toEqual([]);
});
