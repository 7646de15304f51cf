/**
 * Turns a routed alert into Temporal calls.
 *
 * - firing: `signalWithStart` on `incidentWorkflowId(runbook, target)`. One incident per runbook and
 *   target is open at a time; a repeat joins it as an `alert` signal that the workflow counts.
 * - resolved: a plain signal to the running incident. It never starts one: a resolution of
 *   something no incident is handling is recorded and answered, nothing more.
 *
 * Telling "started" from "deduplicated" under concurrency: `signalWithStart` does not say which
 * happened, and a describe before the call races with other requests. Each call instead carries a
 * fresh receipt id in the memo; only the request that actually created the run has its receipt in
 * that run's memo, whatever the interleaving.
 *
 * Alert storms: calls for one incident go out one at a time, in arrival order. Repeats of the same
 * alert that arrive while a call for their incident is in flight wait together and go out as one
 * signal that says how many alerts it stands for (`repeats`); the incident counts every one. The
 * first call of an idle incident leaves after the alerts of the same request (and of the same turn of
 * the event loop) have joined it, or after `coalesceWindowMs` when that is set: a webhook carrying a
 * group of alerts for one incident is one call, and repeats within the window share it. Each
 * request is answered only when the signal carrying its alert has been accepted, so an answered alert
 * is never lost, and under load the server does one call per batch instead of one per alert. A
 * resolution never overtakes a firing repeat sent before it.
 *
 * Lanes are bounded (`lanes` in the receiver settings): at most `maxIncidents` incidents with calls
 * pending, at most `maxQueuedPerIncident` calls queued behind one incident's call in flight. An
 * alert past a bound is not queued: it fails with `LaneFullError` (the webhook gets 503 with
 * Retry-After, so its sender retries), and `onOverflow` reports it.
 */
import { randomUUID } from 'node:crypto';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { Logger } from 'pino';
import type { EngineConfig } from '../config';
import { buildIncidentInput, InputError } from '../lib/incident-input';
import { RUNBOOKS } from '../workflows/catalog';
import {
  alertSignal,
  incidentWorkflowId,
  SA_PHASE,
  SA_RUNBOOK,
  SA_SCENARIO,
  SA_SEVERITY,
  SA_TARGET,
  type AlertEvent,
} from '../workflows/contracts';
import type { IncomingAlert } from './payloads';
import type { RouteDecision } from './routes';

export type AlertAction =
  | 'started'
  | 'deduplicated'
  | 'resolved-signalled'
  | 'resolved-no-incident'
  | 'unrouted'
  | 'refused'
  | 'ignored'
  | 'invalid';

/** One entry of the webhook's JSON answer. */
export interface AlertOutcome {
  alertname: string;
  status?: 'firing' | 'resolved';
  action: AlertAction;
  workflowId?: string;
  runbook?: string;
  target?: string;
  reason?: string;
}

/** Temporal could not be reached or refused the call: the sender should retry later (503). */
export class TemporalUnavailableError extends Error {
  constructor(
    message: string,
    override readonly cause?: unknown,
  ) {
    super(message);
    this.name = 'TemporalUnavailableError';
  }
}

/** The dispatcher's lanes are full: the alert was not queued, and the sender should retry later (503). */
export class LaneFullError extends Error {
  constructor(
    message: string,
    readonly bound: 'incidents' | 'per_incident',
  ) {
    super(message);
    this.name = 'LaneFullError';
  }
}

/** Memo key holding the id of the request that started the run. */
export const RECEIPT_MEMO_KEY = 'alertReceipt';

export function toAlertEvent(alert: IncomingAlert, receivedAt: string): AlertEvent {
  return {
    source: alert.source,
    name: alert.name,
    status: alert.status,
    labels: alert.labels,
    annotations: alert.annotations,
    receivedAt,
    ...(alert.fingerprint ? { fingerprint: alert.fingerprint } : {}),
    ...(alert.startsAt ? { startsAt: alert.startsAt } : {}),
  };
}

