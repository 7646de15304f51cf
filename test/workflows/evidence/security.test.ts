/**
 * Security runbooks (INC-06, INC-10, INC-13, INC-14, INC-15) against copies of the healthy drill
 * target whose settings point at signals the target does not have: each escalates naming what it
 * could not observe, never a false alarm, never resolved, no step. The ungarbled target is the
 * control: the same runbooks call the healthy drill a false alarm.
 */
import type { TargetConfig } from '../../../src/config';
import { expectUnobserved, runGarbled, summary, type Garbled } from '../../helpers/garbled';

jest.setTimeout(300_000);

/** The data-breach scan starts now: lines an earlier drill wrote into the api's logs stay out of it. */
const since = new Date(Date.now() - 2000).toISOString();

const tls = (t: TargetConfig): NonNullable<TargetConfig['tls']> => {
  if (!t.tls) throw new Error('the drill target has no tls settings');
  return t.tls;
};

const cases: Garbled[] = [
  {
    runbook: 'authFailure',
    signal: 'the admin flag of /v1/users/me',
    garble: (t) => {
      t.api.fields.usersMe.isAdmin = 'no_such_admin_flag';
    },
    expect: /GET \/v1\/users\/me \(admin key\).*api\.fields\.usersMe\.isAdmin/,
  },
  {
    runbook: 'authFailure',
    signal: 'the key hash column of users',
    garble: (t) => {
      if (!t.postgres) throw new Error('the drill target has no postgres settings');
      t.postgres.schema.users.apiKeyHash = 'no_such_key_hash';
    },
    expect: /key-hash self-check.*postgres\.schema\.users\.apiKeyHash/,
  },
  {
    runbook: 'rateLimitStorm',
    signal: 'request lines in the api logs',
    garble: (t) => {
      t.logs.status = '(?:^|\\s)no_such_status=(?<status>\\d{3})';
    },
    expect: /429s in the api logs.*no request line recognised.*logs\.status/,
  },
  {
    runbook: 'tlsExpiry',
    signal: 'the TLS endpoint',
    garble: (t) => {
      t.tlsEndpoint = '127.0.0.1:1';
    },
    expect: /certificate served on 127\.0\.0\.1:1.*tlsEndpoint/,
  },
  {
    runbook: 'tlsExpiry',
    signal: 'the certificate file',
    garble: (t) => {
      tls(t).certFile = 'no-such-certificate.crt';
    },
    expect: /certificate file the proxy reads.*tls\.certFile/,
  },
  {
    runbook: 'dataBreach',
    signal: 'the audit actions that read or export data',
    garble: (t) => {
      t.security.accessActions = ['no_such_access_action'];
    },
    params: { since },
    expect: /export \/ read actions in the audit log.*security\.accessActions/,
  },
  {
    runbook: 'cachePoisoning',
    signal: 'the similarity threshold',
    garble: (t) => {
      t.api.fields.governanceSettings.cacheSimilarityThreshold = 'settings.no_such_threshold';
    },
    expect: /similarity threshold.*cacheSimilarityThreshold/,
  },
  {
    runbook: 'cachePoisoning',
    signal: 'the cache keys',
    garble: (t) => {
      t.cache.keyPattern = 'no-such-cache:*';
    },
    expect: /cache entries: no key matches no-such-cache:\*.*cache\.keyPattern/,
  },
  {
    runbook: 'cachePoisoning',
    signal: 'the prompt of cached entries',
    garble: (t) => {
      t.cache.entry.prompt = 'no_such_prompt';
    },
    expect: /cache entries: \d+ JSON entries have no string `no_such_prompt`/,
  },
  {
    runbook: 'cachePoisoning',
    signal: 'the request count of the SLA window',
    garble: (t) => {
      t.api.fields.sla.requestCount = 'metrics.no_such_count';
    },
    expect: /cache hit rate: the SLA metrics report no request count/,
  },
];

const controls = [
  { runbook: 'authFailure' as const },
  { runbook: 'rateLimitStorm' as const },
  { runbook: 'tlsExpiry' as const },
  { runbook: 'dataBreach' as const, params: { since } },
  { runbook: 'cachePoisoning' as const },
];

let result: Awaited<ReturnType<typeof runGarbled>>;

beforeAll(async () => {
  result = await runGarbled(cases, controls);
});

test.each(cases.map((c, i) => [`${c.runbook} without ${c.signal}`, i] as const))('%s escalates naming it', (_name, i) => {
  expectUnobserved(result.garbled[i] as (typeof result.garbled)[number]);
});

test.each(controls.map((c, i) => [c.runbook, i] as const))('control: %s on the healthy drill is a false alarm', (_name, i) => {
  const r = result.control[i];
  if (!r) throw new Error('no control record');
  if (r.outcome !== 'false-alarm') throw new Error(`expected a false alarm:\n${summary(r)}`);
  expect(r.actions).toEqual([]);
});
