/**
 * One keeper per target: the durable count of the actions incidents performed there, shared by every
 * incident of the target, so automation never loops on it. Past the budget (N actions within the
 * window) an automatic step is refused and its incident escalates to people; a step people approved
 * still runs, and counts. Requests arrive as an update (update-with-start, from an activity), so the
 * answer and the count are one atomic step of this workflow; releases come back as signals.
 */
import { allHandlersFinished, condition, continueAsNew, setHandler, workflowInfo } from '@temporalio/workflow';
import { decideBudget, entryOf, withinWindow } from '../lib/action-budget';
import {
  budgetStateQuery,
  releaseActionSignal,
  reserveActionUpdate,
  type BudgetAnswer,
  type BudgetEntry,
  type BudgetKeeperInput,
  type BudgetKeeperState,
  type BudgetRelease,
  type BudgetRequest,
} from './contracts';

/** Requests per run before the history is rolled over with continueAsNew. */
const REQUESTS_PER_RUN = 500;

/** The count and its rules; the workflow below only wires handlers to it. */
class BudgetKeeper {
  entries: BudgetEntry[];
  /** Requests and releases seen by this run (the keeper idles out after none for `idleMs`). */
  requests = 0;
  /** The longest window asked about: nothing older than it is kept. */
  longestWindowMs: number;

  constructor(private readonly input: BudgetKeeperInput) {
    this.entries = [...(input.entries ?? [])];
    this.longestWindowMs = input.idleMs;
  }

  validate(req: BudgetRequest): void {
    if (typeof req?.requestId !== 'string' || req.requestId === '') throw new Error('requestId is required');
    if (!Number.isInteger(req.maxActions) || req.maxActions < 0)
      throw new Error('maxActions must be a whole number, 0 or more');
    if (!Number.isInteger(req.windowMs) || req.windowMs <= 0)
      throw new Error('windowMs must be a whole number of milliseconds above 0');
  }

  reserve(req: BudgetRequest): BudgetAnswer {
    this.requests += 1;
    const now = Date.now();
    this.longestWindowMs = Math.max(this.longestWindowMs, req.windowMs);
    this.entries = withinWindow(this.entries, this.longestWindowMs, now);
    // A retried request (the activity ran again) gets its grant again; it is not counted twice.
    const known = this.entries.find((e) => e.requestId === req.requestId);
    if (known) {
      const others = this.entries.filter((e) => e !== known);
      const { answer } = decideBudget(others, req, Date.parse(known.at));
      return { ...answer, granted: true };
    }
    const { answer, reserve } = decideBudget(this.entries, req, now);
    if (reserve) this.entries.push(entryOf(req, now));
    return answer;
  }

  release(r: BudgetRelease): void {
    this.requests += 1;
    const i = this.entries.findIndex((e) => e.requestId === r.requestId);
    if (i < 0) return;
    if (r.performed) this.entries[i] = { ...(this.entries[i] as BudgetEntry), state: 'performed' };
    else this.entries.splice(i, 1);
  }

  state(): BudgetKeeperState {
    return { target: this.input.target, entries: this.entries, requests: this.requests };
  }
}

/** The action budget of one target (workflow id `budget-<target>`). */
export async function actionBudget(input: BudgetKeeperInput): Promise<void> {
  const keeper = new BudgetKeeper(input);
  setHandler(reserveActionUpdate, (req) => keeper.reserve(req), {
    validator: (req) => keeper.validate(req),
    description: "Counts one action against the target's budget, or refuses it",
  });
  setHandler(releaseActionSignal, (r) => keeper.release(r), { description: 'Whether a reserved action ran' });
  setHandler(budgetStateQuery, () => keeper.state(), { description: 'The actions counted, oldest first' });

  for (;;) {
    const seen = keeper.requests;
    // Idle for the longest window: by then every entry is out of every window, nothing is forgotten early.
    if (!(await condition(() => keeper.requests !== seen, keeper.longestWindowMs))) {
      await condition(allHandlersFinished);
      return;
    }
    if (keeper.requests >= REQUESTS_PER_RUN || workflowInfo().continueAsNewSuggested) {
      await condition(allHandlersFinished);
      await continueAsNew<typeof actionBudget>({ ...input, idleMs: keeper.longestWindowMs, entries: keeper.entries });
    }
  }
}
