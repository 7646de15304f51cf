/** migrationPermissions never reads "nothing pending" from a migration status it could not read. */
import { planMigrationPermissions, type MigrationFacts } from '../../src/workflows/migration-permissions';
import { healthyMigrationPermissions } from '../fixtures/healthy-facts';

const granted: MigrationFacts = {
  ...healthyMigrationPermissions,
  settings: { ...healthyMigrationPermissions.settings, table: 'alembic_version' },
  grants: { ...healthyMigrationPermissions.grants, table: 'alembic_version' },
  evidenceRule: true,
};
const { status: _s, ...noStatus } = granted;
const unread: MigrationFacts = { ...noStatus, statusError: 'alembic in api: exec failed: no-such-alembic: not found' };
const denied: MigrationFacts = { ...unread, grants: { ...granted.grants, granted: ['SELECT'], missing: ['INSERT', 'UPDATE', 'DELETE'] } };

describe('migrationPermissions with the migration status unobserved', () => {
  it('complete grants: escalates naming the settings, never a false alarm', () => {
    const p = planMigrationPermissions(unread);
    expect(p.falseAlarm).toBeUndefined();
    expect(p.steps).toEqual([]);
    expect(p.escalate).toMatch(/^could not observe migration status: alembic in api: exec failed.*\(settings postgres\.migrations\.command, postgres\.migrations\.component\)/);
  });

  it('missing grants: no step chosen while whether a migration is pending is unknown', () => {
    const p = planMigrationPermissions(denied);
    expect(p.steps).toEqual([]);
    expect(p.escalate).toMatch(/^could not observe migration status/);
    expect(p.diagnosis).toMatch(/alfred lacks INSERT, UPDATE, DELETE on alembic_version/);
  });

  it('positive control: complete grants and a current schema are a false alarm; missing grants with a pending migration are fixed', () => {
    expect(planMigrationPermissions(granted)).toMatchObject({ falseAlarm: true, steps: [] });
    expect(planMigrationPermissions({ ...denied, status: { current: '0002', target: '0003', pending: true } }).steps).toEqual(['apply-grants', 'rerun-migration']);
  });

  it('incidents recorded before the rule decide as they did', () => {
    expect(planMigrationPermissions({ ...unread, evidenceRule: undefined })).toMatchObject({ falseAlarm: true });
  });
});
