/**
 * What the support runbooks share about evidence: recording their checks as findings (a check that
 * could not be made is recorded as unknown, never as healthy), and telling a read that failed because
 * the target lacks a configured name (a column, a table) from any other failure.
 */
import { ActivityFailure, ApplicationFailure } from '@temporalio/workflow';
import type { RunbookContext } from './kernel';
import type { SupportCheck } from './support-report';

/** Records each check as a finding, or as an unknown one when it could not be made. */
export function recordChecks(ctx: RunbookContext, checks: SupportCheck[]): void {
  for (const c of checks) {
    if (c.unknown) ctx.unknown(c.check, c.detail, { aside: c.aside === true });
    else ctx.finding(c.check, c.ok, c.detail);
  }
}

/**
 * The message of an activity that failed because the target's configuration does not fit it (a
 * column or table the target lacks, named with the setting that points at it), or undefined for any
 * other failure. Such a read shows nothing, and retrying cannot help.
 */
export function notConfiguredMessage(err: unknown): string | undefined {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  return cause instanceof ApplicationFailure && cause.type === 'NotConfigured' ? cause.message : undefined;
}

/** The checks that could not be made, as `could not observe <check>: <why>` (empty when none). */
export function unobservedText(checks: SupportCheck[]): string {
  return checks
    .filter((c) => c.unknown)
    .map((c) => `could not observe ${c.check}: ${c.detail}`)
    .join('; ');
}
