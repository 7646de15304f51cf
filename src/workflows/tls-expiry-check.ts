/**
 * The daily certificate check run by a Temporal Schedule (`remediate schedules apply`, see
 * src/lib/schedules.ts). It looks at the certificate the endpoint serves and, when fewer days are
 * left than the target's threshold, opens the INC-13 incident under the same workflow id an alert
 * would get, so a check and an alert for the same certificate meet in one incident.
 */
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import { ParentClosePolicy, proxyActivities, startChild } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { incidentWorkflowId, type IncidentInput, type IncidentPolicy } from './contracts';

export interface TlsCheckInput {
  target: string;
  /** The policy the opened incident runs with (approvers, tiers, deadlines). */
  policy: IncidentPolicy;
}

export interface TlsCheckResult {
  target: string;
  /** `ok`: nothing to do; `opened`: this check opened the incident; `already-open`: one was running. */
  outcome: 'ok' | 'opened' | 'already-open';
  daysLeft?: number;
  threshold: number;
  /** The incident this check opened or found open; absent when the certificate is fine. */
  incidentId?: string;
  detail: string;
}

/** The alert name a check-opened incident carries; routes like the alert of the same name. */
export const TLS_CHECK_ALERT = 'TlsCertificateExpiring';

const acts = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '10 seconds', maximumAttempts: 5 },
});

/** Daily TLS expiry check: opens the tlsExpiry incident before the certificate expires. */
export async function tlsExpiryCheck(input: TlsCheckInput): Promise<TlsCheckResult> {
  const [settings, served] = await Promise.all([
    acts.tlsSettings({ target: input.target }),
    acts.tlsServedCertificate({ target: input.target }),
  ]);
  const threshold = settings.minDaysLeft;
  const base = { target: input.target, threshold, ...(served.daysLeft !== undefined ? { daysLeft: served.daysLeft } : {}) };
  if (served.ok && (served.daysLeft ?? 0) >= threshold) {
    return { ...base, outcome: 'ok', detail: `certificate valid until ${served.notAfter} (${served.daysLeft} days left)` };
  }
  const why = served.ok
    ? `certificate on ${served.endpoint} expires ${served.notAfter} (${served.daysLeft} days left, threshold ${threshold})`
    : `TLS handshake with ${served.endpoint} fails: ${served.error ?? 'unknown'}`;
  const incidentId = incidentWorkflowId('tlsExpiry', input.target);
  const incident: IncidentInput = {
    target: input.target,
    requestedBy: 'schedule:tls-expiry-check',
    policy: input.policy,
    summary: why,
    alert: {
      source: 'generic',
      name: TLS_CHECK_ALERT,
      status: 'firing',
      labels: { target: input.target },
      annotations: { summary: why },
      receivedAt: new Date().toISOString(),
    },
  };
  try {
    // Abandoned on purpose: the incident waits for humans; the check ends once it has started it.
    await startChild('tlsExpiry', { workflowId: incidentId, args: [incident], parentClosePolicy: ParentClosePolicy.ABANDON });
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) return { ...base, outcome: 'already-open', incidentId, detail: `${why}; incident already open` };
    throw err;
  }
  return { ...base, outcome: 'opened', incidentId, detail: `${why}; opened ${incidentId}` };
}
