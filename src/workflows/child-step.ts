/** A step that runs another runbook as a child incident (INC-06, INC-12: "→ child INC-01", "→ child rollback"). */
import type { RunbookName } from './catalog';
import type { Check, RunbookContext, StepWork } from './kernel';

/**
 * What a step that opens a child incident does; its title and risk come from the runbook's metadata.
 * `stepId` is the step's own id: the child's single-approver steps run under that step's approval.
 */
export function childIncidentStep(
  ctx: RunbookContext,
  stepId: string,
  opts: {
    runbook: RunbookName;
    reason: string;
    params?: Record<string, unknown>;
    precondition?: () => Promise<Check>;
    /** What the approver is told (default: the child runbook and the reason). */
    describe?: string;
  },
): StepWork<string> {
  return {
    // A lock of its own: the child takes the locks of the resources it acts on.
    resource: `child:${opts.runbook}`,
    // Nor does it spend the action budget: the child's own steps do.
    acts: false,
    describe: opts.describe ?? `open a child ${opts.runbook} incident: ${opts.reason}`,
    ...(opts.precondition ? { precondition: opts.precondition } : {}),
    run: async () => {
      const rec = await ctx.child(opts.runbook, {
        reason: opts.reason,
        stepId,
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
