/**
 * Approve from Slack, end to end on the real parts: the engine's worker on the real Temporal server
 * posts an approval request to a loopback Slack Web API (Block Kit, Approve / Reject buttons); a
 * button press is sent to the real codec server as Slack sends it (form-encoded `payload`, signed
 * `v0` with the app's signing secret); the codec server seals it for the mapped operator and sends the
 * incident's "decide" update; the outcome replaces the message through `response_url`. Unsigned,
 * wrongly signed, stale, replayed and unmapped presses are refused and count for nobody.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { testLogger } from '../helpers/test-logs';
import { CodecServerConfigSchema } from '../../src/codec-server/config';
import { createCodecServer, type CodecServer } from '../../src/codec-server/server';
import { slackSignature } from '../../src/codec-server/slack';
import type { CodecSecrets } from '../../src/lib/codec';
import { statusQuery, type IncidentRecord } from '../../src/workflows/contracts';
import { fakeSlack, type FakeApi } from '../helpers/chat-apis';
import { fixtureSecrets } from '../helpers/codec';
import { startEngine, type Engine } from '../helpers/engine';

jest.setTimeout(120_000);

const BOT = 'xoxb-test-slack-approvals';
const SIGNING_SECRET = 'slack-test-signing-secret-0123456789abcdef';
const USERS: Record<string, string> = { U0BOB: 'bob', U0ALICE: 'alice', U0DAVE: 'dave' };

let engine: Engine;
let slack: FakeApi & { channels: Set<string> };
let codec: CodecServer;
let responses: http.Server;
let responseUrl: string;
/** What the codec server posted to response_url. */
const outcomes: Record<string, unknown>[] = [];

