/** A small router over node:http: exact or `:param` paths, JSON bodies, typed errors. */
import type { IncomingMessage, ServerResponse } from 'node:http';

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

export interface Ctx {
  req: IncomingMessage;
  res: ServerResponse;
  method: string;
  path: string;
  route: string;
  params: Record<string, string>;
  query: URLSearchParams;
  clientIp: string;
  requestId: string;
  /** Extra fields for this request's log line (provider, user_id). */
  logFields: Record<string, string | number | undefined>;
  body(): Promise<Record<string, unknown>>;
}

export type Handler = (ctx: Ctx) => Promise<unknown>;

interface RouteDef {
  method: string;
  pattern: string;
  parts: string[];
  handler: Handler;
}

export class Router {
  private routes: RouteDef[] = [];

  on(method: string, pattern: string, handler: Handler): this {
    this.routes.push({ method, pattern, parts: pattern.split('/'), handler });
    return this;
  }

  match(
    method: string,
    path: string,
  ): { route: RouteDef; params: Record<string, string> } | { allowed: string[] } | null {
    const parts = path.split('/');
    const allowed: string[] = [];
    for (const route of this.routes) {
      if (route.parts.length !== parts.length) continue;
      const params: Record<string, string> = {};
      let ok = true;
      for (let i = 0; i < parts.length; i++) {
        const want = route.parts[i]!;
        const got = parts[i]!;
        if (want.startsWith(':')) params[want.slice(1)] = decodeURIComponent(got);
        else if (want !== got) {
          ok = false;
          break;
        }
      }
      if (!ok) continue;
      if (route.method === method) return { route, params };
      allowed.push(route.method);
    }
    return allowed.length ? { allowed } : null;
  }
}

const MAX_BODY = 1024 * 1024;

export function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY) {
        reject(new HttpError(413, 'request body too large'));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8').trim();
      if (!text) return resolve({});
      try {
        const parsed: unknown = JSON.parse(text);
        if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
          return reject(new HttpError(400, 'request body must be a JSON object'));
        }
        resolve(parsed as Record<string, unknown>);
      } catch {
        reject(new HttpError(400, 'request body is not valid JSON'));
      }
    });
    req.on('error', reject);
  });
}

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  if (res.headersSent) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

export function sendText(res: ServerResponse, status: number, text: string, contentType: string): void {
  if (res.headersSent) return;
  res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** X-Forwarded-For's first address, else the socket's; IPv4-mapped IPv6 is shown as IPv4. */
export function clientIp(req: IncomingMessage): string {
  const fwd = req.headers['x-forwarded-for'];
  const first = (Array.isArray(fwd) ? fwd[0] : fwd)?.split(',')[0]?.trim();
  const ip = first && /^[0-9a-fA-F:.]{2,45}$/.test(first) ? first : (req.socket.remoteAddress ?? 'unknown');
  return ip.startsWith('::ffff:') ? ip.slice(7) : ip;
}

// Body field helpers: validate and narrow, or answer 400.
export function optString(body: Record<string, unknown>, key: string, max = 500): string | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' || v.length > max)
    throw new HttpError(400, `${key} must be a string of at most ${max} characters`);
  return v;
}

export function reqString(body: Record<string, unknown>, key: string, max = 500): string {
  const v = optString(body, key, max);
  if (!v) throw new HttpError(400, `${key} is required`);
  return v;
}

export function optNumber(body: Record<string, unknown>, key: string): number | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new HttpError(400, `${key} must be a number`);
  return v;
}

export function optBool(body: Record<string, unknown>, key: string): boolean | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw new HttpError(400, `${key} must be true or false`);
  return v;
}

export function idParam(params: Record<string, string>, key: string): string {
  const v = params[key] ?? '';
  if (!/^[1-9][0-9]{0,17}$/.test(v)) throw new HttpError(400, `${key} must be a positive integer`);
  return v;
}
