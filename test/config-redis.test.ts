/** Configuration rules that span fields, and the shipped files read as the engine reads them. */
import path from 'node:path';
import { CheckedTargetSchema, loadConfig } from '../src/config';

const REPO = path.resolve(__dirname, '..');

const target = (extra: Record<string, unknown>) => ({
  baseUrl: 'http://127.0.0.1:58000',
  containers: { project: 'alfred' },
  components: ['api', 'worker', 'db', 'redis'],
  ...extra,
});

function issues(extra: Record<string, unknown>): string[] {
  const r = CheckedTargetSchema.safeParse(target(extra));
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
}

describe('redis', () => {
  test('by default the seeds way: redis-cli in the redis component, no address needed', () => {
    const t = CheckedTargetSchema.parse(target({ redis: {} }));
    expect(t.redis).toEqual({ via: 'exec', component: 'redis', cli: ['redis-cli'], probeKey: 'remediation:probe' });
  });

  test('via: tcp needs host and port; via: exec does not', () => {
    expect(issues({ redis: { via: 'tcp' } })).toEqual([
      'redis.host: required when redis.via is tcp',
      'redis.port: required when redis.via is tcp',
    ]);
    expect(
      issues({ redis: { via: 'tcp', host: '127.0.0.1', port: 6379, password: { env: 'REDIS_PASSWORD' } } }),
    ).toEqual([]);
    expect(issues({ redis: { via: 'exec', cli: ['/usr/local/bin/redis-cli', '-p', '6380'] } })).toEqual([]);
  });

  test('via: exec needs a component of the target', () => {
    expect(issues({ redis: { component: 'cache' } })).toEqual([
      'redis.component: "cache" is not one of components (api, worker, db, redis)',
    ]);
    // Over tcp the component runs no redis-cli, so it is not checked.
    expect(issues({ redis: { via: 'tcp', host: 'h', port: 1, component: 'cache' } })).toEqual([]);
  });

  test('a password never goes in redis.cli', () => {
    for (const flag of ['-a', '--pass', '-u']) {
      expect(issues({ redis: { cli: ['redis-cli', flag, 'x'] } })).toEqual([
        'redis.cli: a password or URI in redis.cli would show in the process list: set redis.password (passed as REDISCLI_AUTH)',
      ]);
    }
    expect(issues({ redis: { cli: [] } })).toHaveLength(1);
  });

  test('the replica reaches Redis through redis-cli in its container, on the drill port', () => {
    const env = { STACK_DIR: '.stack' };
    expect(loadConfig(path.join(REPO, 'config/engine.yaml'), env).targets.alfred?.redis).toEqual({
      via: 'exec',
      component: 'redis',
      cli: ['redis-cli', '-p', '6379'],
      probeKey: 'remediation:probe',
    });
    expect(
      loadConfig(path.join(REPO, 'config/engine.yaml'), { ...env, DRILL_REDIS_PORT: '6390' }).targets.alfred?.redis
        ?.cli,
    ).toEqual(['redis-cli', '-p', '6390']);
  });

  test('the engine in compose connects over the compose network', () => {
    expect(loadConfig(path.join(REPO, 'config/engine.compose.yaml'), {}).targets.alfred?.redis).toMatchObject({
      via: 'tcp',
      host: 'alfred-redis',
      port: 6379,
    });
  });
});
