/**
 * One guard per target resource (e.g. alfred/redis): a durable lock so two incidents never act on
 * the same thing at once, and the memory of when each action last had an effect there, so a
 * mitigation is not repeated within its cooldown (a target that stays broken escalates instead of
 * looping). Requests arrive by signalWithStart (an activity); grants go back as signals.
 */
import {
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  log,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import {
  acquireLockSignal,
  guardStateQuery,
  lockGrantedSignal,
  releaseLockSignal,
  type GuardInput,
  type LockRequest,
} from './contracts';

/** Grants per run before the history is rolled over with continueAsNew. */
const GRANTS_PER_RUN = 200;

/** The per-target lock and cooldown memory. */
export async function targetGuard(input: GuardInput): Promise<void> {
  const queue: LockRequest[] = [...(input.queue ?? [])];
  const lastPerformed: Record<string, string> = { ...(input.lastPerformed ?? {}) };
  let holder: LockRequest | undefined;
  let grants = 0;

  setHandler(acquireLockSignal, (r) => {
    const known = holder?.requestId === r.requestId || queue.some((q) => q.requestId === r.requestId);
    if (!known) queue.push(r); // a retried request is not queued twice
  });
  setHandler(releaseLockSignal, (r) => {
    if (holder?.requestId === r.requestId) {
      if (r.performed) lastPerformed[r.actionKey] = new Date().toISOString();
      holder = undefined;
    } else {
      // A requester that gave up waiting withdraws its request.
      const i = queue.findIndex((q) => q.requestId === r.requestId);
      if (i >= 0) queue.splice(i, 1);
    }
  });
  setHandler(guardStateQuery, () => ({ ...(holder ? { holder } : {}), queue, lastPerformed, grants }));

  for (;;) {
    if (!(await condition(() => queue.length > 0, input.idleMs))) return;
    const next = queue.shift() as LockRequest;
    holder = next;
    try {
      await getExternalWorkflowHandle(next.requester).signal(lockGrantedSignal, {
        requestId: next.requestId,
        resource: `${input.target}/${input.resource}`,
        ...(lastPerformed[next.actionKey] ? { lastPerformedAt: lastPerformed[next.actionKey] } : {}),
      });
    } catch (err) {
      log.warn('lock requester is gone; skipping', { requester: next.requester, error: (err as Error).message });
      holder = undefined;
      continue;
    }
    grants += 1;
    if (!(await condition(() => holder === undefined, input.leaseMs))) {
      log.warn('lock lease expired; taking it back', { holder: next.requester, requestId: next.requestId });
      holder = undefined;
    }
    if (grants >= GRANTS_PER_RUN || workflowInfo().continueAsNewSuggested) {
      await continueAsNew<typeof targetGuard>({ ...input, lastPerformed, queue });
    }
  }
}
