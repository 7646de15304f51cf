/**
 * Transfer not applied (seed 000, "Transfers / Approvals not applied"): given the user's email and,
 * if known, the transfer id and time, look at the `token_transfers` / `approval_requests` rows, the
 * job queue (`LLEN`, and where the transfer's job waits) and the worker's log errors, and say why the
 * transfer has not been applied. Diagnose-first: seed 000 calls for no mitigation here, so a fault on
 * our side (worker down or stalled, job lost, transfer failed) is escalated with the report.
 */
import { patched } from '@temporalio/workflow';
import { acts, runIncident, type Check, type Plan, type Runbook, type RunbookContext } from './kernel';
import type { IncidentInput, IncidentRecord, Severity } from './contracts';
import type { QueueState, SupportUser, TransferRow, WorkerLogErrors } from '../activities/postgres/support';
import { renderSupportReport, type ReportStatus, type SupportCheck } from './support-report';
import { notConfiguredMessage, recordChecks } from './support-evidence';
import { defineRunbook, type Decision, type StepIdOf } from './shape';

/** What this runbook is: the catalog, routes, the client script and the README's table read it. */
export const meta = defineRunbook({
  name: 'transferNotApplied',
  scenario: 'SUP-TRANSFER',
  title: 'Transfer not applied (support)',
  severity: 3,
  source: 'seed 000',
  alerts: [],
  diagnostics: [
    'the account behind the email',
    "the user's token_transfers and their approval_requests",
    'LLEN of the job queue, sampled twice, and where the transfer\'s job waits',
    'worker container state and worker log errors',
  ],
  steps: [],
  verify: 'the worker is running (the transfer is applied in turn)',
});

export interface TransferFacts {
  email: string;
  transferId?: string;
  at: string;
  from: string;
  to: string;
  user: SupportUser;
  transfers: TransferRow[];
  queue?: QueueState;
  workerRunning?: boolean;
  workerStatus?: string;
  workerLog?: WorkerLogErrors;
  /** Why the account or its transfers could not be read (a column the target lacks), when they could not. */
  userError?: string;
  transfersError?: string;
  /**
   * Signals that were not observed are unknown, never "nothing there" (absent in facts of incidents
   * started before this rule, which failed on an unreadable table and read an unknown queue as empty).
   */
  evidenceRule?: boolean;
}

/** Seed 000 calls for no mitigation here: it declares no step. */
export type TransferStep = StepIdOf<typeof meta>;

/** The verdict a support engineer pastes into the ticket, as the runbook's decision. */
export interface TransferDecision extends Decision<TransferStep> {
  status: ReportStatus;
  /** The transfer the verdict is about. */
  transfer?: TransferRow;
  solution?: string;
  nextSteps: string[];
}

/**
 * What was found, before it is settled into a decision. `escalate`: why the incident escalates,
 * when it is not the diagnosis itself (what could not be observed).
 */
interface Verdict {
  status: ReportStatus;
  diagnosis: string;
  transfer?: TransferRow;
  rootCause?: string;
  solution?: string;
  nextSteps: string[];
  escalate?: string;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v ? v : typeof v === 'number' ? String(v) : undefined;
}

async function diagnose(ctx: RunbookContext): Promise<TransferFacts> {
  const p = ctx.input.params ?? {};
  const email = str(p.email) ?? '';
  const transferId = str(p.transferId);
  const minutes = typeof p.windowMinutes === 'number' ? p.windowMinutes : 24 * 60;
  const now = Date.now();
  const atMs = str(p.at) ? Math.min(Date.parse(p.at as string), now) : now;
  const from = new Date(atMs - minutes * 60_000).toISOString();
  const to = new Date(now).toISOString();
  const t = ctx.target;
  const evidence = patched('evidence-before-conclusions');
  // A column the target lacks (a `postgres.schema` setting) shows no rows: the read is unknown.
  // (Incidents recorded before this rule failed there, and replay so.)
  const unreadable = (err: unknown): string => {
    const why = evidence ? notConfiguredMessage(err) : undefined;
    if (why === undefined) throw err;
    return why;
  };

  let userError: string | undefined;
  const user = await acts.lookupUser({ target: t, email }).catch((err: unknown): SupportUser => {
    userError = unreadable(err);
    return { found: false };
  });
  const facts: TransferFacts = {
    email,
    ...(transferId ? { transferId } : {}),
    at: new Date(atMs).toISOString(),
    from,
    to,
    user,
    transfers: [],
    ...(userError !== undefined ? { userError } : {}),
    ...(evidence ? { evidenceRule: true } : {}),
  };
  if (user.found && user.userId) {
    // A transfer id narrows the search to that transfer, whenever it was made.
    const rows = await acts.userTransfers({ target: t, userId: user.userId, ...(transferId ? { transferId } : { from, to }) }).catch((err: unknown) => {
      facts.transfersError = unreadable(err);
      return { transfers: [] };
    });
    facts.transfers = rows.transfers;
    const open = rows.transfers.filter((x) => x.status !== 'applied').map((x) => x.id);
    const [queue, workerLog] = await Promise.all([
      acts.jobQueueState({ target: t, transferIds: open }),
      acts.workerLogErrors({ target: t, transferIds: open, from, to }),
    ]);
    const worker = await acts.containerState({ target: t, component: queue.consumer });
    facts.queue = queue;
    facts.workerRunning = worker.running;
    facts.workerStatus = worker.status;
    facts.workerLog = workerLog;
  }
  recordChecks(ctx, checksOf(facts));
  return facts;
}

