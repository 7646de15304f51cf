/** Configuration: the per-target log patterns and metric names are checked at load. No stack needed. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { ConfigError, loadConfig } from '../src/config';
import { HTTP_REQUESTS_DEFAULTS, LOG_PATTERN_DEFAULTS, METRIC_DEFAULTS, PROVIDER_REQUESTS_DEFAULTS } from '../src/lib/target-signals';

const REPO = path.resolve(__dirname, '..');
const dir = mkdtempSync(path.join(tmpdir(), 'engine-config-'));
const ENV = { STACK_DIR: '/tmp/stack' };

/** A small configuration whose target `alfred` has the given `logs` / `metrics`. */
function withTarget(extra: Record<string, unknown>): string {
  const doc = {
    docker: { socketPath: '/run/docker.sock' },
    targets: { alfred: { baseUrl: 'http://127.0.0.1:58000', containers: { project: 'alfred' }, components: ['api', 'proxy'], ...extra } },
    policy: { approvers: ['alice'], tiers: [{ name: 'on-call', waitMs: 60_000 }] },
  };
  const file = path.join(dir, `engine-${Object.keys(extra).join('-')}-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(file, stringify(doc));
  return file;
}

function loadError(file: string): string {
  try {
    loadConfig(file, ENV);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('the configuration loaded');
}

describe('logs and metrics settings', () => {
  it('default to what the replica writes', () => {
    const t = loadConfig(path.join(REPO, 'config/engine.yaml'), ENV).targets.alfred;
    expect(t).toBeDefined();
    const { frontComponent, ...patterns } = t?.logs ?? { frontComponent: '' };
    expect(frontComponent).toBe('proxy');
    expect(patterns).toEqual(LOG_PATTERN_DEFAULTS);
    expect(t?.metrics).toEqual({ ...METRIC_DEFAULTS, providerRequests: PROVIDER_REQUESTS_DEFAULTS, httpRequests: HTTP_REQUESTS_DEFAULTS });
  });

  it('take a target that logs JSON and names its series otherwise', () => {
    const file = withTarget({
      logs: {
        providerError: '"message":\\s*"provider error"',
        provider: '"provider":\\s*"(?<provider>\\w+)"',
        frontComponent: 'nginx',
      },
      metrics: { dbPoolTotal: 'app_pool_size', providerRequests: { name: 'llm_calls_total', resultLabel: 'outcome', errorResult: 'failure' } },
    });
    const t = loadConfig(file, ENV).targets.alfred;
    expect(t?.logs.providerError).toBe('"message":\\s*"provider error"');
    expect(t?.logs.provider).toBe('"provider":\\s*"(?<provider>\\w+)"');
    expect(t?.logs.providerFailover).toBe(LOG_PATTERN_DEFAULTS.providerFailover);
    expect(t?.logs.frontComponent).toBe('nginx');
    expect(t?.metrics.dbPoolTotal).toBe('app_pool_size');
    expect(t?.metrics.dbPoolIdle).toBe(METRIC_DEFAULTS.dbPoolIdle);
    expect(t?.metrics.providerRequests).toEqual({ name: 'llm_calls_total', providerLabel: 'provider', resultLabel: 'outcome', errorResult: 'failure' });
  });

  it('refuse a pattern that is not a regular expression, naming its path', () => {
    const msg = loadError(withTarget({ logs: { providerError: 'provider (error' } }));
    expect(msg).toMatch(/targets\.alfred\.logs\.providerError: not a valid regular expression/);
  });

  it('refuse an extracting pattern without its named group, naming the group and the path', () => {
    const msg = loadError(withTarget({ logs: { provider: '"provider":\\s*"(\\w+)"', keyId: 'key=(?<id>\\w+)' } }));
    expect(msg).toMatch(/targets\.alfred\.logs\.provider: needs the named group \(\?<provider>\.\.\.\)/);
    expect(msg).toMatch(/targets\.alfred\.logs\.keyId: needs the named group \(\?<key>\.\.\.\)/);
  });

  it('refuse metric and label names Prometheus would not accept', () => {
    const msg = loadError(withTarget({ metrics: { residentMemory: 'process resident', httpRequests: { statusLabel: 'http-status' } } }));
    expect(msg).toMatch(/targets\.alfred\.metrics\.residentMemory: a Prometheus metric name/);
    expect(msg).toMatch(/targets\.alfred\.metrics\.httpRequests\.statusLabel: a Prometheus label name/);
  });
});
