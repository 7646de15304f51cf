/**
 * Asks the per-target guard workflow for the lock on a resource. signalWithStart is a client call,
 * which workflow code cannot make, hence this activity; the grant comes back as a signal.
 */
import { Context } from '@temporalio/activity';
import type { ActivityDeps } from './deps';
import { targetConfig } from './deps';
import { ErrorType, permanent } from './errors';
import { acquireLockSignal, guardWorkflowId, type GuardInput, type LockRequest } from '../../workflows/contracts';

export function createGuardActivities(deps: ActivityDeps) {
  async function requestTargetLock(input: LockRequest & { target: string; resource: string; cooldownMs: number }): Promise<{ guardId: string }> {
    targetConfig(deps, input.target);
    if (!deps.client) throw permanent(ErrorType.NotConfigured, 'the guard needs a Temporal client');
    const guardId = guardWorkflowId(input.target, input.resource);
    const guardInput: GuardInput = {
      target: input.target,
      resource: input.resource,
      leaseMs: 15 * 60_000,
      // Remember cooldowns well past their end before the guard may go idle and forget them.
      idleMs: Math.max(3600_000, input.cooldownMs * 2),
    };
    await deps.client.workflow.signalWithStart('targetGuard', {
      workflowId: guardId,
      taskQueue: Context.current().info.taskQueue,
      args: [guardInput],
      signal: acquireLockSignal,
      signalArgs: [{ requester: input.requester, requestId: input.requestId, actionKey: input.actionKey }],
    });
    return { guardId };
  }
  return { requestTargetLock };
}
