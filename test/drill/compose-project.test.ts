/**
 * The replica is the Docker Compose project "alfred" (drill/docker-compose.yml), run by Docker Compose
 * v2 against Podman's Docker API: the seeds' `docker compose ...` commands work as written, and the
 * engine finds its containers by compose's own labels, never by labels of ours.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import Docker from 'dockerode';
import pino from 'pino';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createActivities } from '../../src/activities';
import { ErrorType } from '../../src/activities/engine/errors';
import { withPgClient } from '../../src/activities/postgres/postgres';
import type { EngineConfig } from '../../src/config';
import { REPO, testConfig, waitUntil } from '../helpers/engine';
import { health } from '../helpers/drill';
import { applicationFailure } from '../helpers/failure';

jest.setTimeout(120_000);

const run = promisify(execFile);
const DRILL = path.join(REPO, 'drill');
const config = testConfig();
const docker = new Docker({ socketPath: config.docker.socketPath });
const env = new MockActivityEnvironment();
const act = <A extends unknown[], R>(fn: (...a: A) => Promise<R>, ...args: A): Promise<R> => env.run(fn, ...args);

/** `docker compose ARGS` from drill/, as an operator types it there (DOCKER_HOST names Podman's socket). */
async function compose(...args: string[]): Promise<{ code: number; out: string }> {
  try {
    const r = await run('docker', ['compose', ...args], {
      cwd: DRILL,
      env: { ...process.env, DOCKER_HOST: `unix://${config.docker.socketPath}` },
      maxBuffer: 8 * 1024 * 1024,
    });
    return { code: 0, out: r.stdout + r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

/** The seed's shell line, split as the shell would (the quoted SQL stays one argument). */
const seedCommand = (line: string): string[] =>
  (line.match(/"[^"]*"|\S+/g) ?? []).map((w) => (w.startsWith('"') ? w.slice(1, -1) : w)).slice(2); // drop "docker compose"

function activitiesWith(configure: (t: EngineConfig['targets'][string]) => void) {
  const cfg = testConfig();
  const t = structuredClone(cfg.targets.alfred!);
  configure(t);
  cfg.targets.other = t;
  return createActivities({ config: cfg, docker, logger: pino({ level: 'silent' }) });
}

describe('the replica as a compose project', () => {
  test('docker compose ps lists the seeds services api, worker, db, redis and proxy, each running', async () => {
    const ps = await compose('ps', '--format', 'json');
    expect(ps.code).toBe(0);
    const rows = ps.out
      .trim()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { Service: string; State: string; Labels: string });
    expect(rows.map((r) => r.Service).sort()).toEqual(['api', 'db', 'proxy', 'redis', 'worker']);
    for (const r of rows) expect(r.State).toBe('running');
    const api = await docker.listContainers({ filters: { label: ['com.docker.compose.project=alfred', 'com.docker.compose.service=api'] } });
    expect(api).toHaveLength(1);
    expect(api[0]!.Labels['com.docker.compose.project']).toBe('alfred');
  });

  // Each line as the seeds write it (seed 000 "Commands for on-call to run", seed 002 triage steps).
  test.each([
    ['docker compose -f docker-compose.yml exec db psql -U alfred -d alfred -c "select id, sender_id, recipient_id, amount, status, created_at from token_transfers order by created_at desc limit 20;"', /sender_id \| recipient_id/],
    ['docker compose exec db pg_isready -U alfred', /accepting connections/],
    ['docker compose exec db df -h /var/lib/postgresql/data', /\/var\/lib\/postgresql\/data/],
    ['docker compose exec db psql -U alfred -d alfred -c "SELECT count(*) FROM users;"', /\(1 row\)/],
    ['docker compose exec db psql -U alfred -d alfred -c "SELECT count(*) FROM pg_stat_activity;"', /\(1 row\)/],
    ['docker compose exec redis redis-cli ping', /^PONG$/m],
    ['docker compose -f docker-compose.yml exec redis redis-cli LLEN rq:queue:default', /^\d+$/m],
    ['docker compose exec redis redis-cli config get maxmemory', /^maxmemory$/m],
  ])('%s', async (line, expected) => {
    const r = await compose(...seedCommand(line));
    expect(r).toMatchObject({ code: 0 });
    expect(r.out).toMatch(expected);
  });

  test('the latest dump lies where the seeds restore it from, readable as alfred', async () => {
    const r = await compose('exec', 'db', 'pg_restore', '--list', '/backups/alfred-latest.dump');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/TABLE public users alfred/);
  });

  test('docker compose logs api shows the api log', async () => {
    const r = await compose('logs', 'api', '--since', '60m');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/path=\/health/);
  });

  test('docker compose restart api (seed 002, INC-01) restarts the api container, which answers again', async () => {
    const before = await docker.getContainer('alfred-api').inspect();
    const r = await compose(...seedCommand('docker compose restart api'));
    expect(r.code).toBe(0);
    const after = await docker.getContainer('alfred-api').inspect();
    expect(after.Id).toBe(before.Id);
    expect(Date.parse(after.State.StartedAt)).toBeGreaterThan(Date.parse(before.State.StartedAt));
    await waitUntil('api healthy', async () => (await health())?.status === 'ok', 30_000);
  });

  test('the api container has the seeds python, alembic and the billing reset entry point', async () => {
    const current = await compose(...seedCommand('docker compose exec api alembic -c src/backend/config/alembic.ini current'));
    expect(current).toMatchObject({ code: 0 });
    expect(current.out).toMatch(/^0003\b/m);
    const reset = await compose(
      'exec',
      'api',
      'python',
      '-c',
      'from app.wallet_reset import wallet_reset_cron; import asyncio; print(asyncio.run(wallet_reset_cron()))',
    );
    expect(reset).toMatchObject({ code: 0 });
    // The seed's manual reset runs and names the period (a period already reset is left as it is).
    expect(reset.out).toMatch(/'period_start': '\d{4}-\d{2}-01'/);
  });
});

describe('the engine finds containers by compose project and service', () => {
  test('a component is the service of the same name in the configured project', async () => {
    const acts = createActivities({ config, docker, logger: pino({ level: 'silent' }) });
    const db = await act(acts.containerState, { target: 'alfred', component: 'db' });
    expect(db).toMatchObject({ name: 'alfred-db', running: true });
    const ready = await act(acts.execInContainer, { target: 'alfred', component: 'db', cmd: ['pg_isready', '-U', 'alfred'] });
    expect(ready.exitCode).toBe(0);
  });

  test('a project that does not exist is refused, naming the setting that fixes it', async () => {
    const acts = activitiesWith((t) => (t.containers.project = 'not-alfred'));
    const err = await applicationFailure(act(acts.containerState, { target: 'other', component: 'api' }));
    expect(err.nonRetryable).toBe(true);
    expect(err.type).toBe(ErrorType.UnknownContainer);
    expect(err.message).toMatch(/com\.docker\.compose\.project=not-alfred/);
    expect(err.message).toMatch(/targets\.other\.containers\.project/);
  });

  test('a service named otherwise is refused with the services the project has and the mapping to set', async () => {
    const acts = activitiesWith((t) => (t.containers.services = { api: 'gateway' }));
    const err = await applicationFailure(act(acts.containerState, { target: 'other', component: 'api' }));
    expect(err.type).toBe(ErrorType.UnknownContainer);
    expect(err.message).toMatch(/services api, db, proxy, redis, worker but none is "gateway"/);
    expect(err.message).toMatch(/targets\.other\.containers\.services\.api/);
  });

  test('mapping a component to its service name finds it', async () => {
    const acts = activitiesWith((t) => {
      t.containers.services = { cache: 'redis' };
      t.components = [...t.components, 'cache'];
    });
    const state = await act(acts.containerState, { target: 'other', component: 'cache' });
    expect(state.name).toBe('alfred-redis');
  });

  test('a command the container does not have is reported with its exit code, not a crash', async () => {
    const acts = createActivities({ config, docker, logger: pino({ level: 'silent' }) });
    const r = await act(acts.execInContainer, { target: 'alfred', component: 'redis', cmd: ['no-such-command-here'] });
    expect(r.exitCode).not.toBe(0);
  });
});

describe('a container the engine recreates stays the compose service', () => {
  test('after a recreate on another tag, docker compose still lists it as the service, and up does not duplicate it', async () => {
    const acts = createActivities({ config, docker, logger: pino({ level: 'silent' }) });
    const ref = { target: 'alfred', component: 'worker' };
    const before = await act(acts.containerState, ref);
    expect(before.tag).toBe('1.1.0');
    try {
      const r = await act(acts.recreateContainer, { ...ref, tag: '1.0.0' });
      expect(r.performed).toBe(true);
      const ps = await compose('ps', 'worker', '--format', '{{.Service}} {{.Name}} {{.Image}}');
      expect(ps.out.trim()).toBe('worker alfred-worker localhost/alfred-worker:1.0.0');
      // `docker compose up -d` recognises the container as the service's own: no second worker, no orphan.
      const up = await compose('up', '-d', '--no-recreate', 'worker');
      expect(up.code).toBe(0);
      const all = await docker.listContainers({ all: true, filters: { label: ['com.docker.compose.project=alfred', 'com.docker.compose.service=worker'] } });
      expect(all.map((c) => c.Image)).toEqual(['localhost/alfred-worker:1.0.0']);
    } finally {
      await act(acts.recreateContainer, { ...ref, tag: '1.1.0' });
    }
    expect((await act(acts.containerState, ref)).tag).toBe('1.1.0');
  });
});

describe('PostgreSQL through psql in the db container (postgres.via: exec)', () => {
  const acts = createActivities({ config, docker, logger: pino({ level: 'silent' }) });

  test('the engine asks as alfred, in its own session, with the seeds pg_isready', async () => {
    expect(config.targets.alfred!.postgres).toMatchObject({ via: 'exec', execUser: 'alfred' });
    expect(await act(acts.pgPing, { target: 'alfred' })).toMatchObject({ ok: true });
    expect(await act(acts.pgReachable, { target: 'alfred' })).toMatchObject({ reachable: true, method: 'pg_isready' });
    const conns = await act(acts.pgConnections, { target: 'alfred' });
    expect(conns.total).toBeGreaterThan(0);
    expect(conns.max).toBe(60);
  });

  test('pg_isready run where no server answers reports "not reachable" in its own words', async () => {
    const bad = activitiesWith((t) => {
      t.postgres = { ...t.postgres!, component: 'redis' };
    });
    const r = await act(bad.pgReachable, { target: 'other' });
    expect(r).toMatchObject({ reachable: false, method: 'pg_isready' });
    expect(r.error).toMatch(/pg_isready -U alfred: .*no response/);
  });

  test('parameters travel as literals: quotes, arrays, nulls and a trailing comment come back as sent, typed as node-postgres types them', async () => {
    const deps = { config, docker, logger: pino({ level: 'silent' }) };
    const tricky = "O'Brien\\'); DROP TABLE users; --";
    const r = await withPgClient(deps, 'alfred', (c) =>
      c.query<{ a: string; b: number[]; n: string | null; big: string; at: Date; j: { k: string } }>(
        "SELECT $1::text AS a, $2::int[] AS b, $3::text AS n, 9007199254740993::bigint AS big, now() AS at, $4::jsonb AS j -- trailing comment",
        [tricky, [1, 2, 3], null, { k: 'v"w' }],
      ),
    );
    expect(r.rows).toHaveLength(1);
    expect(r.rows[0]).toMatchObject({ a: tricky, b: [1, 2, 3], n: null, big: '9007199254740993', j: { k: 'v"w' } });
    expect(r.rows[0]!.at).toBeInstanceOf(Date);
    // The table the literal tried to drop is still there.
    expect((await withPgClient(deps, 'alfred', (c) => c.query('SELECT count(*) AS n FROM users'))).rows[0]).toMatchObject({ n: expect.stringMatching(/^\d+$/) });
  });

  test('errors carry their SQLSTATE, and a column the target lacks names the setting that fixes it', async () => {
    const deps = { config, docker, logger: pino({ level: 'silent' }) };
    await expect(withPgClient(deps, 'alfred', (c) => c.query('SELECT no_such_column FROM users'))).rejects.toMatchObject({
      code: '42703',
      message: 'column "no_such_column" does not exist',
    });
    const renamed = activitiesWith((t) => {
      t.postgres = { ...t.postgres!, schema: { ...t.postgres!.schema, users: { ...t.postgres!.schema.users, createdAt: 'registered_at' } } };
    });
    const f = await applicationFailure(act(renamed.lookupUser, { target: 'other', email: 'admin@alfred.local' }));
    expect(f.type).toBe(ErrorType.NotConfigured);
    expect(f.nonRetryable).toBe(true);
    expect(f.message).toMatch(/^column "registered_at" does not exist on target "other".*targets\.other\.postgres\.schema\.users\.createdAt/);
  });

  test('via: tcp still connects over the network as the configured user', async () => {
    const tcp = activitiesWith((t) => {
      t.postgres = {
        ...t.postgres!,
        via: 'tcp',
        host: '127.0.0.1',
        port: Number(process.env.DRILL_DB_PORT ?? 55432),
        user: 'postgres',
        password: { file: path.join(REPO, '.stack/secrets/postgres-password') },
      };
    });
    expect(await act(tcp.pgPing, { target: 'other' })).toMatchObject({ ok: true });
    expect(await act(tcp.pgReachable, { target: 'other' })).toMatchObject({ reachable: true, method: 'tcp' });
  });
});

describe('Redis through redis-cli in the redis container (redis.via: exec)', () => {
  const acts = createActivities({ config, docker, logger: pino({ level: 'silent' }) });

  test('the engine asks as the seeds do: ping, info memory, config get maxmemory, slowlog get 10, --scan', async () => {
    expect(config.targets.alfred!.redis).toMatchObject({ via: 'exec', component: 'redis' });
    expect(await act(acts.redisPing, { target: 'alfred' })).toMatchObject({ ok: true, reply: 'PONG' });
    const mem = await act(acts.redisMemory, { target: 'alfred' });
    expect(mem.maxmemoryBytes).toBe(64 * 1024 * 1024);
    expect(mem.usedBytes).toBeGreaterThan(0);
    // The same answer as the seed's own command from drill/.
    const seed = await compose('exec', '-T', 'redis', 'redis-cli', 'config', 'get', 'maxmemory');
    expect(seed.out.trim().split('\n')).toEqual(['maxmemory', String(mem.maxmemoryBytes)]);
    expect(Array.isArray((await act(acts.redisSlowlog, { target: 'alfred', count: 10 })).entries)).toBe(true);
    expect(await act(acts.redisWriteProbe, { target: 'alfred' })).toEqual({ ok: true });
    expect((await act(acts.countKeys, { target: 'alfred', pattern: 'remediation:probe' })).count).toBe(1);
  });

  test('a component without a container, or a client the container lacks, is refused naming the setting', async () => {
    const noContainer = activitiesWith((t) => {
      t.components = [...t.components, 'cache'];
      t.redis = { ...t.redis!, component: 'cache' };
    });
    const f = await applicationFailure(act(noContainer.redisPing, { target: 'other' }));
    expect(f.type).toBe(ErrorType.UnknownContainer);
    expect(f.message).toMatch(/targets\.other\.redis\.component/);

    const noCli = activitiesWith((t) => {
      t.redis = { ...t.redis!, cli: ['/usr/local/bin/no-such-redis-cli'] };
    });
    const g = await applicationFailure(act(noCli.redisMemory, { target: 'other' }));
    expect(g.type).toBe(ErrorType.NotConfigured);
    expect(g.message).toMatch(/could not run in the redis container of other/);
    expect(g.message).toMatch(/targets\.other\.redis\.cli/);
  });

  test('via: tcp still connects over the network', async () => {
    const tcp = activitiesWith((t) => {
      t.redis = { ...t.redis!, via: 'tcp', host: '127.0.0.1', port: Number(process.env.DRILL_REDIS_PORT ?? 6379) };
    });
    expect(await act(tcp.redisPing, { target: 'other' })).toMatchObject({ ok: true, reply: 'PONG' });
    expect((await act(tcp.redisMemory, { target: 'other' })).maxmemoryBytes).toBe(64 * 1024 * 1024);
  });
});