/** The transfer the customer means: the one asked about, else the newest not applied, else the newest. */
function focus(f: TransferFacts): TransferRow | undefined {
  if (f.transferId) return f.transfers.find((x) => x.id === f.transferId);
  return f.transfers.find((x) => x.status !== 'applied') ?? f.transfers[0];
}

function describeTransfer(x: TransferRow): string {
  return `transfer #${x.id} (${x.direction}, ${x.amount} tokens, created ${x.createdAt})`;
}

/** A pending transfer whose approval is granted (or not needed): what the queue and the worker say. */
function pendingInQueue(f: TransferFacts, x: TransferRow): Verdict {
  const q = f.queue;
  const ahead = q?.ahead[x.id];
  if (f.workerRunning === false) {
    return {
      status: 'escalated',
      transfer: x,
      diagnosis: `${describeTransfer(x)} is pending and the worker is ${f.workerStatus ?? 'not running'}: nothing applies transfers`,
      rootCause: 'The background worker that applies transfers is down.',
      nextSteps: ['Escalated to on-call: start the worker; queued transfers are applied once it runs.'],
    };
  }
  if (ahead === undefined) {
    const unseen = f.evidenceRule ? queueUnobserved(q) : undefined;
    if (unseen) {
      return {
        status: 'escalated',
        transfer: x,
        diagnosis: `${describeTransfer(x)} is pending; whether its job is queued could not be determined: ${unseen}`,
        rootCause: 'Not determined: the job queue could not be read.',
        nextSteps: [`Escalated: could not observe the transfer's job on the queue: ${unseen}.`],
        escalate: `could not observe the transfer's job on the queue: ${unseen}`,
      };
    }
    return {
      status: 'escalated',
      transfer: x,
      diagnosis: `${describeTransfer(x)} is pending but its job is missing from the queue ${q?.key ?? ''} (${q?.length ?? '?'} jobs): the job was lost`,
      rootCause: 'The job that applies the transfer was never queued or was lost.',
      nextSteps: [
        `Escalated to engineering: re-queue the transfer's apply job; worker log: ${f.workerLog?.errors ?? 0} errors, ${f.workerLog?.warnings ?? 0} warnings.`,
      ],
    };
  }
  const draining = q !== undefined && q.lengthAfter < q.length;
  if (!draining) {
    return {
      status: 'escalated',
      transfer: x,
      diagnosis: `${describeTransfer(x)} is queued with ${ahead} jobs ahead, but the worker is not consuming ${q?.key ?? 'the queue'} (${q?.length ?? '?'} jobs, none taken in ${((q?.sampleMs ?? 0) / 1000).toFixed(0)} s)`,
      rootCause: 'The background worker has stopped taking jobs from the queue.',
      nextSteps: ['Escalated to on-call: the worker runs but does not consume the queue (paused or stuck).'],
    };
  }
  const perSec = ((q.length - q.lengthAfter) * 1000) / Math.max(q.sampleMs, 1);
  return {
    status: 'answered',
    transfer: x,
    diagnosis: `${describeTransfer(x)} is queued with ${ahead} jobs ahead; the worker drains about ${perSec.toFixed(1)} jobs/s`,
    rootCause: 'The transfer is waiting its turn in the processing queue.',
    solution: `No action needed: it should be applied in about ${Math.ceil(ahead / Math.max(perSec, 0.1))} s.`,
    nextSteps: ['Check again later if the customer still does not see it.'],
  };
}

/**
 * Why the queue shows nothing about a transfer's job, when that is not evidence the job is missing:
 * a key that is no queue (`queue.key`), jobs none of which is recognised as a transfer's
 * (`queue.transferFunction`), or jobs beyond those scanned. Undefined when the queue was read. Pure.
 */
