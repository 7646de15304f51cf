/** INC-11, seed 002's `mem_limit: 512m` with `memswap_limit: 512m`, and its 10-minute watch, as pure decisions. */
import { limitInPlace, watchRound } from '../../src/workflows/memory-leak';
import { TargetSchema } from '../../src/config';

const MB = 1024 * 1024;
const limit = 512 * MB;
const state = { name: 'alfred-api', status: 'running', running: true, oomKilled: false, startedAt: 's', memoryLimitBytes: limit, memorySwapBytes: limit };

describe('the memory limit the seed asks for', () => {
  test('memory and memory + swap both at the limit', () => {
    expect(limitInPlace({ memoryLimitBytes: limit, memorySwapBytes: limit }, limit, true)).toBe(true);
  });
  test.each([
    ['swap unlimited', -1],
    ['swap unset (twice the limit)', 0],
    ['more swap than memory', 1024 * MB],
  ])('%s is not the limit yet: the api is recreated, not just restarted', (_n, swap) => {
    expect(limitInPlace({ memoryLimitBytes: limit, memorySwapBytes: swap }, limit, true)).toBe(false);
  });
  test('incidents started before the swap rule count the memory limit alone', () => {
    expect(limitInPlace({ memoryLimitBytes: limit, memorySwapBytes: -1 }, limit, false)).toBe(true);
  });
  test("the seed's numbers are the defaults: 512 MB, watched for 10 minutes", () => {
    const t = TargetSchema.parse({ baseUrl: 'http://127.0.0.1:1', containers: { project: 'p' }, components: ['api'] });
    expect(t.limits.apiMemoryMb).toBe(512);
    expect(t.limits.memoryWatchMs).toBe(10 * 60 * 1000);
  });
});

describe('the watch', () => {
  const stats = { memoryBytes: 200 * MB };
  test('memory under the limit with swap equal to it: the round passes', () => {
    expect(watchRound(state, stats, 's', limit, { unobserved: [], swapBytes: limit })).toBeUndefined();
  });
  test('swap that is not the limit fails the round, naming it', () => {
    expect(watchRound({ ...state, memorySwapBytes: -1 }, stats, 's', limit, { unobserved: [], swapBytes: -1 })).toEqual({
      ok: false,
      detail: 'memory + swap limit is unlimited, not 512 MB (memswap_limit = mem_limit)',
    });
  });
  test('incidents started before the swap rule do not look at swap', () => {
    expect(watchRound({ ...state, memorySwapBytes: -1 }, stats, 's', limit, { unobserved: [] })).toBeUndefined();
  });
  test('memory near the limit, an OOM kill or a restart fail the round', () => {
    expect(watchRound(state, { memoryBytes: 500 * MB }, 's', limit, { swapBytes: limit })?.detail).toMatch(/reached 90% of the 512 MB limit/);
    expect(watchRound({ ...state, oomKilled: true }, stats, 's', limit, { swapBytes: limit })?.detail).toMatch(/OOM-killed during the watch/);
    expect(watchRound({ ...state, startedAt: 'later' }, stats, 's', limit, { swapBytes: limit })?.ok).toBe(false);
  });
});
