/** The kernel's activity proxies, each with the timeouts and retries its kind of work needs. */
import { proxyActivities, proxyLocalActivities } from '@temporalio/workflow';
import type { Activities } from '../../activities';

/** Diagnostics and checks: short, retried with backoff, then a clear failure. */
export const acts = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '10 seconds', maximumAttempts: 5 },
});

/** Mitigations that take long (recreate, vacuum, restore): heartbeat, fewer attempts. */
export const longActs = proxyActivities<Activities>({
  startToCloseTimeout: '15 minutes',
  heartbeatTimeout: '1 minute',
  retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 3 },
});

/** Notifications are retried on their own and never awaited by a mitigation. */
export const notifyActs = proxyActivities<Activities>({
  startToCloseTimeout: '15 seconds',
  retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 8 },
});

/** The worker's configuration, read once per incident. */
export const policyActs = proxyActivities<Activities>({
  startToCloseTimeout: '10 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds' },
});

/**
 * The incident's opening (its policy and maintenance window, src/activities/engine/opening.ts): a
 * local activity, so no activity task's round trip through the server comes before the first
 * diagnostic. Three quick attempts, each bounding its window read to WINDOW_READ_TIMEOUT_MS (2 s);
 * on the last, a window that cannot be read is answered as not known rather than failed. The
 * start-to-close timeout is only a backstop, longer than all three attempts together (about 6.6 s):
 * the SDK keeps an attempt's start-to-close timer running after the attempt failed, and a shorter
 * one would cut a later attempt short.
 */
export const openingActs = proxyLocalActivities<Activities>({
  startToCloseTimeout: '10 seconds',
  retry: { initialInterval: '200 milliseconds', backoffCoefficient: 2, maximumInterval: '1 second', maximumAttempts: 3 },
});

/** Seed 002: "Acknowledge the PagerDuty alert within 2 minutes". Retried until then, never longer. */
export const ackActs = proxyActivities<Activities>({
  scheduleToCloseTimeout: '2 minutes',
  startToCloseTimeout: '20 seconds',
  retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '20 seconds' },
});