export function queueUnobserved(q: QueueState | undefined): string | undefined {
  if (!q) return 'the queue was not read';
  if (q.known === false) return `${q.key} is neither a list in Redis nor among RQ's queues (rq:queues) (setting queue.key)`;
  if (q.transferJobs === 0 && q.scanned > 0) return `none of the ${q.scanned} jobs on ${q.key} is recognised as a transfer's job (setting queue.transferFunction)`;
  if (q.scanned < q.length) return `only ${q.scanned} of the ${q.length} jobs on ${q.key} were scanned`;
  return undefined;
}

/**
 * Pure decision over the findings: the verdict, a false alarm when nothing is wrong, and the reason
 * it escalates when it does (what could not be observed, else the diagnosis and what was done).
 */
export function planTransferNotApplied(f: TransferFacts): TransferDecision {
  const v = verdictOf(f);
  return {
    ...v,
    ...(v.status === 'nothing-wrong' ? { falseAlarm: true } : {}),
    ...(v.status === 'escalated' ? { escalate: v.escalate ?? `${v.diagnosis}. ${v.nextSteps.join(' ')}` } : {}),
    steps: [],
  };
}

/** The verdict over the findings. */
function verdictOf(f: TransferFacts): Verdict {
  const unread = f.userError !== undefined ? { what: 'the account', why: f.userError } : f.transfersError !== undefined ? { what: 'token_transfers', why: f.transfersError } : undefined;
  if (unread) {
    return {
      status: 'escalated',
      diagnosis: `could not determine the state of the transfer: ${unread.what} could not be read`,
      rootCause: 'Not determined: the transfer records could not be read.',
      nextSteps: [`Escalated: could not observe ${unread.what}: ${unread.why}.`],
      escalate: `could not observe ${unread.what}: ${unread.why}`,
    };
  }
  if (!f.user.found) {
    return {
      status: 'answered',
      diagnosis: `no such user: no account is registered under ${f.email}`,
      rootCause: `There is no account with the email ${f.email}.`,
      solution: 'Ask the customer to confirm the email address of the account.',
      nextSteps: ['Confirm the email address with the customer.'],
    };
  }
  const x = focus(f);
  if (!x) {
    return {
      status: 'answered',
      diagnosis: f.transferId ? `no transfer #${f.transferId} involves ${f.email}` : `no transfer involving ${f.email} between ${f.from} and ${f.to}`,
      rootCause: 'We found no such transfer on this account.',
      solution: 'Ask the customer for the transfer id or the exact time, and the other party of the transfer.',
      nextSteps: ['Ask for the transfer id shown after submitting it.'],
    };
  }
  if (x.status === 'applied') {
    return {
      status: 'nothing-wrong',
      transfer: x,
      diagnosis: `${describeTransfer(x)} was applied at ${x.appliedAt ?? '?'}`,
      solution: 'No action needed: the transfer has been applied.',
      nextSteps: ['If the balance looks wrong, ask the customer to refresh and send a screenshot.'],
    };
  }
  if (x.status === 'failed') {
    return {
      status: 'escalated',
      transfer: x,
      diagnosis: `${describeTransfer(x)} failed; worker log: ${f.workerLog?.forTransfers ?? 0} lines about it`,
      rootCause: 'The transfer failed while being applied.',
      nextSteps: ['Escalated to engineering with the transfer id and the worker log lines.'],
    };
  }
  if (x.approval && x.approval.status === 'pending') {
    return {
      status: 'answered',
      transfer: x,
      diagnosis: `${describeTransfer(x)} waits for approval request #${x.approval.id} (pending since ${x.approval.createdAt})`,
      rootCause: 'The transfer needs an approval that has not been given yet.',
      solution: 'It is applied once the approval request is approved.',
      nextSteps: [`Ask the approver to decide approval request #${x.approval.id}.`],
    };
  }
  return pendingInQueue(f, x);
}

