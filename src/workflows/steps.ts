/** Steps more than one runbook uses. */
import type { TargetInfo } from '../activities/engine/target';
import { longActs, type Check, type StepWork } from './kernel';

export type PostgresInfo = NonNullable<TargetInfo['postgres']>;

export const DEFAULT_PG: PostgresInfo = {
  execUser: 'alfred',
  component: 'db',
  database: 'alfred',
  dataDir: '/var/lib/postgresql/data',
  backupPath: '/backups/alfred-latest.dump',
};

/**
 * pg_restore of the latest dump inside the db container, as seed 000 runs it (`docker compose exec db
 * pg_restore -U alfred -d alfred /backups/alfred-latest.dump`), with --clean --if-exists so the dump
 * replaces what is there rather than failing on every existing object. Each runbook that offers it
 * declares it two-person.
 */
export function restoreBackupWork(target: string, pg: PostgresInfo, precondition?: () => Promise<Check>): StepWork<'restore-backup'> {
  const backupPath = pg.backupPath;
  return {
    resource: 'db',
    describe: `pg_restore --clean ${backupPath} into the database`,
    ...(precondition ? { precondition } : {}),
    run: async () => {
      // Histories recorded before execUser existed replay with the user they ran as.
      const user = pg.execUser ?? pg.user ?? 'alfred';
      const r = await longActs.execInContainer({
        target,
        component: pg.component ?? 'db',
        cmd: ['pg_restore', '--clean', '--if-exists', '-U', user, '-d', pg.database, backupPath],
      });
      if (r.exitCode !== 0) throw new Error(`pg_restore exited ${r.exitCode}: ${r.output.slice(-300)}`);
      return `restored ${backupPath}`;
    },
  };
}
