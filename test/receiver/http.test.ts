/**
 * The receiver over HTTP against the real Temporal dev server: workflows started, deduplicated,
 * resolved; alerts unrouted or refused; every kind of bad request answered with the right 4xx.
 */
import { existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import { Client, Connection, WorkflowNotFoundError } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { hmacHex } from '../../src/receiver/auth';
import { UNROUTED_FILE } from '../../src/receiver/record';
import { decodedHistory, testDataConverter } from '../helpers/codec';
import {
  alertSignal,
  incidentWorkflowId,
  SA_PHASE,
  SA_RUNBOOK,
  SA_SCENARIO,
  SA_SEVERITY,
  SA_TARGET,
  type IncidentInput,
} from '../../src/workflows/contracts';
import {
  alertmanagerPayload,
  eventually,
  GRAFANA_SECRET,
  grafanaPayload,
  pagerDutyPayload,
  PD_SECRETS,
  shippedRoutes,
  startTestReceiver,
  TOKENS,
  type TestReceiver,
} from './helpers';

const SIGNALED = temporal.api.enums.v1.EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED;

let t: TestReceiver;

beforeAll(async () => {
  t = await startTestReceiver();
});

afterAll(async () => {
  await t?.stop();
});

async function countExecutions(workflowId: string): Promise<number> {
  return t.client.workflow.count(`WorkflowId = "${workflowId}"`).then((r) => r.count);
}

/** Alert signals in the incident's history, and the alerts they carry (a signal may stand for several repeats). */
async function alertSignals(workflowId: string): Promise<{ signals: number; alerts: number }> {
  const history = await decodedHistory(t.client.workflow.getHandle(workflowId));
  const events = (history.events ?? []).filter(
    (e) => e.eventType === SIGNALED && e.workflowExecutionSignaledEventAttributes?.signalName === alertSignal.name,
  );
  const alerts = events.reduce((n, e) => {
    const data = e.workflowExecutionSignaledEventAttributes?.input?.payloads?.[0]?.data;
    const event = JSON.parse(Buffer.from(data ?? []).toString()) as { repeats?: number };
    return n + (event.repeats ?? 1);
  }, 0);
  return { signals: events.length, alerts };
}

async function signalCount(workflowId: string): Promise<number> {
  return (await alertSignals(workflowId)).alerts;
}

/** PagerDuty's v3 signature header value for `body`. */
const sign = (body: string, secret: string) => `v1=${hmacHex(secret, body)}`;

function unroutedLines(receiver: TestReceiver = t): Array<Record<string, unknown>> {
  try {
    return readFileSync(`${receiver.stateDir}/${UNROUTED_FILE}`, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  } catch {
    return [];
  }
}

describe('Alertmanager → workflows', () => {
  test('a firing alert starts exactly one workflow with the incident input and search attributes', async () => {
    const res = await t.post(
      'alertmanager',
      alertmanagerPayload([
        { alertname: 'AlfredDatabaseUnhealthy', labels: { target: t.target, severity: 'critical' } },
      ]),
    );
    expect(res.status).toBe(200);
    const workflowId = incidentWorkflowId('databaseUnreachable', t.target);
    expect(res.json.results).toEqual([
      expect.objectContaining({
        alertname: 'AlfredDatabaseUnhealthy',
        action: 'started',
        workflowId,
        runbook: 'databaseUnreachable',
        target: t.target,
      }),
    ]);
    const desc = await t.client.workflow.getHandle(workflowId).describe();
    expect(desc.type).toBe('databaseUnreachable');
    expect(desc.taskQueue).toBe(t.taskQueue);
    expect(desc.status.name).toBe('RUNNING');
    expect(desc.typedSearchAttributes.get(SA_SCENARIO)).toBe('INC-01');
    expect(desc.typedSearchAttributes.get(SA_SEVERITY)).toBe(1);
    expect(desc.typedSearchAttributes.get(SA_TARGET)).toBe(t.target);
    expect(desc.typedSearchAttributes.get(SA_PHASE)).toBe('DETECT');
    expect(desc.typedSearchAttributes.get(SA_RUNBOOK)).toBe('databaseUnreachable');
    const history = await decodedHistory(t.client.workflow.getHandle(workflowId));
    const started = history.events?.[0]?.workflowExecutionStartedEventAttributes;
    expect(started?.workflowType?.name).toBe('databaseUnreachable');
    expect(await signalCount(workflowId)).toBe(1);
    expect(
      await eventually(
        () => countExecutions(workflowId),
        (n) => n >= 1,
      ),
    ).toBe(1);
  });

  test('20 concurrent repeats join the running incident: one workflow, 21 alerts counted, repeats coalesced', async () => {
    const body = () => alertmanagerPayload([{ alertname: 'CacheFailure', labels: { target: t.target } }]);
    const workflowId = incidentWorkflowId('cacheFailure', t.target);
    const first = await t.post('alertmanager', body());
    expect(first.json.results[0]).toMatchObject({ action: 'started', workflowId });
    const repeats = await Promise.all(Array.from({ length: 20 }, () => t.post('alertmanager', body())));
    expect(repeats.map((r) => r.status)).toEqual(Array(20).fill(200));
    expect(repeats.map((r) => r.json.results[0]?.action)).toEqual(Array(20).fill('deduplicated'));
    const { signals, alerts } = await alertSignals(workflowId);
    expect(alerts).toBe(21);
    expect(
      await eventually(
        () => countExecutions(workflowId),
        (n) => n >= 1,
      ),
    ).toBe(1);
    const metrics = await (await fetch(`${t.receiver.url}/metrics`)).text();
    expect(metrics).toMatch(/remediation_receiver_alerts_deduplicated_total\{runbook="cacheFailure"\} 20/);
    // Repeats that waited behind a call in flight went out together: every alert is either alone in
    // its signal or counted as coalesced.
    const coalesced = Number(
      /remediation_receiver_alerts_coalesced_total\{runbook="cacheFailure"\} (\d+)/.exec(metrics)?.[1] ?? 0,
    );
    expect(signals).toBeLessThanOrEqual(21);
    expect(alerts - coalesced).toBeLessThanOrEqual(signals);
  });

  test('concurrent first alerts: exactly one reports started, whatever the interleaving', async () => {
    const workflowId = incidentWorkflowId('badRelease', t.target);
    const body = alertmanagerPayload([{ alertname: 'AlfredBadRelease', labels: { target: t.target } }]);
    const answers = await Promise.all(Array.from({ length: 8 }, () => t.post('alertmanager', body)));
    const actions = answers.map((a) => a.json.results[0]?.action).sort();
    expect(actions).toEqual([
      'deduplicated',
      'deduplicated',
      'deduplicated',
      'deduplicated',
      'deduplicated',
      'deduplicated',
      'deduplicated',
      'started',
    ]);
    expect(await signalCount(workflowId)).toBe(8);
  });

  test('resolved signals the running incident and never starts a new one', async () => {
    const workflowId = incidentWorkflowId('cacheFailure', t.target);
    const before = await signalCount(workflowId);
    const res = await t.post(
      'alertmanager',
      alertmanagerPayload([{ alertname: 'AlfredRedisDown', status: 'resolved', labels: { target: t.target } }]),
    );
    expect(res.status).toBe(200);
    expect(res.json.results[0]).toMatchObject({ action: 'resolved-signalled', workflowId });
    expect(await signalCount(workflowId)).toBe(before + 1);
    const history = await decodedHistory(t.client.workflow.getHandle(workflowId));
    const last = [...(history.events ?? [])].reverse().find((e) => e.eventType === SIGNALED);
    const payload = last?.workflowExecutionSignaledEventAttributes?.input?.payloads?.[0]?.data;
    expect(JSON.parse(Buffer.from(payload ?? []).toString())).toMatchObject({
      status: 'resolved',
      name: 'AlfredRedisDown',
      source: 'alertmanager',
    });
  });

  test('resolved without a running incident: recorded, answered 200, no workflow', async () => {
    const other = await startTestReceiver({ client: t.client });
    try {
      const r = await other.post(
        'alertmanager',
        alertmanagerPayload([{ alertname: 'CacheFailure', status: 'resolved', labels: { target: other.target } }]),
      );
      expect(r.status).toBe(200);
      expect(r.json.results[0]).toMatchObject({ action: 'resolved-no-incident' });
      expect(await countExecutions(incidentWorkflowId('cacheFailure', other.target))).toBe(0);
      const recorded = readFileSync(`${other.stateDir}/${UNROUTED_FILE}`, 'utf8');
      expect(recorded).toContain('"action":"resolved-no-incident"');
    } finally {
      await other.stop();
    }
  });

  test('a webhook with several alerts answers one summary entry per alert', async () => {
    const res = await t.post(
      'alertmanager',
      alertmanagerPayload([
        { alertname: 'AlfredRedisDown', labels: { target: t.target } },
        { alertname: 'SomethingNobodyRoutes', labels: { target: t.target } },
        { alertname: 'AlfredCacheHitRateZero', labels: { target: 'not-configured' } },
      ]),
    );
    expect(res.status).toBe(200);
    expect(res.json.received).toBe(3);
    expect(res.json.results.map((r: { action: string }) => r.action)).toEqual(['deduplicated', 'unrouted', 'refused']);
  });

  test('an unknown alertname is acknowledged (202), recorded, and starts nothing', async () => {
    const name = `UnknownAlert${t.run}`;
    const res = await t.post('alertmanager', alertmanagerPayload([{ alertname: name, labels: { target: t.target } }]));
    expect(res.status).toBe(202);
    expect(res.json.results).toEqual([
      { alertname: name, status: 'firing', action: 'unrouted', reason: `no route matches alert "${name}"` },
    ]);
    expect(unroutedLines()).toContainEqual(
      expect.objectContaining({ alertname: name, action: 'unrouted', source: 'alertmanager' }),
    );
    const metrics = await (await fetch(`${t.receiver.url}/metrics`)).text();
    expect(metrics).toMatch(/remediation_receiver_alerts_unrouted_total\{source="alertmanager"\} [1-9]/);
    expect(t.logs.text()).toContain(name);
  });

  test('an unknown target label is refused and recorded, and no workflow is started for it', async () => {
    const res = await t.post(
      'alertmanager',
      alertmanagerPayload([{ alertname: 'AlfredRedisDown', labels: { target: `nosuch-${t.run}` } }]),
    );
    expect(res.status).toBe(202);
    expect(res.json.results[0]).toMatchObject({ action: 'refused', runbook: 'cacheFailure' });
    expect(res.json.results[0]?.reason).toContain(`unknown target "nosuch-${t.run}"`);
    expect(unroutedLines()).toContainEqual(
      expect.objectContaining({ action: 'refused', labels: expect.objectContaining({ target: `nosuch-${t.run}` }) }),
    );
    expect(await countExecutions(incidentWorkflowId('cacheFailure', `nosuch-${t.run}`))).toBe(0);
  });

  test('an alert without a target label is refused, not guessed', async () => {
    const res = await t.post('alertmanager', alertmanagerPayload([{ alertname: 'AlfredRedisDown' }]));
    expect(res.status).toBe(202);
    expect(res.json.results[0]).toMatchObject({ action: 'refused' });
    expect(res.json.results[0]?.reason).toContain('no "target" label');
  });

  test('invalid alerts inside a group are answered and recorded on their own; the valid ones are handled', async () => {
    const payload = alertmanagerPayload([
      { alertname: 'AlfredRedisDown', labels: { target: t.target } },
      { alertname: 'dropped', labels: { target: t.target } },
      { alertname: `Pending${t.run}`, labels: { target: t.target } },
    ]);
    delete (payload.alerts[1]!.labels as Partial<Record<string, string>>).alertname;
    (payload.alerts[2] as { status: string }).status = 'pending';
    const res = await t.post('alertmanager', payload);
    // Alertmanager does not retry a 4xx: the group's valid alert must not be lost with the others.
    expect(res.status).toBe(200);
    expect(res.json.results).toEqual([
      expect.objectContaining({ alertname: 'AlfredRedisDown', action: 'deduplicated' }),
      { alertname: 'alerts[1]', action: 'invalid', reason: 'invalid alert: alerts[1].labels.alertname: Required' },
      {
        alertname: `Pending${t.run}`,
        action: 'invalid',
        reason: expect.stringMatching(/^invalid alert: alerts\[2\]\.status: Invalid enum value/),
      },
    ]);
    expect(unroutedLines()).toContainEqual(
      expect.objectContaining({
        action: 'invalid',
        alertname: `Pending${t.run}`,
        received: expect.objectContaining({ status: 'pending' }),
      }),
    );
    const metrics = await (await fetch(`${t.receiver.url}/metrics`)).text();
    expect(metrics).toMatch(/remediation_receiver_alerts_invalid_total\{source="alertmanager"\} 2/);
  });

  test('an invalid envelope still refuses the whole group with 422', async () => {
    const payload: Partial<ReturnType<typeof alertmanagerPayload>> = alertmanagerPayload([
      { alertname: 'AlfredRedisDown', labels: { target: t.target } },
    ]);
    delete payload.groupKey;
    const res = await t.post('alertmanager', payload);
    expect(res.status).toBe(422);
    expect(res.json.issues).toEqual(['groupKey: Required']);
  });

  test('alerts the sender left out of a group (truncatedAlerts) are counted and logged', async () => {
    const res = await t.post('alertmanager', {
      ...alertmanagerPayload([{ alertname: 'AlfredRedisDown', labels: { target: t.target } }], `{}:{run="${t.run}"}`),
      truncatedAlerts: 5,
    });
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ received: 1, truncatedAlerts: 5 });
    const metrics = await (await fetch(`${t.receiver.url}/metrics`)).text();
    expect(metrics).toMatch(/remediation_receiver_alerts_truncated_total\{source="alertmanager"\} 5/);
    expect(t.logs.lines).toContainEqual(expect.stringContaining(`"truncatedAlerts":5`));
    expect(t.logs.text()).toContain(`{}:{run=\\"${t.run}\\"}`);
  });
});

