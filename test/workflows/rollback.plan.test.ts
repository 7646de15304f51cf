/** rollback's decision: a pure function over its findings, no Temporal needed. */
import { planRollback } from '../../src/workflows/rollback';
import { stepIds } from '../../src/workflows/shape';
import { DEFAULT_PG } from '../../src/workflows/steps';

describe('rollback plan', () => {
  const base = { healthOk: false, migrationDowngrade: false, restoreBackup: false, pg: DEFAULT_PG };
  it('moves only services not already on their target release', () => {
    const p = planRollback({
      ...base,
      services: [
        { service: 'api', current: '1.1.0', goal: '1.0.0', reason: '' },
        { service: 'worker', current: '1.0.0', goal: '1.0.0', reason: '' },
      ],
    });
    expect(p.moves.map((m) => m.service)).toEqual(['api']);
    expect(stepIds(p)).toEqual(['recreate-api']);
  });
  it('recreates each service in turn, then the downgrade and the restore asked for', () => {
    const p = planRollback({
      ...base,
      migrationDowngrade: true,
      restoreBackup: true,
      services: [
        { service: 'api', current: '1.1.0', goal: '1.0.0', reason: '' },
        { service: 'worker', current: '1.1.0', goal: '1.0.0', reason: '' },
      ],
    });
    expect(p.steps).toEqual([
      { id: 'recreate-<service>', args: { service: 'api' } },
      { id: 'recreate-<service>', args: { service: 'worker' } },
      'migration-downgrade',
      'restore-backup',
    ]);
    expect(stepIds(p)).toEqual(['recreate-api', 'recreate-worker', 'migration-downgrade', 'restore-backup']);
  });
  it('calls every service already on its release, with nothing asked for, a false alarm', () => {
    const p = planRollback({ ...base, services: [{ service: 'api', current: '1.0.0', goal: '1.0.0', reason: '' }] });
    expect(p).toMatchObject({ falseAlarm: true, steps: [] });
  });
  it('escalates when no good release is known', () => {
    const p = planRollback({ ...base, services: [{ service: 'api', current: '1.0.0', goal: null, reason: 'no older release found' }] });
    expect(p.escalate).toBeDefined();
  });
});
