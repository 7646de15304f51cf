/** migrationPermissions' decision and report: pure functions over findings, no Temporal needed. */
import { migrationReport, planMigrationPermissions, type MigrationFacts } from '../../src/workflows/migration-permissions';
import { healthyMigrationPermissions } from '../fixtures/healthy-facts';

const meta = {
  target: 'alfred',
  incidentId: 'incident-x-alfred',
  at: '2026-11-27T10:00:00.000Z',
  severity: 2 as const,
};

const denied: MigrationFacts = {
  ...healthyMigrationPermissions,
  grants: {
    ...healthyMigrationPermissions.grants,
    granted: ['SELECT', 'UPDATE', 'DELETE'],
    missing: ['INSERT'],
    grants: { alfred: ['SELECT', 'UPDATE', 'DELETE'] },
  },
  status: { current: '0002', target: '0003', pending: true },
  permissionErrors: 2,
  lastError: 'level=error msg="unhandled error" err="permission denied for table schema_migrations"',
};

describe('migrationPermissions plan', () => {
  it('calls complete grants and a current schema a false alarm', () => {
    expect(planMigrationPermissions(healthyMigrationPermissions)).toMatchObject({ falseAlarm: true, steps: [] });
  });
  it('grants the missing privilege, then re-runs the pending migration', () => {
    const p = planMigrationPermissions(denied);
    expect(p.steps).toEqual(['apply-grants', 'rerun-migration']);
    expect(p.rootCause).toBe('missing grant INSERT on schema_migrations for the migration role alfred');
  });
  it('only grants when nothing is pending', () => {
    expect(planMigrationPermissions({ ...denied, status: { current: '0003', target: '0003', pending: false } }).steps).toEqual(['apply-grants']);
  });
  it('escalates a pending migration that is not a permissions problem', () => {
    const p = planMigrationPermissions({ ...healthyMigrationPermissions, status: { current: '0002', target: '0003', pending: true } });
    expect(p.steps).toEqual([]);
    expect(p.escalate).toMatch(/other than grants/);
  });
  it('escalates a missing migrations table', () => {
    const p = planMigrationPermissions({ ...healthyMigrationPermissions, grants: { ...healthyMigrationPermissions.grants, tableExists: false } });
    expect(p.escalate).toMatch(/schema_migrations is missing/);
  });
});

describe('migrationPermissions report', () => {
  it('shows the missing grant, the log evidence and the proposed GRANT', () => {
    const md = migrationReport(denied, planMigrationPermissions(denied), meta);
    expect(md).toContain(
      '| alfred privileges on schema_migrations | FAIL | missing INSERT (has SELECT, UPDATE, DELETE) |',
    );
    expect(md).toContain('| grants on schema_migrations | OK | alfred: SELECT, UPDATE, DELETE |');
    expect(md).toContain('permission denied for table schema_migrations');
    expect(md).toContain(
      'GRANT INSERT ON schema_migrations TO alfred (after approval); then re-run the pending migrations',
    );
  });
});