describe('bounds: per-incident lanes and the unrouted-alerts file', () => {
  test('an alert past a lane bound gets 503 with Retry-After, logged and counted; the lanes recover', async () => {
    const small = await startTestReceiver({
      client: t.client,
      config: { lanes: { maxIncidents: 1, maxQueuedPerIncident: 1 } },
    });
    try {
      // One webhook: all four reach the dispatcher at once. The first call goes out, the resolution
      // queues behind it; the next firing alert of that incident finds its queue full, and the
      // other incident finds no free lane.
      const res = await small.post(
        'alertmanager',
        alertmanagerPayload([
          { alertname: 'CacheFailure', labels: { target: small.target } },
          { alertname: 'CacheFailure', status: 'resolved', labels: { target: small.target } },
          { alertname: 'CacheFailure', labels: { target: small.target } },
          { alertname: 'AlfredDatabaseUnhealthy', labels: { target: small.target } },
        ]),
      );
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBe('7');
      expect(res.json.results.map((r) => r.action)).toEqual(['started', 'resolved-signalled']);
      const metrics = await (await fetch(`${small.receiver.url}/metrics`)).text();
      expect(metrics).toMatch(
        /remediation_receiver_lane_overflow_total\{runbook="cacheFailure",bound="per_incident"\} 1/,
      );
      expect(metrics).toMatch(
        /remediation_receiver_lane_overflow_total\{runbook="databaseUnreachable",bound="incidents"\} 1/,
      );
      expect(metrics).toMatch(
        /remediation_receiver_alerts_rejected_total\{source="alertmanager",reason="lane_full"\} 1/,
      );
      expect(small.logs.text()).toContain('dispatcher lanes full');

      // The sender's retry: the lanes have drained, so the same group goes through.
      const retry = await small.post(
        'alertmanager',
        alertmanagerPayload([{ alertname: 'AlfredDatabaseUnhealthy', labels: { target: small.target } }]),
      );
      expect(retry.status).toBe(200);
      expect(retry.json.results[0]).toMatchObject({ action: 'started', runbook: 'databaseUnreachable' });
    } finally {
      await small.stop();
    }
  });

  test('the unrouted-alerts file rotates past its size, keeps its old files, and says so', async () => {
    const small = await startTestReceiver({ client: t.client, config: { unroutedFile: { maxBytes: 1024, keep: 1 } } });
    try {
      const names = Array.from({ length: 12 }, (_, i) => `Unrouted${i}x${small.run}`);
      const res = await small.post(
        'alertmanager',
        alertmanagerPayload(names.map((alertname) => ({ alertname, labels: { target: small.target } }))),
      );
      expect(res.status).toBe(202);
      await small.receiver.recorder.flush();
      const file = `${small.stateDir}/${UNROUTED_FILE}`;
      const sizes = [file, `${file}.1`].map((f) => statSync(f).size);
      for (const size of sizes) expect(size).toBeLessThanOrEqual(1024);
      expect(existsSync(`${file}.2`)).toBe(false);
      // The newest records are in the current file, the alerts before them in `.1`.
      expect(unroutedLines(small).at(-1)).toMatchObject({ alertname: names.at(-1) });
      const metrics = await (await fetch(`${small.receiver.url}/metrics`)).text();
      const rotations = Number(/remediation_receiver_unrouted_file_rotations_total (\d+)/.exec(metrics)?.[1]);
      const deleted = Number(/remediation_receiver_unrouted_files_deleted_total (\d+)/.exec(metrics)?.[1]);
      // Twelve records of about 300 bytes: at least three files' worth, so `.1` was replaced.
      expect(rotations).toBeGreaterThanOrEqual(2);
      expect(deleted).toBe(rotations - 1);
      expect(small.logs.text()).toContain('unrouted alerts file rotated; the oldest rotated file was deleted');
    } finally {
      await small.stop();
    }
  });
});

