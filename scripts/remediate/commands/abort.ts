import { closeSignal } from '../../../src/workflows/contracts';
import { defineCommand } from '../command';
import { Failure, UsageError } from '../errors';
import { incidentId, status, type SealedCloseRequest } from '../incidents';

/** `remediate abort`: stops an incident before it finishes; the workflow says in its timeline whether it counted. */
export default defineCommand({
  name: 'abort',
  summary: 'stop an incident before it finishes (an approver; it stops at its next safe point)',
  usage: '<incident-id> --reason TEXT',
  description:
    'Stops the incident at its next safe point, never mid-action, and closes it as aborted. Only an approver of\n' +
    'the incident may abort it; the workflow refuses anyone else, in its timeline.',
  operands: [{ name: 'incident-id' }],
  options: {
    reason: { type: 'string', value: 'TEXT', help: 'why (required; kept in the timeline and the post-mortem)' },
  },
  needs: 'client',
  prepare(ctx) {
    const reason = ctx.opts.reason;
    if (!reason?.trim())
      throw new UsageError('usage: remediate abort <incident-id> --reason TEXT (an abort needs a reason)');
    const id = incidentId(ctx.operands[0]);
    return async ({ client, name }) => {
      const rec = await status(client, id);
      if (rec.phase === 'POST-MORTEM' || rec.phase === 'CLOSED') throw new Failure(`${id} is already ${rec.phase}`);
      const request: SealedCloseRequest = { incidentId: id, abort: true, reason };
      await client.workflow.getHandle(id).signal<[SealedCloseRequest]>(closeSignal.name, request);
      ctx.print(
        { aborted: id, by: name, reason },
        `abort of ${id} sent as ${name}; it stops at its next safe point (remediate show ${id})`,
      );
      return 0;
    };
  },
});
