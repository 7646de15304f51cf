/**
 * Seed 002, INC-02/03 triage step 1: "Check provider status page". What a provider's page says is
 * evidence for the diagnosis and the people reading it, never a trigger: no step is chosen or
 * skipped because of it. A page that could not be read is recorded as unknown, never as operational.
 */
import type { ProviderStatusPage } from '../activities/target-api/providers';
import type { RunbookContext } from './kernel';
import type { Decision } from './shape';

/** The finding's name for a provider's status page. */
export const statusPageCheck = (name: string): string => `status page ${name}`;

/** One provider's page in a few words: `openai none (All Systems Operational)`, `google unknown`. */
export function describeStatusPage(p: ProviderStatusPage): string {
  if (!p.page) return `${p.name} has none configured`;
  if (!p.available) return `${p.name} unknown`;
  return `${p.name} ${p.indicator ?? '?'}${p.description ? ` (${p.description})` : ''}`;
}

/** Pure: the line the diagnosis and an escalation carry, or undefined when no page was read. */
export function statusPagesSummary(pages: ProviderStatusPage[] | undefined): string | undefined {
  if (!pages || pages.length === 0) return undefined;
  return `status pages: ${pages.map(describeStatusPage).join(', ')}`;
}

/** Providers whose page reports an incident (indicator minor, major or critical). */
export function reportingIncident(pages: ProviderStatusPage[] | undefined): string[] {
  return (pages ?? []).filter((p) => p.available && p.indicator !== 'none').map((p) => p.name);
}

/**
 * Records each page as a finding: `none` is healthy, an incident is a problem, an unreadable page
 * is unknown with its reason. A provider configured without a page (`statusPage: false`) has no
 * signal to observe: a note says so.
 */
export function recordStatusPages(ctx: Pick<RunbookContext, 'finding' | 'unknown' | 'note'>, pages: ProviderStatusPage[]): void {
  for (const p of pages) {
    if (!p.page) ctx.note(`${statusPageCheck(p.name)} not checked: ${p.error ?? 'none configured'}`);
    // Evidence for people beside the measured rates: unread, it is unknown but decides nothing.
    else if (!p.available) ctx.unknown(statusPageCheck(p.name), p.error ?? 'not read', { aside: true });
    else ctx.finding(statusPageCheck(p.name), p.indicator === 'none', `${p.indicator ?? '?'}${p.description ? `: ${p.description}` : ''} (${p.page ?? ''})`);
  }
}

/**
 * Pure: a decision with the status pages added to what people read (diagnosis, escalation). Steps,
 * false alarm and severity stay as the runbook's own evidence decided them.
 */
export function withStatusPages<Id extends string>(decision: Decision<Id>, pages: ProviderStatusPage[] | undefined): Decision<Id> {
  const line = statusPagesSummary(pages);
  if (!line) return decision;
  return { ...decision, diagnosis: `${decision.diagnosis}; ${line}`, ...(decision.escalate ? { escalate: `${decision.escalate} (${line})` } : {}) };
}
