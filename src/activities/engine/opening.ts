/**
 * What an incident reads before it diagnoses, in one answer: the policy it runs under (policy.ts) and
 * whether a maintenance window is open on its target (maintenance.ts). One activity, so one activity
 * task's round trip through the server comes before the first diagnostic instead of two.
 */
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { ActiveWindow } from '../../lib/maintenance';
import type { PolicyScope } from '../../lib/policy';
import { OPENING_ATTEMPTS, type IncidentPolicy } from '../../workflows/contracts';
import { describeError } from './errors';

/** The two reads the opening is made of: the engine's own (createActivities), or stubs in tests. */
export interface OpeningReads {
  incidentPolicy(scope: PolicyScope): Promise<IncidentPolicy & { overrides: number[] }>;
  maintenanceWindowAt(input: { target: string }): Promise<{ window?: ActiveWindow; at: string }>;
}

/** Whether a window is open on the target, or that it is not known, and why. */
export type MaintenanceAnswer = { known: true; window?: ActiveWindow; at: string } | { known: false; why: string };

/**
 * A window read that has not answered by then is given up on for this attempt: the attempt must end
 * before its start-to-close timeout, so that the last one can still answer "not known".
 */
export const WINDOW_READ_TIMEOUT_MS = 2_000;

export function createOpeningActivities(reads: OpeningReads) {
  /**
   * The incident's policy, and whether a maintenance window is open on its target. An unknown target
   * fails it (as `incidentPolicy` does). A window read that fails for good (refused, not configured),
   * or still fails on the last attempt the retry policy allows, is answered as not known, with why:
   * the policy is known all the same, and the incident escalates rather than act.
   */
  async function incidentOpening(scope: PolicyScope): Promise<{ policy: IncidentPolicy & { overrides: number[] }; maintenance: MaintenanceAnswer }> {
    const policy = await reads.incidentPolicy(scope);
    let maintenance: MaintenanceAnswer;
    try {
      maintenance = { known: true, ...(await within(WINDOW_READ_TIMEOUT_MS, reads.maintenanceWindowAt({ target: scope.target }))) };
    } catch (err) {
      const permanent = err instanceof ApplicationFailure && err.nonRetryable;
      if (!permanent && !lastAttempt()) throw err;
      maintenance = { known: false, why: describeError(err) };
    }
    return { policy, maintenance };
  }
  return { incidentOpening };
}

/**
 * Whether this attempt is the last its retry policy allows (never, with unlimited attempts). A server
 * that does not hand the activity its retry policy (the time-skipping test server) is taken to run
 * the workflow's, OPENING_ATTEMPTS.
 */
function lastAttempt(): boolean {
  const { attempt, retryPolicy } = Context.current().info;
  const max = retryPolicy ? retryPolicy.maximumAttempts : OPENING_ATTEMPTS;
  return max !== undefined && max > 0 && attempt >= max;
}

async function within<T>(ms: number, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}