export interface DispatcherDeps {
  client: Client;
  engine: EngineConfig;
  taskQueue: string;
  timeoutMs: number;
  logger: Logger;
  /** Called for each signal that carried more than one alert. */
  onCoalesced?: (runbook: string, repeats: number) => void;
  /** Bounds of the lanes (see the module comment); unbounded when absent. */
  limits?: { maxIncidents: number; maxQueuedPerIncident: number };
  /** How long the first alert of an idle incident waits for repeats to join its call (0: this turn of the event loop). */
  coalesceWindowMs?: number;
  /** Called for each alert refused because a bound was reached. */
  onOverflow?: (runbook: string, bound: LaneFullError['bound']) => void;
}

type Built = ReturnType<typeof buildIncidentInput>;
type SendOutcome = Pick<AlertOutcome, 'action' | 'reason'>;

/** Alerts for one incident that go out in one call, and the requests waiting for that call. */
interface Batch {
  /** Only repeats of one alert (same name, source and status) share a signal. */
  key: string;
  status: 'firing' | 'resolved';
  /** The latest repeat: its labels and annotations are the ones the incident keeps. */
  event: AlertEvent;
  repeats: number;
  built: Built;
  route: Extract<RouteDecision, { kind: 'routed' }>;
  waiters: { resolve: (o: SendOutcome) => void; reject: (err: unknown) => void }[];
}

/** One incident's calls: at most one in flight, the rest queued in arrival order. */
interface Lane {
  queue: Batch[];
  sending: boolean;
  /** The first batch waits for its repeats to join it: it is the call about to go out, not one queued behind it. */
  gathering: boolean;
}

/** How many run ids the dispatcher remembers (oldest forgotten first). */
const SEEN_RUNS_MAX = 10_000;

