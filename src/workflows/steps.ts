/** Steps more than one runbook uses. */
import type { TargetInfo } from '../activities/target';
import { longActs, type Check, type Step } from './kernel';

export type PostgresInfo = NonNullable<TargetInfo['postgres']>;

export const DEFAULT_PG: PostgresInfo = {
  port: 5432,
  user: 'postgres',
  database: 'postgres',
  dataDir: '/var/lib/postgresql/data',
  backupPath: '/backups/latest.dump',
};

/** pg_restore of the latest dump inside the db container: always two-person. */
export function restoreBackupStep(target: string, pg: PostgresInfo, precondition?: () => Promise<Check>): Step {
  const backupPath = pg.backupPath;
  return {
    id: 'restore-backup',
    title: 'Restore the latest dump (pg_restore)',
    risk: 'two-person',
    resource: 'db',
    describe: `pg_restore --clean ${backupPath} into the database`,
    ...(precondition ? { precondition } : {}),
    run: async () => {
      const r = await longActs.execInContainer({
        target,
        component: 'db',
        cmd: ['pg_restore', '--clean', '--if-exists', '-h', '/tmp', '-p', String(pg.port), '-U', pg.user, '-d', pg.database, backupPath],
      });
      if (r.exitCode !== 0) throw new Error(`pg_restore exited ${r.exitCode}: ${r.output.slice(-300)}`);
      return `restored ${backupPath}`;
    },
  };
}
