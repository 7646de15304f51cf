/** Payload parsing and signature checks, without a server. */
import { checkBearer, checkGrafanaSignature, checkPagerDutySignature, hmacHex } from '../../src/receiver/auth';
import { isIgnored, isInvalid, parsePayload, type IncomingAlert } from '../../src/receiver/payloads';
import { alertmanagerPayload, grafanaPayload, pagerDutyPayload } from './helpers';

function alertsOf(result: ReturnType<typeof parsePayload>): IncomingAlert[] {
  if (!result.ok) throw new Error(result.issues.join('; '));
  return result.items.filter((i): i is IncomingAlert => !isIgnored(i) && !isInvalid(i));
}

type Json = Record<string | number, unknown>;

/** Sets (or, with no value, deletes) the field at `at` in a JSON document. */
function edit(doc: unknown, at: Array<string | number>, ...value: [unknown?]): unknown {
  const copy = JSON.parse(JSON.stringify(doc)) as Json;
  let node = copy;
  for (const key of at.slice(0, -1)) node = node[key] as Json;
  const last = at[at.length - 1]!;
  if (value.length) node[last] = value[0];
  else delete node[last];
  return copy;
}

function issuesOf(result: ReturnType<typeof parsePayload>): string[] {
  if (result.ok) throw new Error('expected the payload to be refused');
  return result.issues;
}

describe('Alertmanager payloads', () => {
  test('a v4 webhook with two alerts becomes two alerts', () => {
    const alerts = alertsOf(
      parsePayload(
        'alertmanager',
        alertmanagerPayload([
          { alertname: 'AlfredRedisDown', labels: { target: 'alfred', severity: 'high' } },
          { alertname: 'AlfredCacheHitRateZero', status: 'resolved', labels: { target: 'alfred' } },
        ]),
      ),
    );
    expect(alerts).toHaveLength(2);
    expect(alerts[0]).toMatchObject({
      source: 'alertmanager',
      name: 'AlfredRedisDown',
      status: 'firing',
      labels: { alertname: 'AlfredRedisDown', target: 'alfred', severity: 'high' },
      summary: 'AlfredRedisDown test alert',
      fingerprint: 'fp0',
    });
    expect(alerts[1]).toMatchObject({ status: 'resolved', name: 'AlfredCacheHitRateZero' });
  });

  test("the annotations become the details text: key: value in the sender's order, on one line", () => {
    const [a] = alertsOf(
      parsePayload(
        'alertmanager',
        alertmanagerPayload([
          {
            alertname: 'SYSTEM_ERROR',
            annotations: { description: 'database\n  connectivity lost', cache_hit_rate_pct: '0.0' },
          },
        ]),
      ),
    );
    expect(a?.details).toBe(
      'summary: SYSTEM_ERROR test alert; description: database connectivity lost; cache_hit_rate_pct: 0.0',
    );
  });

  test('unknown extra fields are tolerated', () => {
    const p = { ...alertmanagerPayload([{ alertname: 'X' }]), someFutureField: { a: 1 } };
    expect(alertsOf(parsePayload('alertmanager', p))).toHaveLength(1);
  });

  test.each<[string, Array<string | number>, unknown[], string]>([
    ['missing alertname', ['alerts', 0, 'labels', 'alertname'], [], 'alerts[0].labels.alertname: Required'],
    ['bad status', ['alerts', 0, 'status'], ['pending'], 'alerts[0].status: Invalid enum value'],
    [
      'label not a string',
      ['alerts', 0, 'labels', 'target'],
      [3],
      'alerts[0].labels.target: Expected string, received number',
    ],
    ['no alerts array', ['alerts'], [], 'alerts: Required'],
    ['no groupKey', ['groupKey'], [], 'groupKey: Required'],
    [
      'annotations not a map',
      ['alerts', 0, 'annotations'],
      ['x'],
      'alerts[0].annotations: Expected object, received string',
    ],
  ])('%s is refused naming the field', (_name, at, value, expected) => {
    const p = edit(alertmanagerPayload([{ alertname: 'X', labels: { target: 'alfred' } }]), at, ...value);
    expect(issuesOf(parsePayload('alertmanager', p)).join('\n')).toContain(expected);
  });

  test('an invalid alert inside a valid group becomes an invalid item beside the valid ones', () => {
    const p = edit(
      alertmanagerPayload([{ alertname: 'Good' }, { alertname: 'Bad' }, { alertname: 'AlsoGood' }]),
      ['alerts', 1, 'labels', 'severity'],
      2,
    );
    const r = parsePayload('alertmanager', p);
    if (!r.ok) throw new Error(r.issues.join('; '));
    expect(r.items.map((i) => (isInvalid(i) ? `invalid ${i.name}: ${i.issues.join('; ')}` : i.name))).toEqual([
      'Good',
      'invalid Bad: alerts[1].labels.severity: Expected string, received number',
      'AlsoGood',
    ]);
  });

  test('an invalid envelope refuses the group, naming its issues and those of its alerts', () => {
    const p = edit(edit(alertmanagerPayload([{ alertname: 'Good' }, { alertname: 'Bad' }]), ['version']), [
      'alerts',
      1,
      'status',
    ]);
    expect(issuesOf(parsePayload('alertmanager', p))).toEqual(['version: Required', 'alerts[1].status: Required']);
  });

  test('truncatedAlerts is passed on when the sender left alerts out', () => {
    const r = parsePayload('alertmanager', { ...alertmanagerPayload([{ alertname: 'X' }]), truncatedAlerts: 4 });
    expect(r).toMatchObject({ ok: true, truncatedAlerts: 4 });
    expect(parsePayload('alertmanager', alertmanagerPayload([{ alertname: 'X' }]))).not.toHaveProperty(
      'truncatedAlerts',
    );
  });

  test('a body that is not an object names the root', () => {
    expect(issuesOf(parsePayload('alertmanager', [1, 2]))[0]).toMatch(/^\(root\): Expected object/);
  });
});

