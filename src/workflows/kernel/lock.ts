/**
 * The per-target resource lock: one incident at a time acts on a resource. Each resource has a guard
 * workflow (target-guard.ts); the request goes to it through an activity (signalWithStart), the grant
 * comes back as a signal, the release goes to the guard as a signal, even while the incident is being
 * cancelled. The grant carries when the action last had an effect there, for the cooldown.
 */
import { CancellationScope, condition, getExternalWorkflowHandle } from '@temporalio/workflow';
import { guardWorkflowId, releaseLockSignal, type IncidentPolicy, type LockGrant } from '../contracts';
import { acts } from './proxies';
import type { Step } from './runbook';

/** One step's request for the lock on its resource. */
export interface LockRequestRef {
  requestId: string;
  /** The guard workflow of the resource. */
  guardId: string;
  /** What the guard remembers for the cooldown: the step's id. */
  actionKey: string;
}

export interface TargetLockDeps {
  /** The incident's workflow: the requester the guard signals back. */
  workflowId: string;
  runId: string;
  target: string;
  /** The policy the incident runs under now (cooldown, how long to wait for the lock). */
  policy: () => IncidentPolicy;
  /** Adds a line to the timeline. */
  note: (event: string) => void;
}

export type TargetLock = ReturnType<typeof createTargetLock>;

export function createTargetLock(deps: TargetLockDeps) {
  const { workflowId, runId, target, note } = deps;
  const grants = new Map<string, LockGrant>();

  /** The "lockGranted" signal from a guard. */
  function granted(g: LockGrant): void {
    grants.set(g.requestId, g);
  }

  /**
   * Asks the guard of the step's resource for the lock and waits for the grant, at most
   * `policy.lockWaitMs`. Undefined when it did not come in time: the request is then withdrawn.
   */
  async function acquire(step: Step): Promise<LockRequestRef | undefined> {
    const policy = deps.policy();
    const requestId = `${workflowId}/${runId}/${step.id}`;
    const guardId = guardWorkflowId(target, step.resource);
    const ref: LockRequestRef = { requestId, guardId, actionKey: step.id };
    await acts.requestTargetLock({
      target,
      resource: step.resource,
      requester: workflowId,
      requestId,
      actionKey: step.id,
      cooldownMs: policy.cooldownMs,
    });
    if (!(await condition(() => grants.has(requestId), deps.policy().lockWaitMs))) {
      await release(ref, false);
      return undefined;
    }
    return ref;
  }

  /** The grant of a request that was granted. */
  function grantOf(ref: LockRequestRef): LockGrant {
    return grants.get(ref.requestId) as LockGrant;
  }

  /** Gives the lock back (or withdraws the request); `performed`: the action had an effect, the cooldown starts. */
  async function release(ref: LockRequestRef, performed: boolean): Promise<void> {
    const { guardId, requestId, actionKey } = ref;
    // Must reach the guard even if this incident is being cancelled.
    await CancellationScope.nonCancellable(async () => {
      try {
        await getExternalWorkflowHandle(guardId).signal(releaseLockSignal, { requestId, actionKey, performed });
      } catch (err) {
        note(`could not release lock ${guardId}: ${(err as Error).message}`);
      }
    });
  }

  return { granted, acquire, grantOf, release };
}
