/**
 * INC-11, evidence before conclusions as pure decisions: memory is never "steady" when it could not
 * be sampled, and a watch whose stats report no memory is not memory under the limit.
 */
import { planMemoryLeak, watchRound, type MemoryFacts } from '../../src/workflows/memory-leak';
import { healthyMemoryLeak } from '../fixtures/healthy-facts';

const MB = 1024 * 1024;
const healthy = (over: Partial<MemoryFacts> = {}): MemoryFacts => ({
  ...healthyMemoryLeak,
  trend: { ...healthyMemoryLeak.trend, samples: [100 * MB, 100 * MB, 100 * MB] },
  serviceRssBytes: 90 * MB,
  watchMs: 60_000,
  unobserved: [],
  ...over,
});

function expectNoConclusion(p: ReturnType<typeof planMemoryLeak>, signal: RegExp): void {
  expect(p.steps).toEqual([]);
  expect(p.falseAlarm ? p.diagnosis : (p as { escalate?: string }).escalate).toMatch(new RegExp(`could not observe ${signal.source}`));
}

describe('INC-11 plan with a signal unobserved', () => {
  test('healthy facts are a false alarm (control)', () => {
    const p = planMemoryLeak(healthy());
    expect(p.falseAlarm).toBe(true);
    expect(p.diagnosis).toMatch(/^api memory steady at 100 MB/);
  });

  test('the resident-memory series missing from /metrics', () => {
    const { serviceRssBytes: _r, ...f } = healthy({
      unobserved: ['service resident memory (/metrics): metric x_rss not in /metrics (setting metrics.residentMemory)'],
    });
    expectNoConclusion(planMemoryLeak(f), /service resident memory \(\/metrics\): metric x_rss/);
  });

  test('no running container to sample', () => {
    const f = healthy({
      running: false,
      status: 'exited',
      trend: { running: false, samples: [], lastBytes: 0, limitBytes: 0, growthMbPerMin: 0, rising: false },
      unobserved: ['memory trend (container stats): no running api container to sample (exited)'],
    });
    expectNoConclusion(planMemoryLeak(f), /memory trend \(container stats\)/);
  });

  test('container stats without memory usage', () => {
    const f = healthy({
      trend: { running: true, samples: [0, 0, 0], lastBytes: 0, limitBytes: 0, growthMbPerMin: 0, rising: false, unreadable: 'the container stats of api report no memory usage (3 of 3 samples)' },
      unobserved: ['memory trend (container stats): the container stats of api report no memory usage (3 of 3 samples)'],
    });
    expectNoConclusion(planMemoryLeak(f), /memory trend \(container stats\)/);
  });

  test('an observed OOM kill still restarts with a limit', () => {
    expect(planMemoryLeak(healthy({ oomKilled: true, unobserved: ['service resident memory (/metrics): /metrics unavailable: HTTP 500'] })).steps).toEqual(['restart-with-limit']);
  });
});

describe('INC-11 watch', () => {
  const limit = 512 * MB;
  const state = { name: 'alfred-api', status: 'running', running: true, oomKilled: false, startedAt: 's', memoryLimitBytes: limit };
  test('memory under the limit keeps the watch going (control)', () => {
    expect(watchRound(state, { memoryBytes: 200 * MB }, 's', limit, { unobserved: [] })).toBeUndefined();
  });

  test('stats without memory usage are unknown, not under the limit', () => {
    const c = watchRound(state, { memoryBytes: 0, unreadable: 'the container stats of alfred-api report no memory usage' }, 's', limit, { unobserved: [] });
    expect(c).toMatchObject({ ok: false, unknown: 'memory during the watch: the container stats of alfred-api report no memory usage' });
  });

  test('a restart during the watch is a failure', () => {
    expect(watchRound({ ...state, startedAt: 'later' }, { memoryBytes: 1 }, 's', limit, { unobserved: [] })).toMatchObject({ ok: false });
  });

  test('incidents started before the rule read such stats as 0 bytes, as they did', () => {
    expect(watchRound(state, { memoryBytes: 0, unreadable: 'x' }, 's', limit, {})).toBeUndefined();
  });
});
