/**
 * What the engine's HTTP servers (the alert receiver, the codec server) share for answering requests:
 * an error that carries its status, and a bounded, deadline-bound read of a request body.
 */
import type { IncomingMessage } from 'node:http';

/** A refusal with its HTTP status; the message is what the client reads. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
    /** `reason` names the refusal in metrics; `details` are merged into the JSON answer. */
    readonly extra: { reason?: string; details?: Record<string, unknown> } = {},
  ) {
    super(message);
  }

  get reason(): string {
    return this.extra.reason ?? `http_${this.status}`;
  }
}

export interface Body {
  bytes: Buffer;
  tooLarge: boolean;
}

export interface ReadBodyOptions {
  /**
   * Past `limit`, up to `limit * drainFactor` bytes (at least 4 MiB) are read and dropped so the
   * client, which is usually still writing, gets its 413; past that the connection is cut.
   */
  drainFactor?: number;
  /** The whole body must arrive within this time, or the read fails with a 408 that closes the connection. */
  timeoutMs?: number;
}

/** Reads the body up to `limit`; past it the rest is drained (bounded) so the client still gets its 413. */
export function readBody(req: IncomingMessage, limit: number, opts: ReadBodyOptions = {}): Promise<Body> {
  const drainCap = Math.max(limit * (opts.drainFactor ?? 4), 4 * 1024 * 1024);
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > drainCap) {
    req.resume();
    return Promise.resolve({ bytes: Buffer.alloc(0), tooLarge: true });
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = Number.isFinite(declared) && declared > limit;
    const timer =
      opts.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            req.pause();
            reject(
              new HttpError(
                408,
                `the request body did not arrive within ${opts.timeoutMs} ms (${size} bytes received)`,
                { connection: 'close' },
                { reason: 'body_timeout' },
              ),
            );
          }, opts.timeoutMs);
    const done = (): void => clearTimeout(timer);
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) tooLarge = true;
      if (!tooLarge) chunks.push(chunk);
      if (size > drainCap) {
        done();
        resolve({ bytes: Buffer.alloc(0), tooLarge: true });
        req.destroy();
      }
    });
    req.on('end', () => {
      done();
      resolve({ bytes: tooLarge ? Buffer.alloc(0) : Buffer.concat(chunks), tooLarge });
    });
    // A client that goes away mid-body: node reports it as an error ("aborted"), or only closes the
    // request; either way the read is settled as a 400, so nothing waits or reports a server error.
    const aborted = (): HttpError =>
      new HttpError(
        400,
        `the connection closed before the body was complete (${size} bytes received)`,
        {},
        { reason: 'aborted' },
      );
    req.on('error', (err) => {
      done();
      reject(req.complete ? err : aborted());
    });
    req.on('close', () => {
      done();
      if (!req.complete) reject(aborted());
    });
  });
}
