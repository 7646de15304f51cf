import { defineCommand } from '../command';
import { incidentId, status } from '../incidents';
import { renderIncident } from '../render';

export default defineCommand({
  name: 'show',
  summary: 'one incident: phase, findings, pending steps, actions',
  usage: '<incident-id>',
  operands: [{ name: 'incident-id' }],
  options: {},
  needs: 'client',
  prepare(ctx) {
    const id = incidentId(ctx.operands[0]);
    return async ({ client }) => {
      const rec = await status(client, id);
      ctx.print(rec, renderIncident(rec));
      return 0;
    };
  },
});
