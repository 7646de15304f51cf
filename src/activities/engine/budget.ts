/**
 * Asks the target's action budget keeper (src/workflows/action-budget.ts) to count one action, or to
 * refuse it. Update-with-start is a client call, which workflow code cannot make, hence this
 * activity; its answer is recorded in the incident's history.
 */
import { Context } from '@temporalio/activity';
import { WithStartWorkflowOperation, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import type { ActivityDeps } from './deps';
import { targetConfig } from './deps';
import { ErrorType, permanent } from './errors';
import {
  budgetWorkflowId,
  reserveActionUpdate,
  type BudgetAnswer,
  type BudgetKeeperInput,
  type BudgetRequest,
} from '../../workflows/contracts';

/** The keeper of `target` answers `req`, started on `taskQueue` if it does not run yet. */
export async function askBudgetKeeper(
  client: Client,
  taskQueue: string,
  target: string,
  req: BudgetRequest,
): Promise<BudgetAnswer> {
  const keeperInput: BudgetKeeperInput = { target, idleMs: req.windowMs };
  const start = new WithStartWorkflowOperation('actionBudget', {
    workflowId: budgetWorkflowId(target),
    taskQueue,
    args: [keeperInput],
    workflowIdConflictPolicy: 'USE_EXISTING',
  });
  try {
    return await client.workflow.executeUpdateWithStart(reserveActionUpdate, {
      args: [req],
      startWorkflowOperation: start,
    });
  } catch (err) {
    // The keeper's validator refused the request: asking again cannot change that.
    if (err instanceof WorkflowUpdateFailedError)
      throw permanent(
        ErrorType.BadInput,
        `the action budget of ${target} refused the request: ${err.cause?.message ?? err.message}`,
      );
    throw err;
  }
}

export function createBudgetActivities(deps: ActivityDeps) {
  async function reserveAction(input: BudgetRequest & { target: string }): Promise<BudgetAnswer> {
    targetConfig(deps, input.target);
    if (!deps.client) throw permanent(ErrorType.NotConfigured, 'the action budget needs a Temporal client');
    const { target, ...req } = input;
    return askBudgetKeeper(deps.client, Context.current().info.taskQueue, target, req);
  }
  return { reserveAction };
}
