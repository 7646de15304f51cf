/**
 * The receiver on the wire, with raw TCP connections (node:net) for what fetch cannot send: malformed
 * request lines and targets, requests refused before their body is read, stalled headers and bodies,
 * and the cap on open connections. A real receiver, talking to the real Temporal dev server.
 */
import { connect, type Socket } from 'node:net';
import { ReceiverConfigSchema } from '../../src/receiver/config';
import { eventually, rawRequest, startTestReceiver, TOKENS, type TestReceiver } from './helpers';

let t: TestReceiver;

beforeAll(async () => {
  t = await startTestReceiver({
    config: { bodyTimeoutMs: 500, headersTimeoutMs: 500, requestTimeoutMs: 5000 },
  });
});

afterAll(async () => {
  await t?.stop();
});

const json = (body: string): { error?: string } => JSON.parse(body) as { error?: string };

describe('a malformed request line or target is a 400 in JSON, never a 500', () => {
  test.each([
    ['http://[', 'not a valid absolute URL (check its host and port)'],
    ['http://a:b:c/x', 'not a valid absolute URL (check its host and port)'],
    ['http://%zz/', 'not a valid absolute URL (check its host and port)'],
    ['http://127.0.0.1:99999/alerts/generic', 'not a valid absolute URL (check its host and port)'],
    ['ftp://example/alerts/generic', 'only http and https URLs are served'],
    ['*', 'expected a path such as /alerts/alertmanager or an absolute http URL'],
  ])('POST %s', async (target, why) => {
    const res = await rawRequest(t.receiver.url, `POST ${target} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n`);
    expect(res.status).toBe(400);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(json(res.body).error).toBe(`malformed request target ${JSON.stringify(target)}: ${why}`);
  });

  test('the error (and the log) leave out the query string, where a credential might be', async () => {
    const res = await rawRequest(
      t.receiver.url,
      'POST http://[/alerts/generic?token=hunter2 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n',
    );
    expect(res.status).toBe(400);
    expect(json(res.body).error).toBe(
      'malformed request target "http://[/alerts/generic?…": not a valid absolute URL (check its host and port)',
    );
    expect(t.logs.text()).not.toContain('hunter2');
  });

  test.each([
    ['POST /alerts/generic HTTP/1.1 extra', /^malformed HTTP request: Expected CRLF after version/],
    ['POST alerts/generic HTTP/1.1', /^malformed HTTP request: Unexpected char in url schema/],
    ['POST http://exa mple/ HTTP/1.1', /^malformed HTTP request: Expected HTTP\//],
  ])('a request line node cannot parse (%s) is answered in JSON too, and the connection closed', async (line, why) => {
    const res = await rawRequest(t.receiver.url, `${line}\r\nHost: x\r\n\r\n`);
    expect(res.status).toBe(400);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(json(res.body).error).toMatch(why);
    expect(res.closed).toBe(true);
  });

  test('a well-formed absolute-form target is served like its path', async () => {
    const res = await rawRequest(
      t.receiver.url,
      'POST http://receiver.example/alerts/generic HTTP/1.1\r\nHost: receiver.example\r\nContent-Length: 0\r\n\r\n',
    );
    expect(res.status).toBe(401);
    expect(json(res.body).error).toBe('generic: missing "Authorization: Bearer <token>" header');
  });

  test('none of them reached the 500 path', async () => {
    const metrics = await (await fetch(`${t.receiver.url}/metrics`)).text();
    expect(metrics).not.toMatch(/code="5\d\d"/);
    expect(t.logs.text()).not.toContain('unexpected error');
    expect(metrics).toMatch(/remediation_receiver_client_errors_total\{status="400"\} [1-9]/);
  });
});

describe('a request is authenticated before its body is read', () => {
  // 100 kB announced (within the body limit), none of it sent: an answer can only come from
  // checks made before the body.
  const headers = (path: string, extra = '') =>
    `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n${extra}\r\n`;

  test.each([
    ['/alerts/alertmanager', '', 'alertmanager: missing "Authorization: Bearer <token>" header'],
    ['/alerts/generic', 'Authorization: Bearer wrong\r\n', 'generic: invalid bearer token'],
    ['/alerts/pagerduty', '', 'pagerduty: missing X-PagerDuty-Signature header'],
    ['/alerts/grafana', '', 'grafana: missing X-Grafana-Alerting-Signature header'],
    [
      '/alerts/grafana',
      `X-Grafana-Alerting-Signature: ab\r\nX-Grafana-Alerting-Timestamp: ${Math.floor(Date.now() / 1000) - 3600}\r\n`,
      'grafana: X-Grafana-Alerting-Timestamp is more than 300 s from now',
    ],
  ])('%s %j → 401 at once, the body unread, the connection closed', async (path, extra, error) => {
    const res = await rawRequest(t.receiver.url, headers(path, extra));
    expect(res.status).toBe(401);
    expect(json(res.body).error).toBe(error);
    expect(res.headers.connection).toBe('close');
    expect(res.closed).toBe(true);
    // Had the receiver waited for the body, the answer would be the body deadline's 408.
  });

  test('with Expect: 100-continue, an unauthenticated sender never gets the go-ahead', async () => {
    const res = await rawRequest(t.receiver.url, headers('/alerts/alertmanager', 'Expect: 100-continue\r\n'));
    expect(res.status).toBe(401);
    expect(res.body).not.toContain('100 Continue');
  });

  test('an authenticated one gets the go-ahead, sends its body, and is answered', async () => {
    const body = JSON.stringify({ alertname: `NoRoute${t.run}`, target: t.target });
    const socket = connect(Number(new URL(t.receiver.url).port), '127.0.0.1');
    const head =
      `POST /alerts/generic HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n` +
      `Authorization: Bearer ${TOKENS.generic}\r\nExpect: 100-continue\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n`;
    const goAhead = new Promise<string>((resolve) => socket.once('data', (b: Buffer) => resolve(b.toString())));
    const answer = rawRequest(t.receiver.url, head, { socket });
    expect(await goAhead).toMatch(/^HTTP\/1\.1 100 Continue/);
    socket.write(body);
    const res = await answer;
    expect(res.status).toBe(202);
  });
});

describe('deadlines and the connection cap', () => {
  test('the settings default to a 10 s body deadline, 10 s for headers, 30 s for a request', () => {
    expect(ReceiverConfigSchema.parse({})).toMatchObject({
      bodyTimeoutMs: 10_000,
      headersTimeoutMs: 10_000,
      requestTimeoutMs: 30_000,
      maxConnections: 256,
    });
  });

  test('a stalled body is closed with 408 at its deadline; stalled headers too', async () => {
    const [body, head] = await Promise.all([
      rawRequest(
        t.receiver.url,
        'POST /alerts/generic HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' +
          `Authorization: Bearer ${TOKENS.generic}\r\nContent-Length: 100\r\n\r\n{"alertname":`,
      ),
      rawRequest(t.receiver.url, 'POST /alerts/generic HTTP/1.1\r\nHost: x\r\n'),
    ]);
    expect(body.status).toBe(408);
    expect(json(body.body).error).toBe('the request body did not arrive within 500 ms (13 bytes received)');
    expect(body.closed).toBe(true);
    expect(body.ms).toBeGreaterThanOrEqual(450);
    expect(body.ms).toBeLessThan(2000);

    expect(head.status).toBe(408);
    expect(json(head.body).error).toMatch(/^the request did not arrive within its deadline/);
    expect(head.closed).toBe(true);
    // headersTimeout (0.5 s), noticed within node's check interval (0.5 s here, 30 s by default).
    expect(head.ms).toBeLessThan(2000);

    const metrics = await (await fetch(`${t.receiver.url}/metrics`)).text();
    expect(metrics).toMatch(/remediation_receiver_alerts_rejected_total\{source="generic",reason="body_timeout"\} 1/);
  });

  test('a sender that goes away mid-body is counted as aborted, never as a server error', async () => {
    const socket = connect(Number(new URL(t.receiver.url).port), '127.0.0.1');
    socket.write(
      'POST /alerts/generic HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' +
        `Authorization: Bearer ${TOKENS.generic}\r\nContent-Length: 100\r\n\r\n{"alertname":`,
    );
    await new Promise((r) => setTimeout(r, 50));
    socket.destroy();
    await eventually(
      async () => (await fetch(`${t.receiver.url}/metrics`)).text(),
      (m) => /remediation_receiver_alerts_rejected_total\{source="generic",reason="aborted"\} 1/.test(m),
      2000,
      50,
    );
    expect(t.logs.text()).not.toContain('unexpected error');
  });

  test('past maxConnections a new connection is refused, and the open ones still work', async () => {
    const capped = await startTestReceiver({ client: t.client, config: { maxConnections: 3 } });
    const sockets: Socket[] = [];
    const get = (socket: Socket) =>
      rawRequest(capped.receiver.url, 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n', { socket, keepOpen: true });
    try {
      for (let i = 0; i < 3; i++) {
        const socket = connect(Number(new URL(capped.receiver.url).port), '127.0.0.1');
        sockets.push(socket);
        expect((await get(socket)).status).toBe(200);
      }
      const beyond = await rawRequest(capped.receiver.url, 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n', {
        waitMs: 2000,
      });
      expect(beyond).toMatchObject({ closed: true, bytes: 0 });
      for (const socket of sockets) expect((await get(socket)).status).toBe(200);

      // The metrics come over one of the open connections too: no fourth one can be opened.
      const metrics = await rawRequest(capped.receiver.url, 'GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n', {
        socket: sockets[1]!,
        keepOpen: true,
      });
      expect(metrics.body).toMatch(/remediation_receiver_connections_dropped_total 1/);
      expect(capped.logs.text()).toContain('connection closed on arrival: maxConnections are open');
    } finally {
      for (const s of sockets) s.destroy();
      await capped.stop();
    }
  });
});
