import { defineCommand } from '../command';
import { decide, decisionOperands } from '../incidents';

export default defineCommand({
  name: 'reject',
  summary: 'reject a step that waits for approval (the incident escalates)',
  usage: '<incident-id> <step-id> [--comment TEXT]',
  operands: [{ name: 'incident-id' }, { name: 'step-id' }],
  options: { comment: { type: 'string', value: 'TEXT', help: 'why (kept in the timeline)' } },
  needs: 'client',
  prepare(ctx) {
    const target = decisionOperands('reject', ctx.operands);
    return async ({ client, name }) => {
      const res = await decide(client, 'reject', target, ctx.opts.comment);
      ctx.print(
        res,
        `rejected ${target.stepId} on ${target.id} as ${name}: step is now ${res.state} (${res.approvals.length} approval(s): ${res.approvals.join(', ') || 'none'})`,
      );
      return 0;
    };
  },
});
