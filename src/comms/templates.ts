/**
 * Communication templates from the playbooks, rendered from the incident record:
 * - seed 002 §6, status page: Investigating / Identified / Resolved (plus Monitoring between the
 *   last two, the usual status-page stage while a fix is verified);
 * - seed 001, support: the initial response and the resolution summary.
 *
 * Pure functions of their input (no clock, no I/O), so the kernel renders them in workflow code
 * and the same text lands in the notification, the incident record and the post-mortem.
 */
import type { IncidentRecord, Severity } from '../workflows/contracts';

export type StatusStage = 'investigating' | 'identified' | 'monitoring' | 'resolved';

export interface Message {
  title: string;
  text: string;
}

/** Seed 001's customer-facing severity words. */
export const SEVERITY_WORD: Record<Severity, string> = { 1: 'Critical', 2: 'High', 3: 'Medium', 4: 'Low' };

/** Minutes between updates while an incident is open, by severity; 0 means no scheduled updates. */
export type UpdateCadence = Record<`${Severity}`, number>;

/**
 * Seed 002: a SEV-1 status page promises "an update within 15 minutes"; seed 001 keeps customers
 * "updated every 30 minutes" for critical issues and answers High within the hour, Medium in 4 h;
 * SEV-4 is "ticket only".
 */
export const DEFAULT_CADENCE_MS: UpdateCadence = { 1: 15 * 60_000, 2: 30 * 60_000, 3: 60 * 60_000, 4: 0 };

/**
 * Seed 002 §2, the severity matrix: who is engaged, and how fast. "SEV-1 | Immediate | IC + Sergey Bar
 * + SRE", "SEV-2 | <15 min | IC + SRE", "SEV-3 | <1 hour | On-call engineer", "SEV-4 | Next business
 * day | Ticket only". The handles are settings (`policy.severityContacts`); these are their defaults.
 */
export const SEVERITY_MATRIX: Record<1 | 2 | 3 | 4, { response: string; contacts: string[]; ticketOnly?: true }> = {
  1: { response: 'immediate', contacts: ['@incident-commander', '@sergey-bar', '@sre'] },
  2: { response: 'within 15 minutes', contacts: ['@incident-commander', '@sre'] },
  3: { response: 'within 1 hour', contacts: ['@on-call'] },
  4: { response: 'next business day', contacts: [], ticketOnly: true },
};

const minutes = (ms: number): number => Math.max(1, Math.round(ms / 60_000));

function durationMinutes(rec: IncidentRecord, now: string): number {
  return Math.max(0, Math.round((Date.parse(rec.closedAt ?? now) - Date.parse(rec.openedAt)) / 60_000));
}

/** What was done, in plain words, from the actions that ran. */
export function actionsDone(rec: IncidentRecord): string[] {
  return rec.actions.filter((a) => a.state === 'done').map((a) => `${a.title}${a.detail ? ` (${a.detail})` : ''}`);
}

function lastVerification(rec: IncidentRecord): string | undefined {
  const v = [...rec.timeline].reverse().find((t) => t.event.startsWith('verification passed'));
  return v?.event.replace(/^verification passed: /, '');
}

function sentence(s: string): string {
  const t = s.trim();
  return t.endsWith('.') ? t : `${t}.`;
}

