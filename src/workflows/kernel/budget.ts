/**
 * The target's action budget, as one incident uses it: before a step acts, the target's keeper
 * (action-budget.ts) counts the action or refuses it; after, the incident tells it whether the
 * action ran. The request goes through an activity (update-with-start), so its answer is recorded in
 * this incident's history; the release is a signal, sent even while the incident is being cancelled.
 */
import { CancellationScope, getExternalWorkflowHandle } from '@temporalio/workflow';
import { budgetWorkflowId, releaseActionSignal, type ActionBudget, type BudgetAnswer } from '../contracts';
import { acts } from './proxies';
import type { Step } from './runbook';

/** An action the keeper counted, to be released once the step is over. */
export interface BudgetReservation {
  requestId: string;
  keeperId: string;
}

export interface ActionBudgetDeps {
  /** The incident's workflow. */
  workflowId: string;
  runId: string;
  target: string;
  /** Adds a line to the timeline. */
  note: (event: string) => void;
}

export function createActionBudget(deps: ActionBudgetDeps) {
  const { workflowId, runId, target, note } = deps;

  /**
   * Asks to count the step's action against `budget`. `approvedBy`: the people who approved the step,
   * whose decision may take it past a spent budget. The reservation is set when the keeper granted it.
   */
  async function reserve(
    step: Step,
    budget: ActionBudget,
    approvedBy: string[] | undefined,
  ): Promise<{ answer: BudgetAnswer; reservation?: BudgetReservation }> {
    const requestId = `${workflowId}/${runId}/${step.id}`;
    const answer = await acts.reserveAction({
      target,
      requestId,
      incidentId: workflowId,
      stepId: step.id,
      resource: step.resource,
      maxActions: budget.maxActions,
      windowMs: budget.windowMs,
      ...(approvedBy && approvedBy.length > 0 ? { approvedBy } : {}),
    });
    return answer.granted ? { answer, reservation: { requestId, keeperId: budgetWorkflowId(target) } } : { answer };
  }

  /** After the step: `performed`, its action ran (or began to), and stays counted; else it is uncounted. */
  async function release(r: BudgetReservation, performed: boolean): Promise<void> {
    // Must reach the keeper even if this incident is being cancelled.
    await CancellationScope.nonCancellable(async () => {
      try {
        await getExternalWorkflowHandle(r.keeperId).signal(releaseActionSignal, { requestId: r.requestId, performed });
      } catch (err) {
        note(`could not tell the action budget of ${target} how ${r.requestId} ended: ${(err as Error).message}`);
      }
    });
  }

  return { reserve, release };
}
