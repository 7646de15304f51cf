/**
 * Activities against the real drill stack: containers through Podman's Docker API, the drill's
 * PostgreSQL and Redis, and its HTTP API. Bad input gets a non-retryable failure with a clear message.
 */
import Docker from 'dockerode';
import Redis from 'ioredis';
import pino from 'pino';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createActivities, type Activities } from '../../src/activities';
import { ErrorType } from '../../src/activities/engine/errors';
import { testConfig } from '../helpers/engine';
import { drillPg } from '../helpers/drill';

jest.setTimeout(120_000);

const config = testConfig();
const docker = new Docker({ socketPath: config.docker.socketPath });
const acts: Activities = createActivities({ config, docker, logger: pino({ level: 'silent' }) });
const env = new MockActivityEnvironment();
const run = <A extends unknown[], R>(fn: (...a: A) => Promise<R>, ...args: A): Promise<R> => env.run(fn, ...args);

async function expectPermanent(p: Promise<unknown>, type: ErrorType, message: RegExp): Promise<void> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect((err as ApplicationFailure).nonRetryable).toBe(true);
    expect((err as ApplicationFailure).type).toBe(type);
    expect((err as ApplicationFailure).message).toMatch(message);
    return;
  }
  throw new Error('expected a non-retryable failure');
}

describe('docker', () => {
  test('restarts a real container, and a repeat with the same notBefore does nothing', async () => {
    const ref = { target: 'alfred', component: 'worker' };
    const before = await run(acts.containerState, ref);
    expect(before.running).toBe(true);
    const notBefore = new Date().toISOString();
    const first = await run(acts.restartContainer, { ...ref, notBefore });
    expect(first.performed).toBe(true);
    const after = await run(acts.containerState, ref);
    expect(Date.parse(after.startedAt)).toBeGreaterThan(Date.parse(before.startedAt));
    const again = await run(acts.restartContainer, { ...ref, notBefore });
    expect(again).toMatchObject({ performed: false });
    expect((await run(acts.containerState, ref)).startedAt).toBe(after.startedAt);
  });

  test('reads logs, stats, disk usage and image tags', async () => {
    const logs = await run(acts.containerLogs, { target: 'alfred', component: 'api', sinceSeconds: 3600, grep: 'path=' });
    expect(logs.total).toBeGreaterThan(0);
    const disk = await run(acts.diskUsage, { target: 'alfred', component: 'db', path: '/var/lib/postgresql/data' });
    expect(disk.usedPct).toBeGreaterThanOrEqual(0);
    expect(disk.usedPct).toBeLessThanOrEqual(100);
    const stats = await run(acts.containerStats, { target: 'alfred', component: 'redis' });
    expect(stats.memoryBytes).toBeGreaterThan(0);
    const tags = await run(acts.imageTags, { target: 'alfred', component: 'api' });
    expect(tags.tags).toEqual(expect.arrayContaining(['1.0.0', '1.1.0', '1.2.0-bad']));
    const good = await run(acts.lastKnownGoodTag, { target: 'alfred', component: 'api' });
    expect(good.tag).not.toBe(good.current);
  });

  test('refuses unknown components, unknown targets and bad regular expressions', async () => {
    await expectPermanent(run(acts.restartContainer, { target: 'alfred', component: 'mainframe', notBefore: new Date().toISOString() }), ErrorType.UnknownContainer, /no component "mainframe"/);
    await expectPermanent(run(acts.containerState, { target: 'nope', component: 'api' }), ErrorType.UnknownTarget, /unknown target "nope"/);
    await expectPermanent(run(acts.containerLogs, { target: 'alfred', component: 'api', sinceSeconds: 5, grep: '(' }), ErrorType.BadInput, /not a valid regular expression/);
    await expectPermanent(run(acts.recreateContainer, { target: 'alfred', component: 'api', tag: '9.9.9' }), ErrorType.BadInput, /not present/);
  });
});

