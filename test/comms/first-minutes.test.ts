/**
 * Seed 002's first five minutes, activity by activity, against loopback servers that answer as
 * PagerDuty's REST API and Slack's Web API document: the PagerDuty acknowledgement, the incident
 * channel, and messages posted to the channel they name.
 */
import pino from 'pino';
import Docker from 'dockerode';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createNotifyActivities } from '../../src/activities/engine/notify';
import { createPagerDutyActivities } from '../../src/activities/engine/pagerduty';
import type { EngineConfig } from '../../src/config';
import { applicationFailure } from '../helpers/failure';
import { fakePagerDuty, fakeSlack } from '../helpers/chat-apis';
import { testConfig } from '../helpers/engine';

const TOKEN = 'u+pd-test-key-not-a-secret';
const deps = (configure: (c: EngineConfig) => void) => {
  const config = testConfig();
  config.notify = { stdout: false, announce: { channel: '#incidents' } };
  configure(config);
  return { config, docker: new Docker(), logger: pino({ level: 'silent' }) };
};
const run = <A extends unknown[], R>(fn: (...a: A) => Promise<R>, ...args: A): Promise<R> => new MockActivityEnvironment().run(fn, ...args);

describe('acknowledgePagerDuty', () => {
  const pdConfig = (url: string, token = TOKEN) => (c: EngineConfig) => {
    c.notify.pagerduty = { apiUrl: url, token: { value: token }, from: 'remediation@alfred.example', timeoutMs: 2000 };
  };

  test('PUT /incidents/{id} with the documented headers and body: acknowledged', async () => {
    const pd = await fakePagerDuty({ token: TOKEN, incidents: { PT4KHLK: { number: 1234, status: 'triggered' } } });
    try {
      const acts = createPagerDutyActivities(deps(pdConfig(pd.url)));
      expect(await run(acts.acknowledgePagerDuty, { pagerdutyIncidentId: 'PT4KHLK' })).toEqual({ acknowledged: true, detail: 'PagerDuty incident PT4KHLK (#1234) acknowledged' });
      expect(pd.requests).toHaveLength(1);
      expect(pd.requests[0]).toMatchObject({
        method: 'PUT',
        path: '/incidents/PT4KHLK',
        headers: expect.objectContaining({ from: 'remediation@alfred.example', 'content-type': 'application/json' }),
        body: { incident: { type: 'incident_reference', status: 'acknowledged' } },
      });
      // Again: PagerDuty answers with the incident as it is; nothing else is sent.
      expect((await run(acts.acknowledgePagerDuty, { pagerdutyIncidentId: 'PT4KHLK' })).acknowledged).toBe(true);
    } finally {
      await pd.close();
    }
  });

  test('a resolved incident stays resolved and is reported so', async () => {
    const pd = await fakePagerDuty({ token: TOKEN, incidents: { PRES0LV: { number: 7, status: 'resolved' } } });
    try {
      const acts = createPagerDutyActivities(deps(pdConfig(pd.url)));
      expect(await run(acts.acknowledgePagerDuty, { pagerdutyIncidentId: 'PRES0LV' })).toEqual({ acknowledged: false, detail: 'PagerDuty incident PRES0LV (#7) is resolved' });
    } finally {
      await pd.close();
    }
  });

  test('a wrong key and an unknown incident are refused for good, in PagerDuty words, without the key', async () => {
    const pd = await fakePagerDuty({ token: TOKEN, incidents: {} });
    try {
      const wrong = createPagerDutyActivities(deps(pdConfig(pd.url, 'wrong-key-123')));
      const a = await applicationFailure(run(wrong.acknowledgePagerDuty, { pagerdutyIncidentId: 'PXXXXXX' }));
      expect(a).toMatchObject({ nonRetryable: true, type: 'Refused', message: 'PagerDuty refused to acknowledge incident PXXXXXX: Unauthorized' });
      expect(a.message).not.toContain('wrong-key-123');
      const right = createPagerDutyActivities(deps(pdConfig(pd.url)));
      const b = await applicationFailure(run(right.acknowledgePagerDuty, { pagerdutyIncidentId: 'PXXXXXX' }));
      expect(b).toMatchObject({ nonRetryable: true, message: 'PagerDuty refused to acknowledge incident PXXXXXX: Not Found' });
    } finally {
      await pd.close();
    }
  });

  test('a rate limit is passed to Temporal to retry; an id that is not one is refused before any call', async () => {
    const pd = await fakePagerDuty({ token: TOKEN, incidents: { PABC123: { number: 1, status: 'triggered' } }, rateLimitFirst: 1 });
    try {
      const acts = createPagerDutyActivities(deps(pdConfig(pd.url)));
      await expect(run(acts.acknowledgePagerDuty, { pagerdutyIncidentId: 'PABC123' })).rejects.toThrow(/^PagerDuty: Rate Limit Exceeded$/);
      expect((await run(acts.acknowledgePagerDuty, { pagerdutyIncidentId: 'PABC123' })).acknowledged).toBe(true);
      const bad = await applicationFailure(run(acts.acknowledgePagerDuty, { pagerdutyIncidentId: '../users' }));
      expect(bad).toMatchObject({ nonRetryable: true, type: 'BadInput' });
      expect(pd.requests).toHaveLength(2);
    } finally {
      await pd.close();
    }
  });

  test('without notify.pagerduty: not acknowledged, saying why', async () => {
    const acts = createPagerDutyActivities(deps(() => undefined));
    expect(await run(acts.acknowledgePagerDuty, { pagerdutyIncidentId: 'P1' })).toEqual({
      acknowledged: false,
      detail: 'PagerDuty incident P1 not acknowledged: notify.pagerduty is not configured',
    });
  });
});

