import { RUNBOOKS } from '../../../src/workflows/catalog';
import { defineCommand } from '../command';
import { UsageError } from '../errors';
import { buildStart, parseParams, START_OPTIONS, startIncident } from '../launch';

export default defineCommand({
  name: 'start',
  summary: 'open an incident by hand',
  usage: '<runbook> --target T [--dry-run] [--wait] [options]',
  description: 'Opens an incident with the runbook on the target, as you; `remediate runbooks` lists the runbooks.',
  operands: [{ name: 'runbook', complete: Object.keys(RUNBOOKS) }],
  options: START_OPTIONS,
  needs: 'client',
  prepare(ctx, cfg) {
    const runbook = ctx.operands[0];
    if (!runbook) throw new UsageError('usage: remediate start <runbook> --target T');
    const built = buildStart(cfg, runbook, ctx.opts, parseParams(ctx.opts.param));
    return async (s) => startIncident(ctx, s.client, cfg, built, s.name);
  },
});