export function createDispatcher(deps: DispatcherDeps) {
  const { client, engine, taskQueue, timeoutMs } = deps;
  const starters = new Map<string, string>();
  const remember = (runId: string, receipt: string): void => {
    starters.set(runId, receipt);
    if (starters.size > SEEN_RUNS_MAX) starters.delete(starters.keys().next().value as string);
  };

  async function temporal<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await client.withDeadline(Date.now() + timeoutMs, fn);
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) throw err;
      throw new TemporalUnavailableError(`Temporal ${what} failed: ${(err as Error).message}`, err);
    }
  }

  /** Acts on one routed alert. Throws TemporalUnavailableError when Temporal cannot be used. */
  async function dispatch(
    alert: IncomingAlert,
    route: Extract<RouteDecision, { kind: 'routed' }>,
    receivedAt: string,
  ): Promise<AlertOutcome> {
    const base = { alertname: alert.name, status: alert.status, runbook: route.runbook, target: route.target };
    const event = toAlertEvent(alert, receivedAt);
    let built: ReturnType<typeof buildIncidentInput>;
    try {
      built = buildIncidentInput(engine, {
        runbook: route.runbook,
        target: route.target,
        requestedBy: alert.source,
        severity: route.severity,
        alert: event,
        summary: alert.summary ?? alert.name,
        ...(route.params ? { params: route.params } : {}),
      });
    } catch (err) {
      if (err instanceof InputError) return { ...base, action: 'refused', reason: err.message };
      throw err;
    }
    const workflowId = incidentWorkflowId(route.runbook, route.target);
    const sent = await new Promise<SendOutcome>((resolve, reject) => {
      enqueue(workflowId, { event, built, route, waiter: { resolve, reject } });
    });
    return { ...base, ...sent, workflowId };
  }

  const lanes = new Map<string, Lane>();

  function enqueue(
    workflowId: string,
    a: { event: AlertEvent; built: Built; route: Extract<RouteDecision, { kind: 'routed' }>; waiter: Batch['waiters'][number] },
  ): void {
    const key = `${a.event.source}\u0000${a.event.name}\u0000${a.event.status}`;
    const limits = deps.limits;
    const overflow = (bound: LaneFullError['bound'], message: string): void => {
      deps.onOverflow?.(a.route.runbook, bound);
      a.waiter.reject(new LaneFullError(message, bound));
    };
    let lane = lanes.get(workflowId);
    if (!lane) {
      if (limits && lanes.size >= limits.maxIncidents) {
        overflow('incidents', `the receiver has calls pending for ${lanes.size} incidents already (lanes.maxIncidents)`);
        return;
      }
      lane = { queue: [], sending: false, gathering: false };
      lanes.set(workflowId, lane);
    }
    const last = lane.queue[lane.queue.length - 1];
    if (last && last.key === key) {
      last.event = a.event;
      last.repeats += 1;
      last.waiters.push(a.waiter);
    } else if (limits && lane.queue.length - (lane.gathering ? 1 : 0) >= limits.maxQueuedPerIncident) {
      overflow(
        'per_incident',
        `${lane.queue.length} calls are queued for ${workflowId} already (lanes.maxQueuedPerIncident)`,
      );
      return;
    } else {
      lane.queue.push({ key, status: a.event.status, event: a.event, repeats: 1, built: a.built, route: a.route, waiters: [a.waiter] });
    }
    if (!lane.sending) {
      // Marked now, sent a moment later: what arrives in between joins the first call.
      lane.sending = true;
      lane.gathering = true;
      const go = (): void => void drain(workflowId, lane as Lane);
      if (deps.coalesceWindowMs && deps.coalesceWindowMs > 0) setTimeout(go, deps.coalesceWindowMs);
      else setImmediate(go);
    }
  }

  /** Sends the lane's batches in order; enqueue marked it sending when it scheduled this. */
  async function drain(workflowId: string, lane: Lane): Promise<void> {
    lane.gathering = false;
    for (let batch = lane.queue.shift(); batch; batch = lane.queue.shift()) {
      try {
        const first = await send(workflowId, batch);
        if (batch.repeats > 1) deps.onCoalesced?.(batch.route.runbook, batch.repeats);
        // Only one request can have started the run: the others in the batch joined it.
        batch.waiters.forEach((w, i) => w.resolve(i === 0 || first.action !== 'started' ? first : { action: 'deduplicated' }));
      } catch (err) {
        for (const w of batch.waiters) w.reject(err);
      }
    }
    lane.sending = false;
    lanes.delete(workflowId);
  }

  /** Sends one batch: a signal for resolutions, signalWithStart for firing alerts. */
  async function send(workflowId: string, batch: Batch): Promise<SendOutcome> {
    const event: AlertEvent = batch.repeats > 1 ? { ...batch.event, repeats: batch.repeats } : batch.event;
    if (batch.status === 'resolved') {
      try {
        await temporal('signal', () => client.workflow.getHandle(workflowId).signal(alertSignal, event));
        return { action: 'resolved-signalled' };
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) return { action: 'resolved-no-incident', reason: 'no running incident to resolve' };
        throw err;
      }
    }
    const { built, route } = batch;
    const receipt = randomUUID();
    const handle = await temporal('signalWithStart', () =>
      client.workflow.signalWithStart(built.runbook, {
        workflowId,
        taskQueue,
        args: [built.input],
        signal: alertSignal,
        signalArgs: [event],
        memo: { [RECEIPT_MEMO_KEY]: receipt },
        typedSearchAttributes: [
          { key: SA_SCENARIO, value: RUNBOOKS[built.runbook].scenario },
          { key: SA_SEVERITY, value: built.input.severity ?? RUNBOOKS[built.runbook].severity },
          { key: SA_TARGET, value: route.target },
          { key: SA_PHASE, value: 'DETECT' },
          { key: SA_RUNBOOK, value: built.runbook },
        ],
      }),
    );
    // Which request started a run is in its memo (the starter's receipt). This process remembers it
    // per run, so only the first sight of a run costs a describe: an alert storm on one incident is
    // one extra call, not one per alert, and concurrent first alerts still agree on who started it.
    let starter = starters.get(handle.signaledRunId);
    if (starter === undefined) {
      const description = await temporal('describe', () =>
        client.workflow.getHandle(workflowId, handle.signaledRunId).describe(),
      );
      starter = String(description.memo?.[RECEIPT_MEMO_KEY] ?? '');
      remember(handle.signaledRunId, starter);
    }
    return { action: starter === receipt ? 'started' : 'deduplicated' };
  }

  return { dispatch };
}

export type Dispatcher = ReturnType<typeof createDispatcher>;
