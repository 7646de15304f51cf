/**
 * INC-05, seed 002's network partition check (`docker network inspect alfred_default`) and "Cache hit
 * rate should recover within window_seconds (300s)" as pure decisions.
 */
import { networkView, type NetworkView } from '../../src/activities/containers/network';
import { hitRateVerdict, planCacheFailure, readHitRate, type CacheFacts } from '../../src/workflows/cache-failure';
import { healthyCacheFacts } from '../fixtures/healthy-facts';

const onNetwork: NetworkView = { network: 'alfred_default', available: true, attached: { api: true, redis: true } };
const healthy = (over: Partial<CacheFacts> = {}): CacheFacts => healthyCacheFacts({ network: onNetwork, hitRateWindowSeconds: 300, ...over });

describe('the compose network as the Docker API shows it', () => {
  const c = (id: string, mode: string, networks: string[] = []) => ({ Id: id, HostConfig: { NetworkMode: mode }, NetworkSettings: { Networks: Object.fromEntries(networks.map((n) => [n, {}])) } }) as never;
  test('listed by the network, or by the container', () => {
    expect(networkView('alfred_default', { api: c('aaa111', 'alfred_default'), redis: c('bbb222', 'alfred_default', ['alfred_default']) }, { Containers: { aaa111: {} } }).attached).toEqual({ api: true, redis: true });
  });
  test('a container on neither list is not attached', () => {
    expect(networkView('alfred_default', { api: c('aaa111', 'alfred_default', ['alfred_default']), redis: c('bbb222', 'bridge', ['bridge']) }, { Containers: {} }).attached).toEqual({ api: true, redis: false });
  });
  test('all on the host network: shared, no network to inspect', () => {
    expect(networkView('alfred_default', { api: c('a', 'host'), redis: c('b', 'host') }, undefined)).toEqual({ network: 'alfred_default', hostNetwork: true, attached: { api: true, redis: true } });
  });
  test('one on the host network and one not: the host one is not on the network', () => {
    expect(networkView('alfred_default', { api: c('a', 'host'), redis: c('b', 'alfred_default', ['alfred_default']) }, { Containers: { b: {} } }).attached).toEqual({ api: false, redis: true });
  });
});

describe('INC-05 plan with the network', () => {
  test('both attached: healthy stays a false alarm (control)', () => {
    expect(planCacheFailure(healthy(), 't')).toMatchObject({ falseAlarm: true, steps: [] });
  });

  test('redis answers PONG in its container but is off the network: a partition, escalated, no step', () => {
    const p = planCacheFailure(healthy({ network: { ...onNetwork, attached: { api: true, redis: false } } }), 't');
    expect(p.steps).toEqual([]);
    expect(p.falseAlarm).toBeUndefined();
    expect(p.diagnosis).toMatch(/redis is not attached to alfred_default: network partition/);
    expect(p.escalate).toMatch(/docker network connect alfred_default <container>/);
  });

  test('no PONG from a running container: the escalation diagnosis tells the network', () => {
    const p = planCacheFailure(healthy({ pingOk: false, pingError: 'timeout', network: { ...onNetwork, attached: { api: false, redis: true } } }), 't');
    expect(p.escalate).toMatch(/running but unreachable/);
    expect(p.diagnosis).toMatch(/docker network alfred_default: api NOT attached, redis attached/);
  });

  test('a crashed redis is restarted whatever the network says', () => {
    const p = planCacheFailure(healthy({ containerRunning: false, containerStatus: 'exited', network: { network: 'alfred_default', available: false, error: 'x', attached: {} } }), 't');
    expect(p.steps).toEqual(['restart-redis']);
  });

  test('a network that could not be inspected: no plain false alarm', () => {
    const why = 'network alfred_default not found (setting targets.t.containers.network, default <containers.project>_default)';
    const p = planCacheFailure(healthy({ network: { network: 'alfred_default', available: false, error: why, attached: {} }, unobserved: [`docker network alfred_default: ${why}`] }), 't');
    expect(p.steps).toEqual([]);
    expect(p.diagnosis).toMatch(/could not observe docker network alfred_default: .*containers\.network/);
  });
});

describe('INC-05 verification: the hit rate recovering within the window', () => {
  const sla = (over: Record<string, unknown> = {}) => ({ available: true, cacheHitRatePct: 0, requestCount: 30, windowSeconds: 300, ...over });

  test('above 0 % passes at once', () => {
    expect(hitRateVerdict([readHitRate(sla({ cacheHitRatePct: 12.5 }))], 300, false)).toEqual({ ok: true, detail: 'cache hit rate 12.5%: recovering' });
  });
  test('0 % keeps watching while the window is open, fails at its end', () => {
    const r = [readHitRate(sla()), readHitRate(sla())];
    expect(hitRateVerdict(r, 300, false)).toBeUndefined();
    expect(hitRateVerdict(r, 300, true)).toEqual({ ok: false, detail: 'cache hit rate stayed at 0% for 300 s (2 readings)' });
  });
  test('rising from 0 % passes', () => {
    expect(hitRateVerdict([readHitRate(sla()), readHitRate(sla({ cacheHitRatePct: 3 }))], 300, false)).toEqual({ ok: true, detail: 'cache hit rate 3% (from 0%): recovering' });
  });
  test.each([
    ['no answer', { available: false, error: 'HTTP 503' }, /unavailable: HTTP 503/],
    ['no field', { cacheHitRatePct: undefined }, /without cache_hit_rate_pct/],
    ['no requests', { requestCount: 0 }, /no requests in the SLA window/],
  ])('%s is never recovery: unknown at the end of the window', (_n, over, why) => {
    const r = [readHitRate(sla(over)), readHitRate(sla(over))];
    expect(hitRateVerdict(r, 20, false)).toBeUndefined();
    const v = hitRateVerdict(r, 20, true);
    expect(v?.ok).toBe(false);
    expect(v?.unknown).toMatch(why);
    expect(v?.unknown).toMatch(/^cache hit rate \(SLA cache_hit_rate_pct\)/);
  });
  test('a reading among unreadable ones counts', () => {
    expect(hitRateVerdict([readHitRate(sla({ available: false, error: 'x' })), readHitRate(sla({ cacheHitRatePct: 40 }))], 20, false)?.ok).toBe(true);
  });
});