describe('routes in Alertmanager matcher syntax, over HTTP', () => {
  test('negative matchers keep dev and test alerts out; a missing label counts as empty', async () => {
    const m = await startTestReceiver({
      client: t.client,
      routes: (target) => ({
        catalogDefaults: false,
        rules: [
          {
            name: 'prod-cache',
            matchers: ['alertname=~"Cache.*"', 'env!="dev"', 'job!~"test.*"'],
            runbook: 'cacheFailure',
            target,
          },
        ],
      }),
    });
    try {
      const res = await m.post(
        'alertmanager',
        alertmanagerPayload([
          { alertname: 'CacheProd', labels: { env: 'prod', job: 'api' } },
          { alertname: 'CacheDev', labels: { env: 'dev', job: 'api' } },
          { alertname: 'CacheTest', labels: { env: 'prod', job: 'test-runner' } },
          { alertname: 'CacheUnlabelled' },
          { alertname: 'DatabaseProd', labels: { env: 'prod' } },
        ]),
      );
      expect(res.status).toBe(200);
      expect(res.json.results.map((r) => [r.alertname, r.action])).toEqual([
        ['CacheProd', 'started'],
        ['CacheDev', 'unrouted'],
        ['CacheTest', 'unrouted'],
        ['CacheUnlabelled', 'deduplicated'],
        ['DatabaseProd', 'unrouted'],
      ]);
      expect(res.json.results[0]).toMatchObject({ runbook: 'cacheFailure', target: m.target });
    } finally {
      await m.stop();
    }
  });
});

