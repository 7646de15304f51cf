/** The two ways a command fails, and the exit code each stands for. */

/** Bad usage or input, found before anything is sent (a missing or unsafe credential too): exit 2. */
export class UsageError extends Error {}

/** The operation was tried and failed, was refused, or did not resolve: exit 1. */
export class Failure extends Error {}

/** The exit code of an error a command ended with. */
export function exitCodeOf(err: unknown): 1 | 2 {
  return err instanceof UsageError ? 2 : 1;
}
