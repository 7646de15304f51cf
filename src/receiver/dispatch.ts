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
  'started' | 'deduplicated' | 'resolved-signalled' | 'resolved-no-incident' | 'unrouted' | 'refused' | 'ignored';

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

    if (alert.status === 'resolved') {
      try {
        await temporal('signal', () => client.workflow.getHandle(workflowId).signal(alertSignal, event));
        return { ...base, action: 'resolved-signalled', workflowId };
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) {
          return { ...base, action: 'resolved-no-incident', workflowId, reason: 'no running incident to resolve' };
        }
        throw err;
      }
    }

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
    return { ...base, action: starter === receipt ? 'started' : 'deduplicated', workflowId };
  }

  return { dispatch };
}

export type Dispatcher = ReturnType<typeof createDispatcher>;