describe('generic format', () => {
  test('firing with target and severity opens an incident', async () => {
    const res = await t.post('generic', {
      alertname: 'DatabaseUnreachable',
      status: 'firing',
      target: t.target,
      severity: 2,
    });
    expect(res.status).toBe(200);
    expect(res.json.results[0]).toMatchObject({
      action: 'deduplicated',
      workflowId: incidentWorkflowId('databaseUnreachable', t.target),
    });
  });

  test('schema errors name the field', async () => {
    const res = await t.post('generic', { status: 'burning', target: t.target });
    expect(res.status).toBe(422);
    expect(res.json.issues).toEqual(
      expect.arrayContaining(['alertname: Required', expect.stringMatching(/^status: Invalid enum value/)]),
    );
  });
});

describe('PagerDuty webhook v3', () => {
  test('a good signature is accepted and routes by service', async () => {
    const body = JSON.stringify(pagerDutyPayload('incident.triggered', 'Redis is down on alfred'));
    const res = await t.post('pagerduty', null, {
      raw: body,
      headers: { 'x-pagerduty-signature': sign(body, PD_SECRETS[0]!) },
    });
    expect(res.status).toBe(200);
    expect(res.json.results[0]).toMatchObject({
      alertname: 'Redis is down on alfred',
      action: 'deduplicated',
      runbook: 'cacheFailure',
      target: t.target,
    });
  });

  test('two signatures during a rotation: one unknown, one from a configured secret', async () => {
    const body = JSON.stringify(pagerDutyPayload('incident.triggered', 'Redis is down on alfred'));
    const header = `${sign(body, 'a-secret-this-receiver-does-not-have')}, ${sign(body, PD_SECRETS[1]!)}`;
    const res = await t.post('pagerduty', null, { raw: body, headers: { 'x-pagerduty-signature': header } });
    expect(res.status).toBe(200);
  });

  test('a bad or missing signature is 401', async () => {
    const body = JSON.stringify(pagerDutyPayload('incident.triggered', 'Redis is down on alfred'));
    const bad = await t.post('pagerduty', null, {
      raw: body,
      headers: { 'x-pagerduty-signature': sign(body + ' ', PD_SECRETS[0]!) },
    });
    expect(bad.status).toBe(401);
    expect(bad.json.error).toContain('does not match');
    const missing = await t.post('pagerduty', null, { raw: body });
    expect(missing.status).toBe(401);
    expect(missing.json.error).toContain('missing X-PagerDuty-Signature');
    const garbage = await t.post('pagerduty', null, { raw: body, headers: { 'x-pagerduty-signature': 'v1=zz' } });
    expect(garbage.status).toBe(401);
  });

  test('acknowledgements are answered and ignored; resolutions signal', async () => {
    const ack = JSON.stringify(pagerDutyPayload('incident.acknowledged', 'Redis is down on alfred'));
    const a = await t.post('pagerduty', null, {
      raw: ack,
      headers: { 'x-pagerduty-signature': sign(ack, PD_SECRETS[0]!) },
    });
    expect(a.status).toBe(202);
    expect(a.json.results[0]).toMatchObject({ action: 'ignored' });
    const resolved = JSON.stringify(pagerDutyPayload('incident.resolved', 'Redis is down on alfred'));
    const r = await t.post('pagerduty', null, {
      raw: resolved,
      headers: { 'x-pagerduty-signature': sign(resolved, PD_SECRETS[0]!) },
    });
    expect(r.json.results[0]).toMatchObject({ action: 'resolved-signalled' });
  });
});