describe('redis', () => {
  const r = new Redis({ port: 6379 });
  afterAll(() => r.disconnect());

  test('ping, memory, slowlog and write probe read real state', async () => {
    expect(await run(acts.redisPing, { target: 'alfred' })).toMatchObject({ ok: true, reply: 'PONG' });
    const mem = await run(acts.redisMemory, { target: 'alfred' });
    expect(mem.maxmemoryBytes).toBe(64 * 1024 * 1024);
    expect(mem.usedBytes).toBeGreaterThan(0);
    expect(await run(acts.redisWriteProbe, { target: 'alfred' })).toEqual({ ok: true });
    expect(Array.isArray((await run(acts.redisSlowlog, { target: 'alfred' })).entries)).toBe(true);
  });

  test('unlinks keys by pattern in batches, only inside the configured cache pattern', async () => {
    const pipeline = r.pipeline();
    for (let i = 0; i < 250; i++) pipeline.set(`alfred:cache:acttest:${i}`, 'v');
    pipeline.set('alfred:session:acttest', 'keep');
    await pipeline.exec();
    expect((await run(acts.countKeys, { target: 'alfred', pattern: 'alfred:cache:acttest:*' })).count).toBe(250);
    const res = await run(acts.unlinkByPattern, { target: 'alfred', pattern: 'alfred:cache:acttest:*' });
    expect(res).toEqual({ deleted: 250, done: true });
    expect(await r.get('alfred:session:acttest')).toBe('keep');
    await r.del('alfred:session:acttest');
    await expectPermanent(run(acts.unlinkByPattern, { target: 'alfred', pattern: '*' }), ErrorType.Refused, /outside the configured cache pattern/);
    await expectPermanent(run(acts.unlinkByPattern, { target: 'alfred', pattern: 'alfred:*' }), ErrorType.Refused, /refusing to delete/);
  });

  test('raising maxmemory never lowers it', async () => {
    const res = await run(acts.raiseMaxmemory, { target: 'alfred', bytes: 1024 });
    expect(res.performed).toBe(false);
    await expectPermanent(run(acts.raiseMaxmemory, { target: 'alfred', bytes: -1 }), ErrorType.BadInput, /positive/);
  });
});

describe('postgres', () => {
  test('SELECT 1, reachability and connection counts', async () => {
    expect((await run(acts.pgPing, { target: 'alfred' })).ok).toBe(true);
    expect(await run(acts.pgReachable, { target: 'alfred' })).toEqual({ reachable: true, method: 'pg_isready' });
    const conns = await run(acts.pgConnections, { target: 'alfred' });
    expect(conns.max).toBe(60);
    expect(conns.total).toBeGreaterThan(0);
  });

  test('finds a long query in pg_stat_activity and terminates it', async () => {
    // The application's own long query: the engine reads pg_stat_activity as alfred, which sees its own role's sessions.
    const victim = drillPg(undefined, 'alfred');
    victim.on('error', () => undefined);
    await victim.connect();
    const sleeping = victim.query('SELECT pg_sleep(60)').catch((err: Error) => err);
    await new Promise((r) => setTimeout(r, 6000));
    const long = await run(acts.longQueries, { target: 'alfred', minSeconds: 5 });
    expect(long.some((q) => /pg_sleep/.test(q.query))).toBe(true);
    const res = await run(acts.terminateLongQueries, { target: 'alfred', minSeconds: 5 });
    expect(res.terminated.length).toBeGreaterThan(0);
    expect(String(await sleeping)).toMatch(/terminat/);
    expect((await run(acts.longQueries, { target: 'alfred', minSeconds: 5 })).some((q) => /pg_sleep/.test(q.query))).toBe(false);
    await victim.end().catch(() => undefined);
    await expectPermanent(run(acts.terminateLongQueries, { target: 'alfred', minSeconds: 1 }), ErrorType.Refused, /younger than 5 s/);
  });
});

