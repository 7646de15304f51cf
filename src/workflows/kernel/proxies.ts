/** The kernel's activity proxies, each with the timeouts and retries its kind of work needs. */
import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../../activities';
import { OPENING_ATTEMPTS } from '../contracts';

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
 * The incident's opening (its policy and maintenance window, src/activities/engine/opening.ts): one
 * ordinary activity, so one activity task's round trip comes before the first diagnostic instead of
 * two. Not a local activity: on replay the SDK resolves a local activity from its marker at once, and
 * the code after it (a runbook's first `patched()`) then runs ahead of the workflow task its patch
 * markers were recorded in; when the two tasks had been split (as under the suite's status queries),
 * the incident could no longer be replayed or queried. Three quick attempts, each bounding its window
 * read to WINDOW_READ_TIMEOUT_MS (2 s); on the last, a window that cannot be read is answered as not
 * known rather than failed.
 */
export const openingActs = proxyActivities<Activities>({
  startToCloseTimeout: '10 seconds',
  retry: { initialInterval: '200 milliseconds', backoffCoefficient: 2, maximumInterval: '1 second', maximumAttempts: OPENING_ATTEMPTS },
});

/** Seed 002: "Acknowledge the PagerDuty alert within 2 minutes". Retried until then, never longer. */
export const ackActs = proxyActivities<Activities>({
  scheduleToCloseTimeout: '2 minutes',
  startToCloseTimeout: '20 seconds',
  retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '20 seconds' },
});