describe("Alfred's own alerts (seed 002) through the shipped config/routes.yaml", () => {
  // The shipped rules, retargeted to this run's copy of alfred; as for every receiver test, its task
  // queue has no worker, so an incident stays in DETECT and no runbook ever acts on a target.
  let alfred: TestReceiver;

  beforeAll(async () => {
    alfred = await startTestReceiver({ client: t.client, routes: shippedRoutes });
  });

  afterAll(async () => {
    await alfred?.stop();
  });

  async function postPagerDuty(title: string) {
    const body = JSON.stringify(pagerDutyPayload('incident.triggered', title, 'alfred'));
    return alfred.post('pagerduty', null, {
      raw: body,
      headers: { 'x-pagerduty-signature': sign(body, PD_SECRETS[0]!) },
    });
  }

  test('a signed PagerDuty SYSTEM_ERROR with database connectivity in its title starts databaseUnreachable at SEV-1', async () => {
    const title = 'SYSTEM_ERROR: database connectivity lost (could not connect to server)';
    const workflowId = incidentWorkflowId('databaseUnreachable', alfred.target);
    try {
      const res = await postPagerDuty(title);
      expect(res.status).toBe(200);
      expect(res.json.results).toEqual([
        {
          alertname: title,
          status: 'firing',
          action: 'started',
          workflowId,
          runbook: 'databaseUnreachable',
          target: alfred.target,
        },
      ]);
      const handle = alfred.client.workflow.getHandle(workflowId);
      const desc = await handle.describe();
      expect(desc.type).toBe('databaseUnreachable');
      expect(desc.taskQueue).toBe(alfred.taskQueue);
      expect(desc.typedSearchAttributes.get(SA_SCENARIO)).toBe('INC-01');
      expect(desc.typedSearchAttributes.get(SA_SEVERITY)).toBe(1);
      expect(desc.typedSearchAttributes.get(SA_TARGET)).toBe(alfred.target);
      expect(desc.typedSearchAttributes.get(SA_RUNBOOK)).toBe('databaseUnreachable');
      const history = await decodedHistory(handle);
      const data = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0]?.data;
      const input = JSON.parse(Buffer.from(data ?? []).toString()) as IncidentInput;
      expect(input).toMatchObject({
        target: alfred.target,
        requestedBy: 'pagerduty',
        severity: 1,
        dryRun: false,
        summary: title,
        alert: { source: 'pagerduty', name: title, status: 'firing', labels: { service: 'alfred' } },
      });
      expect(input).not.toHaveProperty('params');
    } finally {
      // Terminated at once by id: the run-wide cleanup lists by visibility, which may lag a run this young.
      await alfred.client.workflow
        .getHandle(workflowId)
        .terminate('receiver test cleanup')
        .catch((err: unknown) => {
          if (!(err instanceof WorkflowNotFoundError)) throw err;
        });
    }
  });

  test('a signed PagerDuty SYSTEM_ERROR that says nothing the rules know is recorded unrouted (202), never guessed', async () => {
    const title = `SYSTEM_ERROR: disk usage 97% on worker ${alfred.run}`;
    const res = await postPagerDuty(title);
    expect(res.status).toBe(202);
    expect(res.json.results).toEqual([
      { alertname: title, status: 'firing', action: 'unrouted', reason: `no route matches alert "${title}"` },
    ]);
    expect(unroutedLines(alfred)).toContainEqual(
      expect.objectContaining({ alertname: title, action: 'unrouted', source: 'pagerduty' }),
    );
  });
});

