/** Small things every part of the kernel uses. Workflow code: the clock is the workflow's. */
import { ActivityFailure, ApplicationFailure } from '@temporalio/workflow';

export const nowIso = (): string => new Date().toISOString();

/** What went wrong, in the words of the activity (or workflow code) that failed. */
export function failureMessage(err: unknown): string {
  if (err instanceof ActivityFailure && err.cause) return err.cause.message;
  if (err instanceof ApplicationFailure) return err.message;
  return err instanceof Error ? err.message : String(err);
}