/** The checks behind the verdict: recorded as findings and listed in the report; a signal not observed is unknown. */
export function checksOf(f: TransferFacts): SupportCheck[] {
  if (f.userError !== undefined) return [{ check: 'account', ok: false, detail: f.userError, unknown: true }];
  const out: SupportCheck[] = [{ check: 'account', ok: f.user.found, detail: f.user.found ? `user #${f.user.userId ?? '?'}` : `no user with email ${f.email}` }];
  if (!f.user.found) return out;
  if (f.transfersError !== undefined) {
    out.push({ check: 'token_transfers', ok: false, detail: f.transfersError, unknown: true });
    return out;
  }
  const byStatus: Record<string, number> = {};
  for (const x of f.transfers) byStatus[x.status] = (byStatus[x.status] ?? 0) + 1;
  const summary = Object.entries(byStatus).map(([s, n]) => `${n} ${s}`).join(', ') || 'none';
  out.push({ check: 'token_transfers', ok: f.transfers.every((x) => x.status === 'applied'), detail: `${f.transfers.length} found (${summary})` });
  const approvals = f.transfers.filter((x) => x.approval);
  out.push({
    check: 'approval_requests',
    ok: approvals.every((x) => x.approval?.status !== 'pending'),
    detail: approvals.length ? approvals.map((x) => `#${x.approval?.id ?? ''} for transfer #${x.id}: ${x.approval?.status ?? ''}`).join(', ') : 'none',
  });
  if (f.queue) {
    const q = f.queue;
    const queued = Object.entries(q.ahead).map(([id, n]) => `#${id} has ${n} ahead`);
    const unseen = f.evidenceRule ? queueUnobserved(q) : undefined;
    out.push({
      ...(unseen && q.length === 0 ? { unknown: true } : {}),
      check: `LLEN ${q.key}`,
      ok: q.length === 0 || q.lengthAfter < q.length,
      detail: unseen && q.length === 0 ? unseen : `${q.length} jobs, ${q.lengthAfter} after ${(q.sampleMs / 1000).toFixed(0)} s${queued.length ? `; ${queued.join(', ')}` : ''}`,
    });
  }
  if (f.workerRunning !== undefined) out.push({ check: 'worker container', ok: f.workerRunning, detail: f.workerStatus ?? '' });
  if (f.workerLog) {
    const w = f.workerLog;
    out.push({
      ...(f.evidenceRule && !w.available ? { unknown: true } : {}),
      check: 'worker log errors',
      ok: w.available && w.forTransfers === 0,
      detail: w.available ? `${w.errors} errors, ${w.warnings} warnings; ${w.forTransfers} about these transfers${w.samples.length ? `: ${w.samples.join(' / ')}` : ''}` : `unavailable: ${w.error ?? ''}`,
    });
  }
  return out;
}

/** The ticket report for a verdict. */
export function transferReport(f: TransferFacts, v: TransferDecision, meta: { incidentId: string; at: string; severity: Severity }): string {
  return renderSupportReport({
    title: 'Transfer not applied',
    incidentId: meta.incidentId,
    at: meta.at,
    severity: meta.severity,
    customer: f.email,
    issue: `token transfer${v.transfer ? ` #${v.transfer.id}` : f.transferId ? ` #${f.transferId}` : ''} not applied`,
    status: v.status,
    verdict: v.diagnosis,
    ...(v.rootCause ? { rootCause: v.rootCause } : {}),
    ...(v.solution ? { solution: v.solution } : {}),
    verification: v.status === 'escalated' ? 'We will confirm once the transfer is applied.' : 'Checked the transfer, its approval, the job queue and the worker.',
    facts: [
      ['user email', f.email],
      ['transfer id', f.transferId ?? '(not given)'],
      ['approximate time', f.at],
    ],
    checks: checksOf(f),
    nextSteps: v.nextSteps,
  });
}

const runbook: Runbook<TransferFacts> = {
  meta,
  diagnose,
  plan(f, ctx): Plan {
    const p = planTransferNotApplied(f);
    return {
      diagnosis: p.diagnosis,
      ...(p.rootCause ? { rootCause: p.rootCause } : {}),
      ...(p.falseAlarm ? { falseAlarm: true } : {}),
      ...(p.escalate ? { escalate: p.escalate } : {}),
      report: transferReport(f, p, { incidentId: ctx.incidentId, at: new Date().toISOString(), severity: ctx.input.severity ?? meta.severity }),
      steps: [],
    };
  },
  async verify(ctx): Promise<Check> {
    // Nothing was changed; the answer (waiting for approval, queued, no such transfer) holds while the worker runs.
    const q = await acts.jobQueueState({ target: ctx.target, transferIds: [], sampleMs: 0 });
    const w = await acts.containerState({ target: ctx.target, component: q.consumer });
    return { ok: w.running, detail: `${q.consumer} ${w.status}, ${q.length} jobs on ${q.key}` };
  },
};

/** Support: why a user's token transfer has not been applied. */
export async function transferNotApplied(input: IncidentInput): Promise<IncidentRecord> {
  return runIncident(runbook, input);
}
