/**
 * The notifier against a real HTTP receiver on loopback: a Slack-compatible webhook that fails
 * twice, then accepts. Also: a sink that already took a message is not sent it again when the
 * activity is retried, and the webhook's token never shows in an error.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import Docker from 'dockerode';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createNotifyActivities, type Notification } from '../../src/activities/engine/notify';
import { testConfig } from '../helpers/engine';

interface Hook {
  server: Server;
  url: string;
  bodies: Record<string, unknown>[];
  statuses: number[];
}

/** A webhook answering with the given statuses in turn (the last one repeats). */
async function webhook(statuses: number[]): Promise<Hook> {
  const hook: Hook = { server: createServer(), url: '', bodies: [], statuses: [] };
  hook.server.on('request', (req, res) => {
    let data = '';
    req.on('data', (c: Buffer) => (data += c.toString()));
    req.on('end', () => {
      hook.bodies.push(JSON.parse(data) as Record<string, unknown>);
      const status = statuses[Math.min(hook.statuses.length, statuses.length - 1)] as number;
      hook.statuses.push(status);
      res.writeHead(status, { 'content-type': 'text/plain' }).end(status === 200 ? 'ok' : 'try later');
    });
  });
  await new Promise<void>((r) => hook.server.listen(0, '127.0.0.1', r));
  const { port } = hook.server.address() as { port: number };
  hook.url = `http://127.0.0.1:${port}/services/T000/B000/s3cr3t-token`;
  return hook;
}

const message: Notification = {
  incidentId: 'incident-cacheFailure-alfred',
  kind: 'status',
  stage: 'identified',
  severity: 2,
  contacts: ['@on-call'],
  title: '[Identified] Redis / cache failure (alfred)',
  text: 'We have identified the root cause: **Redis process exited**.',
};

function notifier(url: string, attempts = 3) {
  const dir = mkdtempSync(path.join(tmpdir(), 'notify-'));
  const config = testConfig();
  config.notify = { file: path.join(dir, 'n.jsonl'), stdout: false, slack: { webhook: { value: url }, apiUrl: 'https://slack.com/api', username: 'remediation-engine', attempts, timeoutMs: 2000, channel: '#incidents' }, announce: { channel: '#incidents' } };
  const acts = createNotifyActivities({ config, docker: new Docker(), logger: pino({ level: 'silent' }) });
  return { acts, file: config.notify.file as string };
}

const lines = (file: string): unknown[] =>
  readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as unknown);

test('a webhook that fails twice then accepts gets the message on the third try, once', async () => {
  const hook = await webhook([500, 503, 200]);
  try {
    const { acts, file } = notifier(hook.url);
    const r = (await new MockActivityEnvironment().run(acts.notify, message)) as { delivered: string[] };
    expect(r.delivered.sort()).toEqual(['file', 'slack']);
    expect(hook.statuses).toEqual([500, 503, 200]);
    // Slack-compatible: text with mrkdwn bold, username, channel.
    expect(hook.bodies[2]).toEqual({
      username: 'remediation-engine',
      channel: '#incidents',
      text: expect.stringContaining('*[Identified] Redis / cache failure (alfred)* @on-call\nWe have identified the root cause: *Redis process exited*.'),
    });
    expect(lines(file)).toHaveLength(1);
  } finally {
    hook.server.close();
  }
});

test('a webhook that keeps failing fails the attempt without its token; the retry skips the file it already wrote', async () => {
  const hook = await webhook([500]);
  try {
    const { acts, file } = notifier(hook.url, 2);
    const first = new MockActivityEnvironment();
    let details: unknown;
    first.on('heartbeat', (d: unknown) => (details = d));
    const err = await first.run(acts.notify, message).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toBe('notification not delivered: slack: Slack webhook refused the message: HTTP 500');
    expect((err as Error).message).not.toContain('s3cr3t-token');
    expect(details).toEqual(['file']);
    expect(hook.statuses).toEqual([500, 500]);

    // Temporal's next attempt carries the last heartbeat details: only the webhook is tried again.
    const retry = new MockActivityEnvironment({ attempt: 2, heartbeatDetails: details });
    await retry.run(acts.notify, message).catch(() => undefined);
    expect(hook.statuses).toEqual([500, 500, 500, 500]);
    expect(lines(file)).toHaveLength(1);
  } finally {
    hook.server.close();
  }
});

test('a 4xx (bad webhook) is not hammered: one request per attempt', async () => {
  const hook = await webhook([404]);
  try {
    const { acts } = notifier(hook.url, 3);
    await expect(new MockActivityEnvironment().run(acts.notify, message)).rejects.toThrow(/HTTP 404/);
    expect(hook.statuses).toEqual([404]);
  } finally {
    hook.server.close();
  }
});
