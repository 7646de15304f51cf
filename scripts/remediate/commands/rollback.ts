import { defineCommand } from '../command';
import { buildStart, parseParams, START_OPTIONS, startIncident } from '../launch';

export default defineCommand({
  name: 'rollback',
  summary: 'roll back to the last known good release',
  usage: '--target T [--tag TAG] [--services a,b] [--dry-run] [--wait] [options]',
  options: {
    ...START_OPTIONS,
    services: {
      type: 'string',
      value: 'a,b',
      help: "services in rollout order (default: the target's rollback order)",
    },
    tag: { type: 'string', value: 'TAG', help: 'roll back to this tag (default: last known good)' },
    'migration-downgrade': { type: 'boolean', help: 'downgrade the newest migration (needs approval)' },
    'restore-backup': { type: 'boolean', help: 'restore the latest backup (needs two approvers)' },
  },
  maxOperands: 0,
  needs: 'client',
  prepare(ctx, cfg) {
    const { opts } = ctx;
    // Rollback's own options become runbook parameters.
    const params = parseParams(opts.param);
    if (opts.services)
      params.services = opts.services
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
    if (opts.tag) params.tag = opts.tag;
    if (opts['migration-downgrade']) params.migrationDowngrade = true;
    if (opts['restore-backup']) params.restoreBackup = true;
    const built = buildStart(cfg, 'rollback', opts, params);
    return async (s) => startIncident(ctx, s.client, cfg, built, s.name);
  },
});
