/**
 * Seed 002's first five minutes and post-incident steps, run by real incidents: the PagerDuty incident
 * an alert came from is acknowledged through PagerDuty's REST API; an incident that needs people gets
 * its channel `#inc-YYYY-MM-DD-<short-name>` and is announced in #incidents through Slack's Web API;
 * when it closes, #incidents hears the outcome and the post-mortem date (48 hours). A false alarm is
 * acknowledged but announced nowhere. PagerDuty and Slack are loopback servers that answer as their
 * documented APIs do (test/helpers/chat-apis.ts).
 */
import type { TargetConfig } from '../../src/config';
import { closeSignal, type IncidentRecord } from '../../src/workflows/contracts';
import { fakePagerDuty, fakeSlack, type FakeApi } from '../helpers/chat-apis';
import { startEngine, waitUntil, type Engine } from '../helpers/engine';

jest.setTimeout(180_000);

const PD_KEY = 'pd-first-minutes-key';
const BOT = 'xoxb-first-minutes';
let engine: Engine;
let pd: FakeApi;
let slack: Awaited<ReturnType<typeof fakeSlack>>;
const incidents = { PFALSE1: { number: 11, status: 'triggered' }, PREAL22: { number: 22, status: 'triggered' } };

const fromPagerDuty = (id: string) => ({
  source: 'pagerduty' as const,
  name: 'SYSTEM_ERROR',
  status: 'firing' as const,
  labels: { alertname: 'SYSTEM_ERROR', pagerduty_incident_id: id },
  receivedAt: new Date().toISOString(),
});

beforeAll(async () => {
  pd = await fakePagerDuty({ token: PD_KEY, incidents });
  slack = await fakeSlack({ token: BOT, existing: ['incidents'] });
  engine = await startEngine({
    configure: (c) => {
      c.notify.pagerduty = { apiUrl: pd.url, token: { value: PD_KEY }, from: 'remediation@alfred.example', timeoutMs: 2000 };
      c.notify.slack = { botToken: { value: BOT }, apiUrl: `${slack.url}/api`, username: 'remediation-engine', attempts: 1, timeoutMs: 2000 };
      // A target whose Redis container does not exist: diagnosis cannot run, people must look.
      const t = structuredClone(c.targets.alfred) as TargetConfig;
      t.redis = { ...t.redis, component: 'no-such-redis' } as TargetConfig['redis'];
      c.targets['no-redis'] = t;
    },
  });
});

afterAll(async () => {
  await engine.stop();
  await pd.close();
  await slack.close();
});

test('a false alarm from PagerDuty: acknowledged within 2 minutes, announced nowhere', async () => {
  const h = await engine.start({ runbook: 'cacheFailure', target: 'alfred', requestedBy: 'pagerduty', alert: fromPagerDuty('PFALSE1') });
  const rec = await engine.result(h);
  expect(rec.outcome).toBe('false-alarm');
  expect(rec.timeline.map((t) => t.event)).toContain('PagerDuty incident PFALSE1 (#11) acknowledged');
  expect(incidents.PFALSE1.status).toBe('acknowledged');
  const ack = pd.requests.find((r) => r.path === '/incidents/PFALSE1');
  expect((ack?.at ?? Infinity) - Date.parse(rec.openedAt)).toBeLessThan(120_000);
  expect(rec.channel).toBeUndefined();
  expect(rec.postmortemDueBy).toBeUndefined();
  const mine = slack.posts.filter((p) => p.text.includes(rec.incidentId));
  // Only the engine's usual resolved notice, in the default channel: no announcement, no channel.
  expect(mine).toEqual([{ channel: '#incidents', text: expect.stringMatching(/^\*INC-05 Redis \/ cache failure on alfred: false-alarm\*/) }]);
  expect(slack.channels).toEqual(new Set(['incidents']));
});

test('an incident that needs people: acknowledged, its channel opened, announced, and closed with the post-mortem date', async () => {
  const h = await engine.start({ runbook: 'cacheFailure', target: 'no-redis', requestedBy: 'pagerduty', alert: fromPagerDuty('PREAL22') });
  const open = await engine.waitFor(h, (r) => r.phase === 'ESCALATED' && r.timeline.some((t) => /opened$/.test(t.event)));
  const channel = `#inc-${open.openedAt.slice(0, 10)}-no-redis-cache-failure`;
  expect(open.channel).toBe(channel);
  expect(slack.channels.has(channel.slice(1))).toBe(true);
  expect(incidents.PREAL22.status).toBe('acknowledged');
  const mine = () => slack.posts.filter((p) => p.text.includes(open.incidentId));
  // The announcement is delivered beside the channel's opening, not after it: wait for its post.
  await waitUntil('the announcement in #incidents', async () => mine().some((p) => p.text.startsWith('*INC opened')), 30_000);
  expect(mine().filter((p) => p.text.startsWith('*INC opened'))).toEqual([
    // Seed 002's matrix: SEV-2 engages IC + SRE, response within 15 minutes.
    {
      channel: '#incidents',
      text: expect.stringMatching(new RegExp(`^\\*INC opened — SEV-2 — INC-05 .* on no-redis\\* @incident-commander @sre\\n.*Incident channel: ${channel}\\. Response: within 15 minutes\\.`)),
    },
  ]);
  // What follows goes to the incident's own channel: here, the escalation.
  const escalation = (p: { channel: string; text: string }) => p.channel === channel && /needs a human\* @platform-lead @incident-commander @sre\n/.test(p.text);
  await waitUntil('the escalation in the incident channel', async () => mine().some(escalation), 30_000);
  expect(mine().some(escalation)).toBe(true);

  await h.signal(closeSignal, { incidentId: h.workflowId, by: 'alice', note: 'redis container renamed; fixed by hand' });
  const rec: IncidentRecord = await engine.result(h);
  expect(rec.outcome).toBe('escalated');
  expect(Date.parse(rec.postmortemDueBy ?? '') - Date.parse(rec.closedAt ?? '')).toBe(48 * 3600_000);
  await waitUntil('the close in #incidents', async () => mine().some((p) => p.text.startsWith('*INC closed')), 30_000);
  const closed = mine().find((p) => p.channel === '#incidents' && p.text.startsWith('*INC closed — SEV-2 — INC-05'));
  expect(closed?.text).toContain(`Post-mortem due by ${rec.postmortemDueBy} (within 48 hours)`);
  expect(rec.timeline.map((t) => t.event)).toContain(`post-mortem due by ${rec.postmortemDueBy}`);
});