describe('Grafana payloads', () => {
  test('a unified alerting webhook becomes alerts with Grafana labels kept', () => {
    const [a] = alertsOf(parsePayload('grafana', grafanaPayload('AlfredRedisDown', { target: 'alfred' })));
    expect(a).toMatchObject({
      source: 'grafana',
      name: 'AlfredRedisDown',
      labels: { grafana_folder: 'Alfred', target: 'alfred' },
    });
  });

  test('the annotations become the details text', () => {
    const [a] = alertsOf(parsePayload('grafana', grafanaPayload('HIGH_LATENCY', { target: 'alfred' })));
    expect(a?.details).toBe('summary: HIGH_LATENCY from Grafana');
  });

  test('missing alertname and bad orgId are named', () => {
    const p = edit(edit(grafanaPayload('X', {}), ['alerts', 0, 'labels', 'alertname']), ['orgId'], 'one');
    const issues = issuesOf(parsePayload('grafana', p));
    expect(issues).toEqual(
      expect.arrayContaining(['alerts[0].labels.alertname: Required', 'orgId: Expected number, received string']),
    );
  });
});

describe('PagerDuty payloads', () => {
  test('incident.triggered becomes a firing alert named by the title, labelled by service', () => {
    const [a] = alertsOf(parsePayload('pagerduty', pagerDutyPayload('incident.triggered', 'Redis down')));
    expect(a).toMatchObject({
      source: 'pagerduty',
      name: 'Redis down',
      status: 'firing',
      labels: {
        alertname: 'Redis down',
        service: 'alfred-cache',
        priority: 'P2',
        urgency: 'high',
        pagerduty_incident_id: 'Q1ABCDEF2GHIJK',
      },
      fingerprint: 'key-Redis down',
    });
  });

  test('the incident title, on one line, is the details text: v3 events carry no custom details', () => {
    const title = 'SYSTEM_ERROR: database\n connectivity   lost';
    const [a] = alertsOf(parsePayload('pagerduty', pagerDutyPayload('incident.triggered', title)));
    expect(a).toMatchObject({ name: title, details: 'SYSTEM_ERROR: database connectivity lost' });
  });

  test('incident.resolved is a resolution; acknowledgements carry no alert state', () => {
    expect(alertsOf(parsePayload('pagerduty', pagerDutyPayload('incident.resolved', 'R')))[0]?.status).toBe('resolved');
    const ack = parsePayload('pagerduty', pagerDutyPayload('incident.acknowledged', 'R'));
    expect(ack.ok && ack.items[0] && isIgnored(ack.items[0])).toBe(true);
  });

  test.each<[string, Array<string | number>, string]>([
    ['no event', ['event'], 'event: Required'],
    ['no event_type', ['event', 'event_type'], 'event.event_type: Required'],
    ['no data.id', ['event', 'data', 'id'], 'event.data.id: Required'],
    ['incident without title', ['event', 'data', 'title'], 'event.data.title: Required for incident events'],
  ])('%s is refused naming the field', (_n, at, expected) => {
    const p = edit(pagerDutyPayload('incident.triggered', 'R'), at);
    expect(issuesOf(parsePayload('pagerduty', p))).toContain(expected);
  });
});

