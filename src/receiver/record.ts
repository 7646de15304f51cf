/**
 * Alerts the receiver did not act on (unrouted, refused, invalid, ignored, resolved without an
 * incident) are appended here as JSON lines, so nothing disappears silently and routes can be added
 * from evidence.
 *
 * The file is bounded: an append that would take it past `maxBytes` first rotates it
 * (`unrouted-alerts.jsonl` → `.1` → `.2` …), and past `keep` old files the oldest is deleted. Both
 * are reported through `onRotate`, which the server logs and counts.
 */
import { appendFile, mkdir, rename, rm, stat } from 'node:fs/promises';
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
  /** An invalid alert as it was received. */
  received?: unknown;
}

export interface RecorderOptions {
  /** Rotate before an append would take the file past this size. */
  maxBytes: number;
  /** Rotated files kept (`.1` … `.keep`); older ones are deleted. */
  keep: number;
  /** Called after each rotation; `deleted` names the old file removed to stay within `keep`, if any. */
  onRotate?: (rotation: { file: string; bytes: number; deleted?: string }) => void;
}

const isMissing = (err: unknown): boolean => (err as NodeJS.ErrnoException).code === 'ENOENT';

export function createRecorder(stateDir: string, opts: RecorderOptions) {
  const file = path.resolve(stateDir, UNROUTED_FILE);
  let ready: Promise<unknown> | undefined;
  /** Bytes in `file`, read from disk at the first append (the file outlives the process). */
  let size: number | undefined;
  // Appends are serialised so lines never interleave, whatever the platform's O_APPEND guarantees,
  // and so a rotation never races with an append.
  let tail: Promise<void> = Promise.resolve();

  async function currentSize(): Promise<number> {
    try {
      return (await stat(file)).size;
    } catch (err) {
      if (isMissing(err)) return 0;
      throw err;
    }
  }

  async function rotate(bytes: number): Promise<void> {
    const oldest = `${file}.${opts.keep}`;
    let deleted: string | undefined;
    try {
      await rm(oldest);
      deleted = oldest;
    } catch (err) {
      if (!isMissing(err)) throw err;
    }
    for (let i = opts.keep - 1; i >= 1; i--) {
      try {
        await rename(`${file}.${i}`, `${file}.${i + 1}`);
      } catch (err) {
        if (!isMissing(err)) throw err;
      }
    }
    await rename(file, `${file}.1`);
    size = 0;
    opts.onRotate?.({ file, bytes, ...(deleted ? { deleted } : {}) });
  }

  function record(entry: UnroutedRecord): Promise<void> {
    ready ??= mkdir(path.dirname(file), { recursive: true });
    const line = JSON.stringify(entry) + '\n';
    const bytes = Buffer.byteLength(line);
    const next = tail.then(async () => {
      await ready;
      size ??= await currentSize();
      if (size > 0 && size + bytes > opts.maxBytes) await rotate(size);
      await appendFile(file, line, 'utf8');
      size += bytes;
    });
    tail = next.catch(() => {
      // After a failed write the size on disk is unknown: read it again next time.
      size = undefined;
    });
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