describe('the incident channel and messages through Slack\'s Web API', () => {
  const slackConfig = (url: string, token = 'xoxb-test') => (c: EngineConfig) => {
    c.notify.slack = { botToken: { value: token }, apiUrl: `${url}/api`, username: 'remediation-engine', attempts: 1, timeoutMs: 2000, channel: '#incidents' };
  };

  test('opens #inc-..., idempotently, and posts each message to the channel it names', async () => {
    const slack = await fakeSlack({ token: 'xoxb-test', existing: ['incidents'] });
    try {
      const acts = createNotifyActivities(deps(slackConfig(slack.url)));
      const name = 'inc-2026-12-02-alfred-cache-failure';
      expect(await run(acts.openIncidentChannel, { name })).toEqual({ opened: true, detail: `#${name} opened` });
      expect(await run(acts.openIncidentChannel, { name })).toEqual({ opened: true, detail: `#${name} exists already` });
      await run(acts.notify, { incidentId: 'i-1', kind: 'announcement', severity: 2, channel: '#incidents', title: 'INC opened — SEV-2 — INC-05', text: 't' });
      await run(acts.notify, { incidentId: 'i-1', kind: 'status', severity: 2, channel: `#${name}`, title: 'update', text: 'u' });
      expect(slack.posts.map((p) => p.channel)).toEqual(['#incidents', `#${name}`]);
      expect(slack.posts[0]?.text).toMatch(/^\*INC opened — SEV-2 — INC-05\*/);
      expect(slack.requests.every((r) => r.headers.authorization === 'Bearer xoxb-test')).toBe(true);
    } finally {
      await slack.close();
    }
  });

  test('a refused token fails for good and never shows the token', async () => {
    const slack = await fakeSlack({ token: 'xoxb-right' });
    try {
      const acts = createNotifyActivities(deps(slackConfig(slack.url, 'xoxb-wrong-777')));
      const f = await applicationFailure(run(acts.openIncidentChannel, { name: 'inc-x' }));
      expect(f).toMatchObject({ nonRetryable: true, message: 'Slack conversations.create refused: invalid_auth' });
      expect(JSON.stringify(f)).not.toContain('xoxb-wrong-777');
    } finally {
      await slack.close();
    }
  });

  test('without a bot token the channel is not opened, and the answer says so', async () => {
    const acts = createNotifyActivities(deps(() => undefined));
    expect(await run(acts.openIncidentChannel, { name: 'inc-x' })).toEqual({ opened: false, detail: '#inc-x not opened: no Slack bot token (notify.slack.botToken)' });
  });
});
