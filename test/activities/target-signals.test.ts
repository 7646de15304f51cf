/**
 * What activities read from logs and /metrics, with the replica's settings and with a target that
 * logs JSON and names its series otherwise. Pure functions: no stack needed.
 */
import { TargetSchema } from '../../src/config';
import { countAuthErrors } from '../../src/activities/target-api/auth';
import { trafficFromPrometheus } from '../../src/activities/target-api/providers';
import { summariseRateLimitLines } from '../../src/activities/target-api/rate-limits';
import { countRequestErrors } from '../../src/activities/containers/release';
import { scanLines } from '../../src/activities/postgres/security';
import { DEFAULT_LOG_MATCHERS } from '../../src/lib/target-signals';
import { JSON_LINES, REPLICA_LINES, jsonMatchers } from '../helpers/log-fixtures';

const SPLIT = Date.parse('2026-12-01T07:48:47.000Z');

describe('request errors before and after a deploy (INC-12)', () => {
  it('replica: logfmt request lines, drill and monitoring paths left out', () => {
    const lines = [
      ...REPLICA_LINES,
      'ts=2026-12-01T07:48:47.300Z level=error role=api method=POST path=/v1/chat/completions status=500 client_ip=10.0.0.7',
      'ts=2026-12-01T07:48:47.400Z level=error role=api method=POST path=/v1/drill/faults status=500 client_ip=10.0.0.7',
      'ts=2026-12-01T07:48:47.500Z level=info role=api method=GET path=/metrics status=200 client_ip=10.0.0.7',
    ];
    expect(countRequestErrors(lines, SPLIT)).toEqual({ before: { requests: 1, errors: 0 }, after: { requests: 2, errors: 1 } });
  });
  it('JSON service: the same counts from its own fields', () => {
    const lines = [...JSON_LINES, '{"timestamp": "2026-12-01T07:48:47.300Z", "message": "request", "path": "/v1/chat/completions", "status": 503}'];
    expect(countRequestErrors(lines, SPLIT, jsonMatchers())).toEqual({ before: { requests: 1, errors: 0 }, after: { requests: 2, errors: 1 } });
    expect(countRequestErrors(lines, SPLIT)).toEqual({ before: { requests: 0, errors: 0 }, after: { requests: 0, errors: 0 } });
  });
});

describe('refused authentications (INC-06)', () => {
  it('replica: by reason=, SSO from sso_provider_unreachable', () => {
    const auth = REPLICA_LINES.filter((l) => DEFAULT_LOG_MATCHERS.authFailed.test(l));
    expect(countAuthErrors(DEFAULT_LOG_MATCHERS, auth)).toEqual({ byReason: { sso_provider_unreachable: 1 }, ssoUnreachable: 1 });
  });
  it('JSON service: by its "reason", SSO from its own reason', () => {
    const m = jsonMatchers();
    const auth = JSON_LINES.filter((l) => m.authFailed.test(l));
    expect(countAuthErrors(m, auth)).toEqual({ byReason: { idp_down: 1 }, ssoUnreachable: 1 });
  });
});

describe('rate-limit refusals (INC-10)', () => {
  it('JSON service: by client address and key id from its own fields', () => {
    const lines = [
      '{"message": "rate limit exceeded", "client_ip": "203.0.113.7", "key_id": "abcdefabcdef"}',
      '{"message": "rate limit exceeded", "client_ip": "203.0.113.7", "key_id": "abcdefabcdef"}',
      '{"message": "rate limit exceeded", "client_ip": "10.0.0.9"}',
      '{"message": "request", "path": "/v1/chat/completions", "status": 429, "client_ip": "203.0.113.7"}',
    ];
    expect(summariseRateLimitLines(lines, 60, jsonMatchers())).toEqual({
      total429: 3,
      sinceSeconds: 60,
      clients: [{ id: '203.0.113.7', count: 2 }, { id: '10.0.0.9', count: 1 }],
      distinctClients: 2,
      keys: [{ id: 'abcdefabcdef', count: 2 }],
      withoutKey: 1,
    });
    expect(summariseRateLimitLines(lines, 60).total429).toBe(0);
  });
});

describe('API keys in the PII scan (INC-14)', () => {
  const replicaKey = `ak_${'0123456789abcdef'.repeat(3)}`;
  const otherKey = 'sk-live-ABCDEFGHIJKLMNOPQRSTUVWXYZ012345';
  const lines = [`ts=1 level=info msg="debug" key=${replicaKey}`, `{"message": "debug", "key": "${otherKey}"}`];
  it('replica: keys ak_<hex>', () => {
    const s = scanLines(lines);
    expect(s.rawKeys).toEqual([replicaKey]);
    expect(s.samples.join('\n')).not.toContain(replicaKey);
  });
  it("another format from the target's logs.apiKey, redacted as well", () => {
    const s = scanLines(lines, jsonMatchers().apiKey);
    expect(s.rawKeys).toEqual([otherKey]);
    expect(s.counts.api_key).toBe(1);
    expect(s.samples.join('\n')).not.toContain(otherKey);
  });
});

describe('provider traffic counters (INC-02)', () => {
  const text = [
    'llm_calls_total{vendor="openai",outcome="failure"} 5',
    'llm_calls_total{vendor="openai",outcome="success"} 10',
    'http_server_requests_total{route="/v1/chat/completions",code="502"} 3',
    'http_server_requests_total{route="/v1/chat/completions",code="200"} 12',
    'alfred_provider_requests_total{provider="openai",result="error"} 99',
  ].join('\n');
  it("reads the target's own series and labels", () => {
    const metrics = TargetSchema.parse({
      baseUrl: 'http://127.0.0.1:9',
      containers: { project: 'py' },
      components: ['api'],
      metrics: {
        providerRequests: { name: 'llm_calls_total', providerLabel: 'vendor', resultLabel: 'outcome', errorResult: 'failure' },
        httpRequests: { name: 'http_server_requests_total', pathLabel: 'route', statusLabel: 'code' },
      },
    }).metrics;
    expect(trafficFromPrometheus(text, metrics)).toEqual({ providers: { openai: { ok: 10, error: 5 } }, chat: { total: 15, errors: 3 } });
  });
  it("with the replica's defaults reads only alfred_* series", () => {
    expect(trafficFromPrometheus(text)).toEqual({ providers: { openai: { ok: 0, error: 99 } }, chat: { total: 0, errors: 0 } });
  });
});