describe('http', () => {
  test('health and metrics from the real api', async () => {
    const h = await run(acts.httpHealth, { target: 'alfred' });
    expect(h).toMatchObject({ ok: true, status: 200 });
    expect(h.body).toMatchObject({ database: 'healthy', redis: 'healthy' });
    const m = await run(acts.httpMetrics, { target: 'alfred', prefixes: ['alfred_db_pool_'] });
    expect(m.available).toBe(true);
    expect(m.values.alfred_db_pool_max).toBeGreaterThan(0);
  });

  test('admin calls carry the key; a 4xx is permanent; non-API paths are refused', async () => {
    const s = await run(acts.adminRequest, { target: 'alfred', method: 'GET', path: '/v1/governance/settings' });
    expect(s.status).toBe(200);
    await expectPermanent(run(acts.adminRequest, { target: 'alfred', method: 'GET', path: '/etc/passwd' }), ErrorType.BadInput, /not an API path/);
    const wrongKey = createActivities({
      config,
      docker,
      logger: pino({ level: 'silent' }),
      secrets: { adminKey: () => 'wrong-key', pgPassword: () => undefined },
    });
    await expectPermanent(run(wrongKey.adminRequest, { target: 'alfred', method: 'GET', path: '/v1/governance/settings' }), ErrorType.HttpClientError, /answered 401/);
  });
});

describe('alembic (seed 002: alembic -c src/backend/config/alembic.ini ...)', () => {
  test('current, heads and history in the api container: the good release at its own head', async () => {
    const st = await run(acts.alembicStatus, { target: 'alfred' });
    expect(st).toMatchObject({ available: true, current: '0003', known: true, head: '0003', component: 'api' });
    expect(st.history.map((r) => [r.down, r.revision])).toEqual([
      ['0002', '0003'],
      ['0001', '0002'],
      [null, '0001'],
    ]);
  });

  test('what another release ships comes from a one-off container of its image, left behind by nobody', async () => {
    const before = (await docker.listContainers({ all: true })).length;
    expect(await run(acts.releaseMigrationHead, { target: 'alfred', tag: '1.0.0' })).toEqual({
      available: true,
      image: 'localhost/alfred-api:1.0.0',
      head: '0002',
    });
    expect(await run(acts.releaseMigrationHead, { target: 'alfred', tag: '1.2.0-bad' })).toMatchObject({ head: '0004' });
    const missing = await run(acts.releaseMigrationHead, { target: 'alfred', tag: '9.9.9' });
    expect(missing).toMatchObject({ available: false, image: 'localhost/alfred-api:9.9.9', error: expect.stringMatching(/9\.9\.9/) });
    expect((await docker.listContainers({ all: true })).length).toBe(before);
  });

  test('a downgrade runs only while the database is at the revision named: otherwise nothing is reverted', async () => {
    const out = await run(acts.alembicDowngrade, { target: 'alfred', tag: '1.1.0', expect: '0004' });
    expect(out).toEqual({ performed: false, current: '0003', detail: 'the database is at 0003, not 0004: nothing reverted' });
    expect((await run(acts.alembicStatus, { target: 'alfred' })).current).toBe('0003');
  });

  test('a migration command the container does not have is a finding that names the setting', async () => {
    const alfred = config.targets.alfred!;
    const odd = {
      ...config,
      targets: {
        ...config.targets,
        alfred: { ...alfred, postgres: { ...alfred.postgres!, migrations: { ...alfred.postgres!.migrations!, command: ['no-such-alembic'] } } },
      },
    };
    const other = createActivities({ config: odd, docker, logger: pino({ level: 'silent' }) });
    const st = await run(other.alembicStatus, { target: 'alfred' });
    expect(st).toMatchObject({ available: false, error: expect.stringMatching(/no-such-alembic cannot run in the api container \(exit 12[67]\).*postgres\.migrations\.command/) });
  });
});
