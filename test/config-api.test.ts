/**
 * Configuration validation of the target API settings (`targets.<name>.api`, `redis.probeKey`,
 * `cache.entry`): defaults are the replica's values, and bad paths or field names are refused with
 * their place in the file. No stack needed.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { ConfigError, TargetSchema, loadConfig } from '../src/config';

const minimal = {
  baseUrl: 'http://127.0.0.1:58000',
  containers: { project: 'alfred' },
  components: ['api', 'db', 'redis'],
};

function writeConfig(target: Record<string, unknown>): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'engine-config-'));
  const file = path.join(dir, 'engine.yaml');
  writeFileSync(
    file,
    stringify({
      docker: { socketPath: '/run/docker.sock' },
      targets: { alfred: { ...minimal, ...target } },
      policy: { approvers: ['alice'], tiers: [{ name: 'tier-1', waitMs: 1000 }] },
    }),
  );
  return file;
}

describe('target API settings', () => {
  test('default to the replica: paths and fields as the drill answers them', () => {
    const t = TargetSchema.parse({ ...minimal, redis: { host: '127.0.0.1', port: 6379 } });
    expect(t.api.paths).toEqual({
      governanceSettings: '/v1/governance/settings',
      enableProvider: '/v1/governance/providers/enable',
      blocks: '/v1/governance/blocks',
      refunds: '/v1/admin/refunds',
      billingStatus: '/v1/admin/billing/status',
      billingReset: '/v1/admin/billing/reset',
    });
    expect(t.api.fields.health.redis).toBe('redis');
    expect(t.api.fields.governanceSettings).toEqual({
      cacheOnlyMode: 'settings.cache_only_mode',
      disabledProviders: 'settings.disabled_providers',
      cacheSimilarityThreshold: 'settings.cache_similarity_threshold',
      maintenanceMode: 'settings.maintenance_mode',
    });
    expect(t.api.fields.sla).toEqual({ errorRatePct: 'metrics.error_rate_pct', requestCount: 'metrics.request_count', p99LatencyMs: 'metrics.p99_latency_ms' });
    expect(t.api.fields.usersMe).toEqual({ isAdmin: 'is_admin', id: 'id' });
    expect(t.api.fields.chatCompletion).toEqual({ provider: 'provider', cached: 'cached' });
    expect(t.api.fields.auditVerify).toEqual({ breakKind: 'break_kind', breaks: 'breaks', total: 'total' });
    expect(t.api.fields.topup).toEqual({ idempotencyKey: 'idempotency_key', topupId: 'topup_id', idempotent: 'idempotent' });
    expect(t.api.fields.refund).toEqual({ requestLogId: 'request_log_id', refundId: 'refund_id', idempotent: 'idempotent' });
    expect(t.api.fields.billingReset.periodStart).toBe('period_start');
    expect(t.redis?.probeKey).toBe('remediation:probe');
    expect(t.cache.entry).toEqual({ prompt: 'prompt', response: 'response' });
  });

  test('a target that differs sets only what differs; the rest keeps its default', () => {
    const t = TargetSchema.parse({
      ...minimal,
      api: { paths: { governanceSettings: '/admin/governance' }, fields: { health: { redis: 'checks.cache.status' }, sla: { p99LatencyMs: 'latency.p99' } } },
      cache: { entry: { prompt: 'request.text', response: 'answer' } },
    });
    expect(t.api.paths.governanceSettings).toBe('/admin/governance');
    expect(t.api.paths.blocks).toBe('/v1/governance/blocks');
    expect(t.api.fields.health.redis).toBe('checks.cache.status');
    expect(t.api.fields.sla).toEqual({ errorRatePct: 'metrics.error_rate_pct', requestCount: 'metrics.request_count', p99LatencyMs: 'latency.p99' });
    expect(t.cache.entry).toEqual({ prompt: 'request.text', response: 'answer' });
  });

  test('a path must start with / and a field must be a name or a dotted path; errors name their place', () => {
    expect(() => loadConfig(writeConfig({ api: { paths: { blocks: 'v1/governance/blocks' } } }), {})).toThrow(
      /targets\.alfred\.api\.paths\.blocks: a path starting with \//,
    );
    expect(() => loadConfig(writeConfig({ api: { fields: { health: { redis: 'checks..redis' } } } }), {})).toThrow(
      /targets\.alfred\.api\.fields\.health\.redis: a field name or a dotted path/,
    );
    // A request body field is a plain name: a dotted path would not say where to put it.
    expect(() => loadConfig(writeConfig({ api: { fields: { topup: { idempotencyKey: 'meta.key' } } } }), {})).toThrow(
      /targets\.alfred\.api\.fields\.topup\.idempotencyKey: a field name/,
    );
    expect(() => loadConfig(writeConfig({ cache: { entry: { prompt: '' } } }), {})).toThrow(ConfigError);
    expect(() => loadConfig(writeConfig({ redis: { host: '127.0.0.1', port: 6379, probeKey: '' } }), {})).toThrow(/targets\.alfred\.redis\.probeKey/);
  });

  test('the shipped configuration is valid and keeps every default', () => {
    const c = loadConfig(path.join(__dirname, '../config/engine.yaml'), { STACK_DIR: '.stack' });
    const t = c.targets.alfred;
    expect(t?.api).toEqual(TargetSchema.parse(minimal).api);
    expect(t?.redis?.probeKey).toBe('remediation:probe');
  });
});
