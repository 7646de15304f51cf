/** INC-04, seed 002's `redis-cli --latency -i 1` as pure decisions: a slow Redis is named, an unread one is unknown. */
import { parseLatencyLine, type RedisLatency } from '../../src/activities/redis/redis';
import { planLatencySpike, redisSlow, type LatencyFacts } from '../../src/workflows/latency-spike';
import { healthyLatencyFacts } from '../fixtures/healthy-facts';

const how = 'redis-cli -p 6379 --latency -i 1 in the redis container';
const fast: RedisLatency = { available: true, how, minMs: 0, maxMs: 2, avgMs: 0.2, samples: 97 };
const healthy = (over: Partial<LatencyFacts> = {}): LatencyFacts => healthyLatencyFacts({ redisLatency: fast, ...over });

describe('redis-cli --latency output', () => {
  test('the line it prints without a terminal: min max avg count', () => {
    expect(parseLatencyLine('0 3 0.24 97\n')).toEqual({ minMs: 0, maxMs: 3, avgMs: 0.24, samples: 97 });
    expect(parseLatencyLine('12 40 17 10')).toEqual({ minMs: 12, maxMs: 40, avgMs: 17, samples: 10 });
  });
  test.each(['', 'Could not connect to Redis at 127.0.0.1:6379: Connection refused', 'min: 0, max: 3, avg: 0.24 (97 samples)', '0 0 0.00 0'])(
    'anything else is no measurement: %j',
    (out) => expect(parseLatencyLine(out)).toBeUndefined(),
  );
});

describe('INC-04 plan with the Redis latency', () => {
  test('fast Redis and latency within the SLA: a false alarm (control)', () => {
    expect(planLatencySpike(healthy())).toMatchObject({ falseAlarm: true, steps: [] });
  });

  test('latency above the SLA with Redis slow: escalates naming Redis and its numbers, no step', () => {
    const slow = { ...fast, avgMs: 180, maxMs: 400, samples: 6 };
    expect(redisSlow(slow, 150)).toBe(true);
    const p = planLatencySpike(healthy({ probeP95Ms: 420, redisLatency: slow }));
    expect(p.steps).toEqual([]);
    expect(p.rootCause).toBe('Redis slow');
    expect(p.escalate).toMatch(/Redis slow \(average round trip 180 ms, redis-cli -p 6379 --latency -i 1/);
  });

  test('a cause the runbook fixes still gets its step with Redis slow', () => {
    const p = planLatencySpike(healthy({ probeP95Ms: 420, redisLatency: { ...fast, avgMs: 180 }, pool: { usedPct: 100, waiting: 4 } }));
    expect(p.steps).toEqual(['restart-api']);
  });

  test('latency above the SLA with the Redis latency unread: the escalation says it could not be observed', () => {
    const p = planLatencySpike(
      healthy({
        probeP95Ms: 420,
        redisLatency: { available: false, how, error: 'exit 1: Could not connect to Redis' },
        unobserved: [`Redis latency (redis-cli --latency): ${how}: exit 1: Could not connect to Redis`],
      }),
    );
    expect(p.steps).toEqual([]);
    expect(p.escalate).toMatch(/cause not known: could not observe Redis latency \(redis-cli --latency\): .*Could not connect/);
  });

  test('within the SLA with the Redis latency unread: no plain false alarm, it names what was not observed', () => {
    const p = planLatencySpike(healthy({ redisLatency: { available: false, how, error: 'no result within 10 s' }, unobserved: [`Redis latency (redis-cli --latency): ${how}: no result within 10 s`] }));
    expect(p.steps).toEqual([]);
    expect(p.diagnosis).toMatch(/could not observe Redis latency/);
  });

  test('an unread latency is never slow', () => {
    expect(redisSlow({ available: false, how }, 150)).toBe(false);
    expect(redisSlow(undefined, 150)).toBe(false);
  });
});
