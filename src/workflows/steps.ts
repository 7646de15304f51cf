/** Steps more than one runbook uses. */
import { longActs, type Check, type Step } from './kernel';

/** pg_restore of the latest dump inside the db container: always two-person. */
export function restoreBackupStep(target: string, backupPath: string, precondition?: () => Promise<Check>): Step {
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
        cmd: ['pg_restore', '--clean', '--if-exists', '-h', '/tmp', '-U', 'postgres', '-d', 'alfred', backupPath],
      });
      if (r.exitCode !== 0) throw new Error(`pg_restore exited ${r.exitCode}: ${r.output.slice(-300)}`);
      return `restored ${backupPath}`;
    },
  };
}
