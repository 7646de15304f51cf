import { defineCommand } from '../command';
import { decide, decisionOperands } from '../incidents';

export default defineCommand({
  name: 'approve',
  summary: 'approve a step that waits for approval',
  usage: '<incident-id> <step-id> [--comment TEXT]',
  description: 'You cannot approve an incident you opened; two-person steps need two distinct approvers.',
  operands: [{ name: 'incident-id' }, { name: 'step-id' }],
  options: { comment: { type: 'string', value: 'TEXT', help: 'why (kept in the timeline)' } },
  needs: 'client',
  prepare(ctx) {
    const target = decisionOperands('approve', ctx.operands);
    return async ({ client, name }) => {
      const res = await decide(client, 'approve', target, ctx.opts.comment);
      ctx.print(
        res,
        `approved ${target.stepId} on ${target.id} as ${name}: step is now ${res.state} (${res.approvals.length} approval(s): ${res.approvals.join(', ') || 'none'})`,
      );
      return 0;
    };
  },
});
