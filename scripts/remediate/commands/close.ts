import { closeSignal } from '../../../src/workflows/contracts';
import { defineCommand } from '../command';
import { Failure } from '../errors';
import { incidentId, status, type SealedCloseRequest } from '../incidents';

export default defineCommand({
  name: 'close',
  summary: 'close an escalated incident after handling it',
  usage: '<incident-id> [--note TEXT]',
  description: 'Only escalated incidents are closed by hand; to stop one that is still running, use `remediate abort`.',
  operands: [{ name: 'incident-id' }],
  options: { note: { type: 'string', value: 'TEXT', help: 'what you did (kept in the timeline and the post-mortem)' } },
  needs: 'client',
  prepare(ctx) {
    const id = incidentId(ctx.operands[0]);
    return async ({ client, name }) => {
      const rec = await status(client, id);
      if (rec.phase !== 'ESCALATED')
        throw new Failure(
          `${id} is ${rec.phase}, not escalated; only escalated incidents are closed by hand (to stop it now: remediate abort ${id} --reason "...")`,
        );
      const request: SealedCloseRequest = { incidentId: id, ...(ctx.opts.note ? { note: ctx.opts.note } : {}) };
      await client.workflow.getHandle(id).signal<[SealedCloseRequest]>(closeSignal.name, request);
      ctx.print({ closed: id, by: name }, `closed ${id} as ${name}`);
      return 0;
    };
  },
});
