/**
 * The action budget's rules, as plain functions: how many actions a target has had within a window,
 * whether one more may run, and how a spent budget is told to people. The per-target keeper workflow
 * (src/workflows/action-budget.ts) applies them to its entries; unit-tested without Temporal.
 */
import type { BudgetAnswer, BudgetEntry, BudgetRequest } from '../workflows/contracts';

/** The entries counted in the window ending at `nowMs` (granted less than `windowMs` ago), oldest first. */
export function withinWindow(entries: readonly BudgetEntry[], windowMs: number, nowMs: number): BudgetEntry[] {
  return entries.filter((e) => nowMs - Date.parse(e.at) < windowMs).sort((a, b) => Date.parse(a.at) - Date.parse(b.at));
}

/**
 * The answer to one request. Within the budget it is granted; past it, a step people approved is
 * granted all the same (`overBudget`: a person decided, the engine does not overrule them) and an
 * automatic one is refused. `reserve`: the request is to be counted now.
 */
export function decideBudget(
  entries: readonly BudgetEntry[],
  req: BudgetRequest,
  nowMs: number,
): { answer: BudgetAnswer; reserve: boolean } {
  const recent = withinWindow(entries, req.windowMs, nowMs);
  const within = recent.length < req.maxActions;
  const approved = (req.approvedBy?.length ?? 0) > 0;
  const granted = within || approved;
  return {
    answer: { granted, overBudget: granted && !within, maxActions: req.maxActions, windowMs: req.windowMs, recent },
    reserve: granted,
  };
}

/** The entry a granted request becomes. */
export function entryOf(req: BudgetRequest, nowMs: number): BudgetEntry {
  return {
    requestId: req.requestId,
    incidentId: req.incidentId,
    stepId: req.stepId,
    resource: req.resource,
    at: new Date(nowMs).toISOString(),
    ...(req.approvedBy && req.approvedBy.length > 0 ? { approvedBy: [...req.approvedBy] } : {}),
    state: 'reserved',
  };
}

/** A window as people write it: `1h`, `90m`, `30s`, else milliseconds. */
export function formatWindow(ms: number): string {
  if (ms > 0 && ms % 3600_000 === 0) return `${ms / 3600_000}h`;
  if (ms > 0 && ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms > 0 && ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms} ms`;
}

/** "action budget of N per 1h on <target>" */
export function budgetName(target: string, a: Pick<BudgetAnswer, 'maxActions' | 'windowMs'>): string {
  return `action budget of ${a.maxActions} per ${formatWindow(a.windowMs)} on ${target}`;
}

/** One counted action, for people: what, where, when, in which incident, and who approved it. */
export function describeEntry(e: BudgetEntry): string {
  return `${e.stepId} on ${e.resource} at ${e.at} (${e.incidentId}${e.approvedBy ? `, approved by ${e.approvedBy.join(', ')}` : ''})`;
}

/** Why an automatic step was not run: the budget, and the actions that spent it. */
export function budgetSpentReason(target: string, a: BudgetAnswer): string {
  const listed = a.recent.length > 0 ? a.recent.map(describeEntry).join('; ') : 'no action may run automatically';
  return `${budgetName(target, a)} spent: ${listed}`;
}
