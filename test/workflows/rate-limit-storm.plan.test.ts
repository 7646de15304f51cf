/** rateLimitStorm's decision: a pure function over its findings, no Temporal, no drill. */
import { summariseRateLimitLines } from '../../src/activities/target-api/rate-limits';
import { planRateLimitStorm, raisedLimit, type RateLimitFacts } from '../../src/workflows/rate-limit-storm';
import { healthyRateLimitStorm } from '../fixtures/healthy-facts';

function storm(clients: [string, number][], keys: [string, number][], owners: RateLimitFacts['owners'] = []): RateLimitFacts {
  const total = clients.reduce((n, [, c]) => n + c, 0);
  return {
    ...healthyRateLimitStorm,
    summary: {
      total429: total,
      sinceSeconds: 120,
      clients: clients.map(([id, count]) => ({ id, count })),
      distinctClients: clients.length,
      keys: keys.map(([id, count]) => ({ id, count })),
      withoutKey: total - keys.reduce((n, [, c]) => n + c, 0),
    },
    owners,
    counterKeys: clients.length,
  };
}

describe('rateLimitStorm plan', () => {
  it('calls 429s within the baseline a false alarm', () => {
    expect(planRateLimitStorm(storm([['10.0.0.1', 4]], []), 'alfred')).toMatchObject({ falseAlarm: true, steps: [] });
  });
  it('blocks a single abusive client', () => {
    const p = planRateLimitStorm(storm([['203.0.113.7', 240], ['10.0.0.2', 3]], [['aaaaaaaaaaaa', 243]]), 'alfred');
    expect(p).toMatchObject({ steps: ['block-client'], ip: '203.0.113.7' });
  });
  it('raises the limit for a legitimate spike of one tenant spread over many clients', () => {
    const owners = ['k1', 'k2', 'k3'].map((k, i) => ({ keyId: `${k}aaaaaaaaaa`, userId: i + 2, tenant: 'example.com' }));
    const f = storm(
      [['10.0.0.1', 15], ['10.0.0.2', 15], ['10.0.0.3', 15]],
      owners.map((o) => [o.keyId, 15]),
      owners,
    );
    const p = planRateLimitStorm(f, 'alfred');
    expect(p).toMatchObject({ steps: ['raise-rate-limit'], limit: 120 });
    expect(raisedLimit({ ...f, limitPerMinute: 500 })).toBe(600);
    expect(planRateLimitStorm({ ...f, limitPerMinute: 600 }, 'alfred').escalate).toMatch(/cannot be raised/);
  });
  it('escalates a distributed storm: many clients, unknown keys or many tenants', () => {
    const clients: [string, number][] = Array.from({ length: 8 }, (_, i) => [`192.0.2.${i + 1}`, 10]);
    expect(planRateLimitStorm(storm(clients, []), 'alfred').escalate).toMatch(/distributed/);
    const owners = [
      { keyId: 'aaaaaaaaaaaa', userId: 2, tenant: 'example.com' },
      { keyId: 'bbbbbbbbbbbb', userId: 3, tenant: 'other.org' },
    ];
    expect(planRateLimitStorm(storm(clients, [['aaaaaaaaaaaa', 40], ['bbbbbbbbbbbb', 40]], owners), 'alfred').escalate).toMatch(/distributed/);
  });
  it('summarises the limiter lines by client and key id', () => {
    const lines = [
      'ts=1 level=warn role=api msg="rate limit exceeded" client_ip=203.0.113.7 key_id=abcdefabcdef limit_per_minute=60',
      'ts=2 level=warn role=api msg="rate limit exceeded" client_ip=203.0.113.7 key_id=abcdefabcdef limit_per_minute=60',
      'ts=3 level=warn role=api msg="rate limit exceeded" client_ip=10.0.0.9 limit_per_minute=60',
      'ts=4 level=info role=api method=POST path=/v1/chat/completions status=429 client_ip=203.0.113.7',
    ];
    expect(summariseRateLimitLines(lines, 60)).toEqual({
      total429: 3,
      sinceSeconds: 60,
      clients: [{ id: '203.0.113.7', count: 2 }, { id: '10.0.0.9', count: 1 }],
      distinctClients: 2,
      keys: [{ id: 'abcdefabcdef', count: 2 }],
      withoutKey: 1,
    });
  });
});