describe('Grafana webhook', () => {
  function signed(body: string, ts = Math.floor(Date.now() / 1000)) {
    return {
      'x-grafana-alerting-timestamp': String(ts),
      'x-grafana-alerting-signature': hmacHex(GRAFANA_SECRET, `${ts}:${body}`),
    };
  }

  test('a correct HMAC over timestamp and body is accepted', async () => {
    const body = JSON.stringify(grafanaPayload('AlfredRedisDown', { target: t.target }));
    const res = await t.post('grafana', null, { raw: body, headers: signed(body) });
    expect(res.status).toBe(200);
    expect(res.json.results[0]).toMatchObject({ action: 'deduplicated', runbook: 'cacheFailure' });
  });

  test('a wrong, stale or missing signature is 401', async () => {
    const body = JSON.stringify(grafanaPayload('AlfredRedisDown', { target: t.target }));
    const wrong = await t.post('grafana', null, {
      raw: body,
      headers: { ...signed(body), 'x-grafana-alerting-signature': hmacHex('other', body) },
    });
    expect(wrong.status).toBe(401);
    const stale = await t.post('grafana', null, {
      raw: body,
      headers: signed(body, Math.floor(Date.now() / 1000) - 3600),
    });
    expect(stale.status).toBe(401);
    expect(stale.json.error).toContain('from now');
    const missing = await t.post('grafana', null, { raw: body });
    expect(missing.status).toBe(401);
  });
});

