/**
 * Alerts the receiver did not act on (unrouted, refused, ignored, resolved without an incident) are
 * appended here as JSON lines, so nothing disappears silently and routes can be added from evidence.
 */
import { appendFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { AlertAction } from './dispatch';
import type { IncomingAlert } from './payloads';

export const UNROUTED_FILE = 'unrouted-alerts.jsonl';

export interface UnroutedRecord {
  at: string;
  source: string;
  action: AlertAction;
  reason: string;
  alertname: string;
  status?: string;
  runbook?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  fingerprint?: string;
}

export function createRecorder(stateDir: string) {
  const file = path.resolve(stateDir, UNROUTED_FILE);
  let ready: Promise<unknown> | undefined;
  // Appends are serialised so lines never interleave, whatever the platform's O_APPEND guarantees.
  let tail: Promise<void> = Promise.resolve();

  function record(entry: UnroutedRecord): Promise<void> {
    ready ??= mkdir(path.dirname(file), { recursive: true });
    const line = JSON.stringify(entry) + '\n';
    const next = tail.then(async () => {
      await ready;
      await appendFile(file, line, 'utf8');
    });
    tail = next.catch(() => undefined);
    return next;
  }

  function fromAlert(alert: IncomingAlert, action: AlertAction, reason: string, runbook?: string): UnroutedRecord {
    return {
      at: new Date().toISOString(),
      source: alert.source,
      action,
      reason,
      alertname: alert.name,
      status: alert.status,
      ...(runbook ? { runbook } : {}),
      labels: alert.labels,
      annotations: alert.annotations,
      ...(alert.fingerprint ? { fingerprint: alert.fingerprint } : {}),
    };
  }

  /** Resolves once every append started so far has finished. */
  function flush(): Promise<void> {
    return tail;
  }

  return { file, record, fromAlert, flush };
}

export type Recorder = ReturnType<typeof createRecorder>;
