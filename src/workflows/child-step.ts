/** A step that runs another runbook as a child incident (INC-06, INC-12: "→ child INC-01", "→ child rollback"). */
import type { RunbookName } from './catalog';
import type { Risk } from './contracts';
import type { Check, RunbookContext, Step } from './kernel';

export function childIncidentStep(
  ctx: RunbookContext,
  opts: {
    id: string;
    title: string;
    risk: Risk;
    runbook: RunbookName;
    reason: string;
    params?: Record<string, unknown>;
    precondition?: () => Promise<Check>;
  },
): Step {
  return {
    id: opts.id,
    title: opts.title,
    risk: opts.risk,
    // A lock of its own: the child takes the locks of the resources it acts on.
    resource: `child:${opts.runbook}`,
    describe: `open a child ${opts.runbook} incident: ${opts.reason}`,
    ...(opts.precondition ? { precondition: opts.precondition } : {}),
    run: async () => {
      const rec = await ctx.child(opts.runbook, {
        reason: opts.reason,
        stepId: opts.id,
        ...(opts.params ? { params: opts.params } : {}),
      });
      // Only a child that fixed its problem (or found none) lets this incident go on to verification.
      if (rec.outcome !== 'resolved' && rec.outcome !== 'false-alarm') {
        throw new Error(`child incident ${rec.incidentId} ended ${rec.outcome ?? 'without an outcome'}: ${rec.escalations.join('; ') || rec.diagnosis || ''}`);
      }
      return `child incident ${rec.incidentId} ${rec.outcome}: ${rec.diagnosis ?? ''}`;
    },
  };
}
