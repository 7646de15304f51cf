/**
 * The Markdown report the support runbooks hand back: what was checked, the verdict, and a reply to
 * the customer in seed 001's templates (the initial response while it is still open, the resolution
 * summary once there is an answer). Pure: the same facts always give the same text, so it is
 * unit-tested without Temporal.
 */
import type { Severity } from './contracts';

export type ReportStatus = 'answered' | 'nothing-wrong' | 'mitigation-proposed' | 'escalated';

/** Where a diagnose-first plan leaves the case: nothing wrong, escalated, or a fix proposed. */
export function reportStatus(p: { falseAlarm?: boolean; escalate?: string }): ReportStatus {
  return p.falseAlarm ? 'nothing-wrong' : p.escalate ? 'escalated' : 'mitigation-proposed';
}

/** One check of a report. */
export interface SupportCheck {
  check: string;
  ok: boolean;
  detail: string;
  /** The signal could not be observed: `detail` says why. */
  unknown?: boolean;
  /** With `unknown`: told to people, but the verdict does not rest on it. */
  aside?: boolean;
}

export interface SupportReport {
  title: string;
  incidentId: string;
  /** When the report was written (workflow time), ISO-8601. */
  at: string;
  severity: Severity;
  /** Who reported it, if known (an email); the reply is addressed to them. */
  customer?: string;
  /** One line: what the customer reported. */
  issue: string;
  status: ReportStatus;
  verdict: string;
  rootCause?: string;
  /** What was done, or what is proposed and waits for approval. */
  solution?: string;
  /** How it was (or will be) verified. */
  verification?: string;
  /** What the engineer asked for, as given (email, time, request id, ...). */
  facts: Array<[string, string]>;
  /** The checks, each with its result; `unknown`: the check could not be made (neither OK nor FAIL). */
  checks: Array<SupportCheck>;
  nextSteps?: string[];
}

const SEVERITY_WORD: Record<Severity, string> = { 1: 'Critical', 2: 'High', 3: 'Medium', 4: 'Low' };
/** seed 001: "Keep customer updated every 30 minutes". */
const UPDATE_EVERY_MS = 30 * 60_000;

/** Table cells must not break the table. */
function cell(s: string): string {
  return s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

function greeting(customer: string | undefined): string {
  return customer ? `Hi ${customer},` : 'Hi,';
}

function initialResponse(r: SupportReport): string[] {
  const next = new Date(Date.parse(r.at) + UPDATE_EVERY_MS).toISOString().replace(/\.\d{3}Z$/, 'Z');
  return [
    greeting(r.customer),
    '',
    "Thank you for reporting this issue. We've received your report and are investigating immediately.",
    '',
    `**Issue**: ${r.issue}`,
    `**Status**: ${r.status === 'escalated' ? 'Investigating (escalated to our engineering team)' : 'Investigating (a fix is waiting for approval)'}`,
    `**Expected Update**: ${next}`,
    `**Severity**: ${SEVERITY_WORD[r.severity]}`,
    '',
    "We'll keep you updated every 30 minutes.",
    '',
    'Best regards,',
    'Support Team',
  ];
}

function resolution(r: SupportReport): string[] {
  return [
    greeting(r.customer),
    '',
    r.status === 'nothing-wrong'
      ? 'We have looked into the issue you reported and found our service working as expected.'
      : "We've looked into the issue you reported and found its cause.",
    '',
    `**Issue**: ${r.issue}`,
    `**Root Cause**: ${r.rootCause ?? r.verdict}`,
    `**Solution**: ${r.solution ?? 'No change was needed on our side.'}`,
    `**Verification**: ${r.verification ?? 'See the checks above.'}`,
    '',
    'If you continue to experience issues, please let us know immediately.',
    '',
    'Best regards,',
    'Support Team',
  ];
}

/** Renders the report as Markdown for a ticket. */
export function renderSupportReport(r: SupportReport): string {
  const lines: string[] = [
    `## ${r.title}`,
    '',
    `Incident \`${r.incidentId}\` · SEV-${r.severity} (${SEVERITY_WORD[r.severity]}) · ${r.at}`,
    '',
    '### Reported',
    ...r.facts.map(([k, v]) => `- **${k}**: ${v}`),
    '',
    '### Checks',
    '| check | result | detail |',
    '|---|---|---|',
    ...r.checks.map((c) => `| ${cell(c.check)} | ${c.unknown ? 'UNKNOWN' : c.ok ? 'OK' : 'FAIL'} | ${cell(c.detail)} |`),
    '',
    '### Verdict',
    r.verdict,
  ];
  if (r.nextSteps && r.nextSteps.length > 0) lines.push('', '### Next steps', ...r.nextSteps.map((s) => `- ${s}`));
  const open = r.status === 'escalated' || r.status === 'mitigation-proposed';
  lines.push(
    '',
    `### Reply to the customer (${open ? 'initial response' : 'resolution'})`,
    '',
    '```',
    ...(open ? initialResponse(r) : resolution(r)),
    '```',
  );
  return lines.join('\n');
}