describe('bad requests are 4xx with a clear message, never 5xx', () => {
  test('no auth → 401; wrong token → 401', async () => {
    const body = alertmanagerPayload([{ alertname: 'CacheFailure', labels: { target: t.target } }]);
    const none = await t.post('alertmanager', body, { headers: { authorization: '' } });
    expect(none.status).toBe(401);
    expect(none.json.error).toBe('alertmanager: missing "Authorization: Bearer <token>" header');
    expect(none.headers.get('www-authenticate')).toContain('Bearer');
    const wrong = await t.post('alertmanager', body, { headers: { authorization: 'Bearer nope' } });
    expect(wrong.status).toBe(401);
    const generic = await t.post(
      'generic',
      { alertname: 'x' },
      { headers: { authorization: `Bearer ${TOKENS.alertmanager}` } },
    );
    expect(generic.status).toBe(401);
  });

  test('oversize → 413', async () => {
    const big = alertmanagerPayload([
      { alertname: 'CacheFailure', labels: { target: t.target }, annotations: { description: 'x'.repeat(300 * 1024) } },
    ]);
    const res = await t.post('alertmanager', big);
    expect(res.status).toBe(413);
    expect(res.json.error).toContain('262144');
  });

  test('not JSON → 400', async () => {
    const res = await t.post('alertmanager', null, { raw: '{"version": "4", alerts: [' });
    expect(res.status).toBe(400);
    expect(res.json.error).toMatch(/^body is not valid JSON: /);
  });

  test('wrong content type → 415', async () => {
    const res = await t.post('alertmanager', null, {
      raw: 'alertname=CacheFailure',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(res.status).toBe(415);
    expect(res.json.error).toContain('application/json');
  });

  test('schema error → 422 naming the field path', async () => {
    const payload = alertmanagerPayload([{ alertname: 'CacheFailure', labels: { target: t.target } }]);
    delete (payload.alerts[0]!.labels as Partial<Record<string, string>>).alertname;
    const res = await t.post('alertmanager', payload);
    expect(res.status).toBe(422);
    expect(res.json.issues).toContain('alerts[0].labels.alertname: Required');
  });

  test('unknown path → 404; wrong method → 405', async () => {
    expect((await fetch(`${t.receiver.url}/alerts/opsgenie`, { method: 'POST' })).status).toBe(404);
    const get = await fetch(`${t.receiver.url}/alerts/alertmanager`);
    expect(get.status).toBe(405);
    expect(get.headers.get('allow')).toBe('POST');
  });

  test('rejections are counted by reason', async () => {
    const metrics = await (await fetch(`${t.receiver.url}/metrics`)).text();
    for (const reason of ['unauthenticated', 'too_large', 'not_json', 'content_type', 'invalid']) {
      expect(metrics).toMatch(
        new RegExp(`remediation_receiver_alerts_rejected_total\\{source="alertmanager",reason="${reason}"\\} [1-9]`),
      );
    }
    expect(metrics).toMatch(
      /remediation_receiver_request_duration_seconds_count\{route="alerts\/alertmanager",code="200"\} [1-9]/,
    );
    expect(metrics).toMatch(/remediation_receiver_incidents_started_total\{runbook="databaseUnreachable"\} 1/);
  });

  test('every metric the receiver exports carries the remediation_receiver_ prefix', async () => {
    const text = await (await fetch(`${t.receiver.url}/metrics`)).text();
    const names = new Set(
      text.split('\n').flatMap((l) => (/^# TYPE (\S+)/.exec(l)?.[1] ? [/^# TYPE (\S+)/.exec(l)![1]!] : [])),
    );
    expect(names.size).toBeGreaterThan(10);
    for (const name of names) expect(name).toMatch(/^remediation_receiver_/);
  });

  test('secrets never reach the logs', () => {
    const logs = t.logs.text();
    expect(logs.length).toBeGreaterThan(0);
    for (const secret of [TOKENS.alertmanager, TOKENS.generic, ...PD_SECRETS, GRAFANA_SECRET])
      expect(logs).not.toContain(secret);
    expect(logs).not.toMatch(/v1=[0-9a-f]{64}/);
  });

  test('healthz answers', async () => {
    const res = await fetch(`${t.receiver.url}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: 'ok', taskQueue: t.taskQueue });
  });

  test('readyz is 200 while Temporal answers', async () => {
    const res = await fetch(`${t.receiver.url}/readyz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ready', taskQueue: t.taskQueue });
  });
});

describe('Temporal unavailable', () => {
  test('→ 503 with Retry-After, so the sender retries; /readyz says why, /healthz still answers', async () => {
    const connection = Connection.lazy({ address: '127.0.0.1:1', connectTimeout: 500 });
    const down = await startTestReceiver({
      client: new Client({ connection, dataConverter: testDataConverter() }),
      config: { temporalTimeoutMs: 600, readyTimeoutMs: 300 },
    });
    try {
      const [res, ready] = await Promise.all([
        down.post(
          'alertmanager',
          alertmanagerPayload([{ alertname: 'CacheFailure', labels: { target: down.target } }]),
        ),
        fetch(`${down.receiver.url}/readyz`),
      ]);
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBe('7');
      expect(res.json.error).toContain('Temporal');
      expect(ready.status).toBe(503);
      expect(await ready.json()).toEqual({
        status: 'not ready',
        reason: expect.stringMatching(/^Temporal does not answer at \S+ \(namespace default\): /),
      });
      expect((await fetch(`${down.receiver.url}/healthz`)).status).toBe(200);
      // Bad input is still a 4xx while Temporal is down.
      expect((await down.post('alertmanager', null, { raw: 'nope' })).status).toBe(400);
    } finally {
      await down.receiver.close();
      await connection.close().catch(() => undefined);
      rmSync(down.stateDir, { recursive: true, force: true });
    }
  });
});
