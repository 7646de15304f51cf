/** Rollback never picks a release, or "nothing to roll back", from a release history it could not read. */
import { planRollback, type RollbackFacts } from '../../src/workflows/rollback';

const pg = { component: 'db', database: 'alfred', execUser: 'alfred', backupPath: '/backups/alfred-latest.dump' } as unknown as RollbackFacts['pg'];
const base: RollbackFacts = {
  services: [{ service: 'api', current: '1.2.0', goal: '1.1.0', reason: 'ran 1.1.0 before 1.2.0' }],
  healthOk: true,
  migrationDowngrade: false,
  restoreBackup: false,
  pg,
  evidenceRule: true,
};

describe('rollback with the release history unobserved', () => {
  it('escalates naming the service and why, with no move', () => {
    const p = planRollback({
      ...base,
      services: [
        { service: 'api', current: '?', goal: null, reason: 'not observed', unobserved: 'release history of api unreadable: no container (settings containers.services, rollbackOrder)' },
        { service: 'worker', current: '1.2.0', goal: '1.1.0', reason: 'ran 1.1.0 before 1.2.0' },
      ],
    });
    expect(p.moves).toEqual([]);
    expect(p.falseAlarm).toBeUndefined();
    expect(p.escalate).toMatch(/^could not observe api release: release history of api unreadable/);
  });

  it('positive control: a readable history rolls back; a service already on its release is a false alarm', () => {
    expect(planRollback(base).moves.map((m) => m.goal)).toEqual(['1.1.0']);
    expect(planRollback({ ...base, services: [{ service: 'api', current: '1.1.0', goal: '1.1.0', reason: 'requested' }] })).toMatchObject({ falseAlarm: true, moves: [] });
  });
});