describe('generic payloads', () => {
  test('target and severity become labels; status defaults to firing', () => {
    const [a] = alertsOf(
      parsePayload('generic', {
        alertname: 'CacheFailure',
        target: 'alfred',
        severity: 'critical',
        labels: { team: 'sre' },
      }),
    );
    expect(a).toMatchObject({
      name: 'CacheFailure',
      status: 'firing',
      labels: { alertname: 'CacheFailure', target: 'alfred', severity: 'critical', team: 'sre' },
    });
  });

  test('the annotations become the details text; without annotations there is none', () => {
    const [a] = alertsOf(
      parsePayload('generic', {
        alertname: 'SYSTEM_ERROR',
        annotations: { provider: 'openai', error_rate_pct: '12.5' },
      }),
    );
    expect(a?.details).toBe('provider: openai; error_rate_pct: 12.5');
    const [bare] = alertsOf(parsePayload('generic', { alertname: 'SYSTEM_ERROR' }));
    expect(bare).not.toHaveProperty('details');
  });

  test('unknown fields and wrong types are named', () => {
    const issues = issuesOf(parsePayload('generic', { alertname: '', status: 'firing', severity: 9, extra: true }));
    expect(issues).toEqual(
      expect.arrayContaining([
        'alertname: String must contain at least 1 character(s)',
        expect.stringMatching(/^severity: /),
        "(root): Unrecognized key(s) in object: 'extra'",
      ]),
    );
  });
});

describe('authentication', () => {
  const body = Buffer.from('{"event":{}}');

  test('bearer: missing, wrong scheme, wrong token, right token, rotated token', () => {
    expect(checkBearer({}, ['a'])).toMatchObject({ ok: false, reason: 'missing' });
    expect(checkBearer({ authorization: 'Basic YTpi' }, ['a'])).toMatchObject({ ok: false, reason: 'invalid' });
    expect(checkBearer({ authorization: 'Bearer b' }, ['a'])).toMatchObject({ ok: false, reason: 'invalid' });
    expect(checkBearer({ authorization: 'Bearer a' }, ['a'])).toEqual({ ok: true });
    expect(checkBearer({ authorization: 'bearer new' }, ['old', 'new'])).toEqual({ ok: true });
    expect(checkBearer({ authorization: 'Bearer a' }, [])).toMatchObject({ ok: false, reason: 'unconfigured' });
  });

  test('PagerDuty: any configured secret matching any v1 signature', () => {
    const sig = (s: string) => `v1=${hmacHex(s, body)}`;
    expect(checkPagerDutySignature({ 'x-pagerduty-signature': sig('s1') }, body, ['s1'])).toEqual({ ok: true });
    expect(
      checkPagerDutySignature({ 'x-pagerduty-signature': `${sig('x')},${sig('s2')}` }, body, ['s1', 's2']),
    ).toEqual({ ok: true });
    expect(checkPagerDutySignature({ 'x-pagerduty-signature': sig('x') }, body, ['s1'])).toMatchObject({
      ok: false,
      reason: 'invalid',
    });
    expect(checkPagerDutySignature({ 'x-pagerduty-signature': 'v0=abc' }, body, ['s1'])).toMatchObject({
      ok: false,
      reason: 'invalid',
    });
    expect(checkPagerDutySignature({}, body, ['s1'])).toMatchObject({ ok: false, reason: 'missing' });
    expect(
      checkPagerDutySignature({ 'x-pagerduty-signature': sig('s1').toUpperCase().replace('V1=', 'v1=') }, body, ['s1']),
    ).toEqual({ ok: true });
  });

  test('Grafana: body-only HMAC, and timestamped HMAC with a skew window', () => {
    const now = 1_700_000_000_000;
    const plain = { secrets: ['g'], header: 'X-Grafana-Alerting-Signature', maxSkewSeconds: 300 };
    expect(checkGrafanaSignature({ 'x-grafana-alerting-signature': hmacHex('g', body) }, body, plain, now)).toEqual({
      ok: true,
    });
    const ts = String(now / 1000);
    const timed = { ...plain, timestampHeader: 'X-Grafana-Alerting-Timestamp' };
    const good = {
      'x-grafana-alerting-timestamp': ts,
      'x-grafana-alerting-signature': hmacHex('g', `${ts}:${body.toString()}`),
    };
    expect(checkGrafanaSignature(good, body, timed, now)).toEqual({ ok: true });
    expect(checkGrafanaSignature(good, body, timed, now + 301_000)).toMatchObject({ ok: false, reason: 'stale' });
    expect(
      checkGrafanaSignature({ ...good, 'x-grafana-alerting-timestamp': String(now / 1000 + 1) }, body, timed, now),
    ).toMatchObject({ ok: false, reason: 'invalid' });
  });
});