/** Seed 002 §6 status page, one stage. `now` is the workflow's clock, for durations. */
export function statusPage(stage: StatusStage, rec: IncidentRecord, opts: { cadenceMs: number; now: string }): Message {
  const subject = `${rec.title} (${rec.target})`;
  const next = opts.cadenceMs > 0 ? ` We will provide an update within ${minutes(opts.cadenceMs)} minutes.` : '';
  switch (stage) {
    case 'investigating':
      return {
        title: `[Investigating] ${subject}`,
        text: `We are investigating ${rec.title.toLowerCase()} on ${rec.target}. Some requests may be failing or experiencing increased latency.${next}`,
      };
    case 'identified': {
      const cause = rec.rootCause ?? rec.diagnosis ?? 'the cause';
      return {
        title: `[Identified] ${subject}`,
        text: `We have identified the root cause: ${sentence(cause)} A mitigation is in progress. We are monitoring the situation.${next}`,
      };
    }
    case 'monitoring': {
      const done = actionsDone(rec);
      return {
        title: `[Monitoring] ${subject}`,
        text: `A fix has been applied${done.length ? `: ${done.join('; ')}` : ''}. We are monitoring the results.${next}`,
      };
    }
    case 'resolved':
      return {
        title: `[Resolved] ${subject}`,
        text:
          `The issue has been resolved. All services are operating normally. ` +
          `Total duration: ${durationMinutes(rec, opts.now)} minutes. A post-mortem will be published within 48 hours.`,
      };
  }
}

/** The stage a scheduled update reports, from where the incident is. */
export function currentStage(rec: IncidentRecord): StatusStage {
  if (rec.outcome === 'resolved') return 'resolved';
  if (rec.phase === 'RESOLVE') return 'monitoring';
  return rec.rootCause ? 'identified' : 'investigating';
}

/** Seed 001's initial response to the person who reported the problem. */
export function initialResponse(rec: IncidentRecord, opts: { customer?: string; cadenceMs: number; now: string }): Message {
  const expected = opts.cadenceMs > 0 ? new Date(Date.parse(opts.now) + opts.cadenceMs).toISOString() : 'when we have news';
  const every = opts.cadenceMs > 0 ? `every ${minutes(opts.cadenceMs)} minutes` : 'as we learn more';
  return {
    title: `Re: ${rec.title} (${rec.incidentId})`,
    text: [
      `Hi ${opts.customer ?? 'there'},`,
      '',
      "Thank you for reporting this issue. We've received your report and are investigating immediately.",
      '',
      `**Issue**: ${rec.summary ?? rec.diagnosis ?? rec.title}`,
      '**Status**: Investigating',
      `**Expected Update**: ${expected}`,
      `**Severity**: ${SEVERITY_WORD[rec.severity]}`,
      '',
      `We'll keep you updated ${every}.`,
      '',
      'Best regards,',
      'Support Team',
    ].join('\n'),
  };
}

/** Seed 001's resolution summary. */
export function resolutionSummary(rec: IncidentRecord, opts: { customer?: string }): Message {
  const done = actionsDone(rec);
  return {
    title: `Resolved: ${rec.title} (${rec.incidentId})`,
    text: [
      `Hi ${opts.customer ?? 'there'},`,
      '',
      "We've successfully resolved the issue you reported.",
      '',
      `**Issue**: ${rec.summary ?? rec.title}`,
      `**Root Cause**: ${rec.rootCause ?? rec.diagnosis ?? 'under investigation'}`,
      `**Solution**: ${done.length ? done.join('; ') : 'no change was needed'}`,
      `**Verification**: ${lastVerification(rec) ?? 'confirmed by the on-call engineer'}`,
      '',
      'If you continue to experience issues, please let us know immediately.',
      '',
      'Best regards,',
      'Support Team',
    ].join('\n'),
  };
}

/**
 * Seed 002 §6, "User Notification — Data Incident", filled in from the incident: the notice to the
 * affected users. The engine drafts it; people decide whom it goes to (GDPR Article 34) and send it.
 */
export function dataIncidentNotice(opts: { date: string; description: string; done: string[]; youShould: string[] }): Message {
  return {
    title: 'Important Security Notice',
    text: [
      `We identified and resolved a security incident on ${opts.date} that may have affected your account. ${opts.description}`,
      '',
      `**What we've done:** ${opts.done.join('; ')}.`,
      `**What you should do:** ${opts.youShould.join('; ')}.`,
      '',
      'If you have questions, contact security@alfred.ai.',
    ].join('\n'),
  };
}