beforeAll(async () => {
  slack = await fakeSlack({ token: BOT, existing: ['incidents'] });
  responses = http.createServer((req, res) => {
    let data = '';
    req.on('data', (c: Buffer) => (data += c.toString()));
    req.on('end', () => {
      outcomes.push(JSON.parse(data) as Record<string, unknown>);
      res.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((r) => responses.listen(0, '127.0.0.1', r));
  responseUrl = `http://127.0.0.1:${(responses.address() as AddressInfo).port}/actions/T0/1/abc`;
  engine = await startEngine({
    configure: (c) => {
      c.notify.slack = { botToken: { value: BOT }, apiUrl: `${slack.url}/api`, username: 'remediation-engine', attempts: 1, timeoutMs: 2000 };
    },
  });
  const secrets: CodecSecrets = {
    ...fixtureSecrets(),
    slack: { signingSecret: Buffer.from(SIGNING_SECRET), users: new Map(Object.entries(USERS)) },
  };
  const config = CodecServerConfigSchema.parse({
    listen: { port: 0 },
    sessionRevocationsFile: '',
    temporal: { address: engine.config.temporal.address, namespace: engine.config.temporal.namespace },
    slack: { responseUrlPrefixes: [`http://127.0.0.1:${(responses.address() as AddressInfo).port}/actions/`] },
  });
  codec = createCodecServer({ config, secrets, logger: testLogger('codec-server') });
  await codec.listen(0, '127.0.0.1');
});

afterAll(async () => {
  await codec?.close();
  await engine?.stop();
  await slack?.close();
  await new Promise<void>((r) => responses?.close(() => r()));
});

interface Button {
  action_id: string;
  value: string;
}

/** A press of `button` by Slack user `user`, as Slack's block_actions payload. */
function press(user: string, button: Button, message: Record<string, unknown>): string {
  const payload = {
    type: 'block_actions',
    user: { id: user, username: user.toLowerCase(), team_id: 'T0' },
    team: { id: 'T0' },
    api_app_id: 'A0',
    container: { type: 'message', channel_id: 'C1', message_ts: '1.0' },
    trigger_id: `${Date.now()}.trigger`,
    response_url: responseUrl,
    message,
    actions: [{ action_id: button.action_id, block_id: 'remediation-decision', value: button.value, type: 'button', action_ts: `${Date.now() / 1000}` }],
  };
  return new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
}

async function post(body: string, headers: Record<string, string>): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${codec.url}/slack/interactions`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body });
  const text = await res.text();
  return { status: res.status, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

/** Headers Slack would send for `body` at `at` (seconds). */
function signed(body: string, at = Math.floor(Date.now() / 1000), secret = SIGNING_SECRET): Record<string, string> {
  return { 'x-slack-request-timestamp': String(at), 'x-slack-signature': slackSignature(Buffer.from(secret), String(at), Buffer.from(body)) };
}

async function until<T>(what: string, f: () => T | undefined | Promise<T | undefined>, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not reached`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('a press of Approve, signed by Slack, counts for the mapped operator; the message shows the outcome', async () => {
  const h = await engine.start({ runbook: 'rollback', target: 'alfred', params: { services: [], restoreBackup: true } });
  const status = (): Promise<IncidentRecord> => h.query(statusQuery);
  await engine.waitFor(h, (s) => s.pending.some((p) => p.stepId === 'restore-backup'));

  // The approval request reached Slack with its buttons.
  const request = await until('the Block Kit approval request', () =>
    slack.requests.find((r) => r.path === '/api/chat.postMessage' && JSON.stringify(r.body).includes(h.workflowId) && JSON.stringify(r.body).includes('"actions"')),
  );
  const message = request.body as { channel: string; text: string; blocks: { type: string; elements?: Button[] }[] };
  expect(message.channel).toMatch(/^#inc-\d{4}-\d{2}-\d{2}-alfred-rollback$/);
  const buttons = message.blocks.find((b) => b.type === 'actions')?.elements ?? [];
  expect(buttons.map((b) => b.action_id)).toEqual(['approve', 'reject']);
  const approve = buttons[0] as Button;
  expect(JSON.parse(approve.value)).toEqual({ incidentId: h.workflowId, stepId: 'restore-backup' });
  const asSent = { text: message.text, blocks: message.blocks };

  // Refused before anything is sent: no signature, a wrong one, a stale one, an unmapped user.
  const bobPress = press('U0BOB', approve, asSent);
  expect((await post(bobPress, {})).status).toBe(401);
  expect((await post(bobPress, signed(bobPress, undefined, 'not-the-signing-secret-0000000000'))).status).toBe(401);
  const stale = await post(bobPress, signed(bobPress, Math.floor(Date.now() / 1000) - 6 * 60));
  expect(stale.status).toBe(401);
  expect(stale.json.error).toMatch(/stale/);
  const tampered = signed(bobPress);
  expect((await post(press('U0ALICE', approve, asSent), tampered)).status).toBe(401);
  const stranger = press('U0MALLORY', approve, asSent);
  const unmapped = await post(stranger, signed(stranger));
  expect(unmapped.status).toBe(200);
  expect(unmapped.json).toMatchObject({ response_type: 'ephemeral', text: expect.stringMatching(/U0MALLORY\) is not mapped/) });

  // Mapped but not an approver: sent, and the incident refuses it; the presser alone is told why.
  const davePress = press('U0DAVE', approve, asSent);
  expect((await post(davePress, signed(davePress))).status).toBe(200);
  const daveOutcome = await until('dave told', () => outcomes.find((o) => String(o.text).includes('dave')));
  expect(daveOutcome).toMatchObject({ response_type: 'ephemeral', replace_original: false, text: expect.stringMatching(/^Not counted: dave is not an allowed approver/) });

  // bob: counted, sealed for bob via Slack; the message is replaced with the outcome.
  const headers = signed(bobPress);
  expect((await post(bobPress, headers)).status).toBe(200);
  const bobOutcome = await until('bob counted', () => outcomes.find((o) => String(o.text).startsWith('Approved by bob')));
  expect(bobOutcome).toMatchObject({ replace_original: true, text: 'Approved by bob (Slack): restore-backup is now pending (1 approval(s): bob)' });
  expect(JSON.stringify(bobOutcome.blocks)).not.toContain('"actions"');
  // The same request again is a replay.
  expect((await post(bobPress, headers)).status).toBe(409);

  const rec = await status();
  expect(rec.pending.find((p) => p.stepId === 'restore-backup')?.approvals).toEqual(['bob']);
  const events = rec.timeline.map((t) => t.event);
  expect(events).toContain('bob (sealed) approved restore-backup');
  expect(events.filter((e) => / approved restore-backup/.test(e))).toEqual(['bob (sealed) approved restore-backup']);

  // alice rejects from Slack: the step does not run, the incident escalates; a person closes it.
  const reject = buttons[1] as Button;
  const alicePress = press('U0ALICE', reject, asSent);
  expect((await post(alicePress, signed(alicePress))).status).toBe(200);
  await until('alice counted', () => outcomes.find((o) => String(o.text).startsWith('Rejected by alice')));
  await engine.waitFor(h, (s) => s.phase === 'ESCALATED');
  expect((await status()).actions.find((a) => a.stepId === 'restore-backup')).toMatchObject({ state: 'rejected', rejectedBy: 'alice' });
  await h.terminate('test finished');
});
