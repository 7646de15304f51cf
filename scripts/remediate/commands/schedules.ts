import { defineCommand } from '../command';
import { UsageError } from '../errors';

export default defineCommand({
  name: 'schedules',
  summary: "create or update the engine's schedules (daily TLS check)",
  usage: 'apply',
  operands: [{ name: 'action', complete: ['apply'] }],
  options: {},
  needs: 'client',
  prepare(ctx, cfg) {
    if (ctx.operands[0] !== 'apply') throw new UsageError('usage: remediate schedules apply');
    return async ({ client }) => {
      // Loaded when it runs (see incidents.ts): it brings the Temporal client's schedule API.
      const { applySchedules } = await import('../../../src/lib/schedules');
      const applied = await applySchedules(client, cfg);
      ctx.print(
        applied,
        applied.map((a) => `${a.state} ${a.scheduleId}: ${a.description}`).join('\n') || 'no schedules configured',
      );
      return 0;
    };
  },
});
