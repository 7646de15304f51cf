/** memoryLeak's decision: a pure function over its findings, no Temporal needed. */
import { planMemoryLeak } from '../../src/workflows/memory-leak';
import type { MemoryTrend } from '../../src/activities/containers/probes';
import { healthyMemoryLeak } from '../fixtures/healthy-facts';

const MB = 1024 * 1024;
const flat = healthyMemoryLeak.trend;
const leaking: MemoryTrend = { running: true, samples: [100 * MB, 110 * MB, 120 * MB], lastBytes: 120 * MB, limitBytes: 0, growthMbPerMin: 240, rising: true };

describe('memoryLeak plan', () => {
  it('restarts with a limit on steady growth', () => {
    const p = planMemoryLeak({ ...healthyMemoryLeak, trend: leaking });
    expect(p.steps).toEqual(['restart-with-limit']);
    expect(p.diagnosis).toMatch(/grows 240 MB\/min/);
  });
  it('restarts with a limit after an OOM kill', () => {
    expect(planMemoryLeak({ ...healthyMemoryLeak, oomKilled: true, restartCount: 3 }).rootCause).toMatch(/killed for memory/);
  });
  it('restarts when memory sits at its limit even without growth', () => {
    const p = planMemoryLeak({ ...healthyMemoryLeak, limitBytes: 128 * MB, trend: { ...flat, limitBytes: 128 * MB, lastBytes: 125 * MB } });
    expect(p.steps).toEqual(['restart-with-limit']);
  });
  it('does not take noise for a leak: growth that falls back is not steady', () => {
    expect(planMemoryLeak({ ...healthyMemoryLeak, trend: { ...leaking, rising: false } }).falseAlarm).toBe(true);
  });
  it('calls steady memory a false alarm', () => {
    const p = planMemoryLeak(healthyMemoryLeak);
    expect(p.falseAlarm).toBe(true);
    expect(p.steps).toEqual([]);
  });
});
