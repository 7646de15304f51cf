/** Settings of seed 002's provider status pages, compose network, cache recovery window and memory limit. */
import path from 'node:path';
import { CheckedTargetSchema, composeNetworkOf, loadConfig, statusPageOf, SEED_STATUS_PAGES } from '../src/config';

const REPO = path.resolve(__dirname, '..');
const target = (extra: Record<string, unknown> = {}) =>
  CheckedTargetSchema.parse({ baseUrl: 'http://127.0.0.1:58000', containers: { project: 'alfred' }, components: ['api', 'redis'], ...extra });

describe('providers.<name>.statusPage', () => {
  test("default: the seed's pages for openai, anthropic and google, none for another name", () => {
    const t = target({ providers: { openai: { url: 'https://api.openai.com/v1/models', model: 'gpt-4o' }, local: { url: 'http://127.0.0.1:1/', model: 'm' } } });
    expect(statusPageOf('openai', t.providers.openai as never)).toBe('https://status.openai.com');
    expect(statusPageOf('local', t.providers.local as never)).toBeUndefined();
    expect(SEED_STATUS_PAGES).toEqual({ openai: 'https://status.openai.com', anthropic: 'https://status.anthropic.com', google: 'https://status.cloud.google.com' });
  });
  test('a URL of its own, or false for none', () => {
    const t = target({ providers: { openai: { url: 'https://x/', model: 'm', statusPage: 'http://127.0.0.1:9/' }, google: { url: 'https://x/', model: 'm', statusPage: false } } });
    expect(statusPageOf('openai', t.providers.openai as never)).toBe('http://127.0.0.1:9/');
    expect(statusPageOf('google', t.providers.google as never)).toBeUndefined();
    expect(CheckedTargetSchema.safeParse({ baseUrl: 'http://h', containers: { project: 'p' }, components: ['api'], providers: { a: { url: 'https://x/', model: 'm', statusPage: 'not a url' } } }).success).toBe(false);
  });
  test("the replica's simulated providers have no status page: tests never reach the internet", () => {
    const cfg = loadConfig(path.join(REPO, 'config/engine.yaml'), { STACK_DIR: '.stack' });
    for (const [name, p] of Object.entries(cfg.targets.alfred?.providers ?? {})) expect([name, statusPageOf(name, p)]).toEqual([name, undefined]);
  });
});

describe('containers.network', () => {
  test("default: Compose's <project>_default (seed 002: alfred_default)", () => {
    expect(composeNetworkOf(target().containers)).toBe('alfred_default');
  });
  test('a network of its own', () => {
    expect(composeNetworkOf(target({ containers: { project: 'alfred', network: 'backend' } }).containers)).toBe('backend');
    expect(CheckedTargetSchema.safeParse({ baseUrl: 'http://h', containers: { project: 'p', network: 'a b' }, components: ['api'] }).success).toBe(false);
  });
});

describe('limits', () => {
  test("cacheRecoverySeconds: seed 002's window_seconds, 300", () => {
    expect(target().limits.cacheRecoverySeconds).toBe(300);
    expect(target({ limits: { cacheRecoverySeconds: 30 } }).limits.cacheRecoverySeconds).toBe(30);
  });
  test("apiMemoryMb 512 and memoryWatchMs 10 minutes: seed 002's mem_limit and watch", () => {
    expect(target().limits).toMatchObject({ apiMemoryMb: 512, memoryWatchMs: 600_000 });
  });
});
