/**
 * Loopback servers that answer as PagerDuty's REST API v2 and Slack's Web API document it, for the
 * calls the engine makes: `PUT /incidents/{id}` (PagerDuty) and `conversations.create`,
 * `chat.postMessage` (Slack). They check what those APIs check (credentials, headers, body) and record
 * every request.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

export interface Recorded {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: unknown;
  at: number;
}

export interface FakeApi {
  url: string;
  requests: Recorded[];
  close(): Promise<void>;
}

async function serve(handle: (r: Recorded, res: ServerResponse) => void): Promise<FakeApi> {
  const requests: Recorded[] = [];
  const server: Server = createServer((req, res) => {
    let data = '';
    req.on('data', (c: Buffer) => (data += c.toString()));
    req.on('end', () => {
      let body: unknown = data;
      try {
        body = data ? JSON.parse(data) : undefined;
      } catch {
        /* kept as text */
      }
      const r: Recorded = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, body, at: Date.now() };
      requests.push(r);
      handle(r, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    requests,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void => {
  res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
};

/**
 * PagerDuty: incidents by id with their status; `token` is the only valid API key. `rateLimitFirst`
 * answers the first N calls with 429, as PagerDuty does past its rate limit.
 */
export async function fakePagerDuty(opts: { token: string; incidents: Record<string, { number: number; status: string }>; rateLimitFirst?: number }): Promise<FakeApi> {
  let limited = opts.rateLimitFirst ?? 0;
  return serve((r, res) => {
    if (r.headers.authorization !== `Token token=${opts.token}`) return json(res, 401, { error: { message: 'Unauthorized', code: 2006 } });
    if (r.headers.accept !== 'application/vnd.pagerduty+json;version=2') return json(res, 406, { error: { message: 'Not Acceptable', code: 2001 } });
    if (limited > 0) {
      limited--;
      return json(res, 429, { error: { message: 'Rate Limit Exceeded', code: 2020 } });
    }
    const m = /^\/incidents\/([A-Za-z0-9]+)$/.exec(r.path);
    if (r.method !== 'PUT' || !m) return json(res, 404, { error: { message: 'Not Found', code: 2100 } });
    if (typeof r.headers.from !== 'string' || !r.headers.from.includes('@')) {
      return json(res, 400, { error: { message: 'Invalid Input Provided', code: 2001, errors: ['A valid "From" header is required.'] } });
    }
    const body = r.body as { incident?: { type?: unknown; status?: unknown } } | undefined;
    if (body?.incident?.type !== 'incident_reference' || typeof body.incident.status !== 'string') {
      return json(res, 400, { error: { message: 'Invalid Input Provided', code: 2001, errors: ['Incident type must be incident_reference.'] } });
    }
    const incident = opts.incidents[m[1] as string];
    if (!incident) return json(res, 404, { error: { message: 'Not Found', code: 2100 } });
    // A resolved incident is not moved back (PagerDuty answers with it as it is).
    if (incident.status !== 'resolved') incident.status = body.incident.status;
    json(res, 200, { incident: { id: m[1], type: 'incident', incident_number: incident.number, status: incident.status } });
  });
}

/** Slack's Web API: HTTP 200 with `ok`, and an `error` code when not ok. Channels created are kept by name. */
export async function fakeSlack(opts: { token: string; existing?: string[] }): Promise<FakeApi & { channels: Set<string>; posts: Array<{ channel: string; text: string }> }> {
  const channels = new Set(opts.existing ?? []);
  const posts: Array<{ channel: string; text: string }> = [];
  const api = await serve((r, res) => {
    if (r.headers.authorization !== `Bearer ${opts.token}`) return json(res, 200, { ok: false, error: 'invalid_auth' });
    const body = (r.body ?? {}) as { name?: unknown; channel?: unknown; text?: unknown };
    if (r.path === '/api/conversations.create') {
      const name = String(body.name ?? '');
      if (!/^[a-z0-9_-]{1,80}$/.test(name)) return json(res, 200, { ok: false, error: 'invalid_name_specials' });
      if (channels.has(name)) return json(res, 200, { ok: false, error: 'name_taken' });
      channels.add(name);
      return json(res, 200, { ok: true, channel: { id: `C${channels.size}`, name } });
    }
    if (r.path === '/api/chat.postMessage') {
      const channel = String(body.channel ?? '');
      if (!channels.has(channel.replace(/^#/, ''))) return json(res, 200, { ok: false, error: 'channel_not_found' });
      posts.push({ channel, text: String(body.text ?? '') });
      return json(res, 200, { ok: true, channel, ts: `${Date.now() / 1000}` });
    }
    json(res, 404, { ok: false, error: 'unknown_method' });
  });
  return Object.assign(api, { channels, posts });
}
