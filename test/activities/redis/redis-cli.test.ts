/**
 * `redis.via: exec`: the activities' Redis commands through redis-cli, against a real redis-server
 * of this test's own (a random port on 127.0.0.1, no persistence). redis-cli runs here instead of in
 * the redis container: the spawn given to the activities starts the same argv locally with `-p <port>`
 * appended. The Docker exec transport is tested on the replica (test/drill/compose-project.test.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { Duplex, PassThrough } from 'node:stream';
import net from 'node:net';
import Docker from 'dockerode';
import Redis from 'ioredis';
import pino from 'pino';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createActivities } from '../../../src/activities';
import type { ActivityDeps } from '../../../src/activities/engine/deps';
import { ErrorType } from '../../../src/activities/engine/errors';
import { withRedisClient } from '../../../src/activities/redis/redis';
import { RedisProtocolError, RedisReplyError, RedisUnreachableError } from '../../../src/activities/redis/redis-client';
import {
  RedisCliSession,
  commandLine,
  dockerExecSpawn,
  parseJsonReply,
  quoteArg,
  unrepr,
  type CliProcess,
  type CliSpawn,
} from '../../../src/activities/redis/redis-cli';
import { ConfigSchema } from '../../../src/config';
import { applicationFailure } from '../../helpers/failure';

jest.setTimeout(60_000);

const env = new MockActivityEnvironment();
const act = <A extends unknown[], R>(fn: (...a: A) => Promise<R>, ...args: A): Promise<R> => env.run(fn, ...args);

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

interface Server {
  port: number;
  proc: ChildProcess;
}

async function startServer(extra: string[] = []): Promise<Server> {
  const port = await freePort();
  const proc = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...extra],
    {
      stdio: 'ignore',
    },
  );
  const deadline = Date.now() + 10_000;
  for (;;) {
    const up = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (up) return { port, proc };
    if (Date.now() > deadline) throw new Error(`redis-server on ${port} did not start`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Runs argv here as `docker exec` runs it in a container: through a shell's exec, so a missing
 * binary ends with exit 127 and the shell's "not found", with `-p <port>` appended.
 */
function localSpawn(port: number, seen?: { argv: string[]; env: Record<string, string> }[]): CliSpawn {
  return async (argv, extraEnv) => {
    seen?.push({ argv, env: extraEnv });
    const child = spawn('sh', ['-c', 'exec "$@"', 'sh', ...argv, '-p', String(port)], {
      env: { ...process.env, ...extraEnv },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    const proc: CliProcess = {
      stdin: child.stdin,
      stdout: child.stdout,
      stderr: child.stderr,
      exitCode: () => exited,
      kill: () => {
        child.kill('SIGKILL');
      },
    };
    return proc;
  };
}

function depsFor(
  port: number,
  redis: Record<string, unknown> = {},
  seen?: { argv: string[]; env: Record<string, string> }[],
): ActivityDeps {
  const config = ConfigSchema.parse({
    docker: { socketPath: '/nonexistent/docker.sock' },
    targets: {
      local: {
        baseUrl: 'http://127.0.0.1:9',
        containers: { project: 'local' },
        components: ['redis', 'worker'],
        redis: { via: 'exec', ...redis },
        queue: { key: 'rq:queue:default', component: 'worker' },
        cache: { keyPattern: 'alfred:cache:*', batchSize: 100 },
      },
    },
    policy: { approvers: ['alice'], tiers: [{ name: 't1', waitMs: 1000 }] },
  });
  return {
    config,
    docker: new Docker({ socketPath: '/nonexistent/docker.sock' }),
    logger: pino({ level: 'silent' }),
    redisCliSpawn: localSpawn(port, seen),
  };
}

let plain: Server;
let locked: Server;
let direct: Redis;

beforeAll(async () => {
  [plain, locked] = await Promise.all([startServer(), startServer(['--requirepass', 's3cret pass'])]);
  direct = new Redis({ port: plain.port, lazyConnect: true });
  await direct.connect();
});

afterAll(async () => {
  direct?.disconnect();
  for (const s of [plain, locked]) s?.proc.kill('SIGKILL');
});

beforeEach(async () => {
  await direct.flushall();
  await direct.config('SET', 'maxmemory', '0');
});

describe('what redis-cli reads and prints', () => {
  test('arguments are double-quoted with C escapes, every byte as it is', () => {
    expect(quoteArg('a b"c\\d\n')).toBe('"a b\\"c\\\\d\\x0a"');
    expect(quoteArg(Buffer.from([0, 0xff, 0x41]))).toBe('"\\x00\\xffA"');
    expect(quoteArg('é')).toBe('"\\xc3\\xa9"');
    expect(quoteArg(42)).toBe('"42"');
    expect(commandLine(['GET', 'k'])).toBe('GET "k"');
    // redis-cli's own prompt commands are never sent as if they were Redis'.
    expect(() => commandLine(['QUIT'])).toThrow(RedisProtocolError);
    expect(() => commandLine(['GET k'])).toThrow(RedisProtocolError);
  });

  test('replies: JSON lines with redis-cli quoting inside strings, errors as error:"..."', () => {
    expect(unrepr('a\\"b\\\\c\\n\\xff').equals(Buffer.from([0x61, 0x22, 0x62, 0x5c, 0x63, 0x0a, 0xff]))).toBe(true);
    expect(parseJsonReply('["0",["k1","a\\\\x00b"]]')).toEqual(['0', ['k1', 'a\u0000b']]);
    expect(parseJsonReply('null')).toBeNull();
    expect(parseJsonReply('-12')).toBe(-12);
    const err = parseJsonReply('error:"WRONGTYPE Operation against a key"');
    expect(err).toBeInstanceOf(RedisReplyError);
    expect((err as RedisReplyError).message).toBe('WRONGTYPE Operation against a key');
    const nested = parseJsonReply('[1,error:"E1 boom"]') as unknown[];
    expect(nested[1]).toBeInstanceOf(RedisReplyError);
    // Anything else is an error, never an empty result.
    for (const bad of ['', '[', '["a",]', '{"a":1}', 'PONG', '"a" "b"', 'error:E']) {
      expect(() => parseJsonReply(bad)).toThrow(RedisProtocolError);
    }
  });
});

describe('values and keys round-trip through redis-cli', () => {
  const tricky = [
    'with spaces and "double" and \'single\' quotes',
    'line one\nline two\r\nand a tab\t',
    'back\\slash \\x41 \\n literally',
    'unicode é € 😀',
    'control \u0000\u0001\u0007\u001b bytes',
    '',
    ' leading and trailing ',
  ];

  test('strings written through redis-cli are read back by a connection, and the other way round', async () => {
    const deps = depsFor(plain.port);
    await withRedisClient(deps, 'local', async (r) => {
      for (const [i, v] of tricky.entries()) await r.set(`k:${i} ${v}`, v);
    });
    for (const [i, v] of tricky.entries()) expect(await direct.get(`k:${i} ${v}`)).toBe(v);

    for (const [i, v] of tricky.entries()) await direct.set(`d:${i}`, v);
    await direct.hset('h "x"', { 'f 1': tricky[0] as string, 'f\n2': tricky[1] as string });
    await withRedisClient(deps, 'local', async (r) => {
      expect(await r.mget(tricky.map((_, i) => `d:${i}`))).toEqual(tricky);
      expect(await r.mget(['d:0', 'missing'])).toEqual([tricky[0], null]);
      expect(await r.hmget('h "x"', ['f 1', 'f\n2', 'nope'])).toEqual([tricky[0], tricky[1], null]);
      expect(await r.hgetEach(['h "x"', 'nothing'], 'f 1')).toEqual([tricky[0], null]);
      const keys = await r.scan('0', { match: 'k:*', count: 1000 });
      expect(keys.cursor).toBe('0');
      expect(keys.keys.sort()).toEqual(tricky.map((v, i) => `k:${i} ${v}`).sort());
    });
  });

  test('binary values: every byte arrives; bytes that are not UTF-8 read as a connection reads them', async () => {
    const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const deps = depsFor(plain.port);
    await withRedisClient(deps, 'local', (r) => r.set(Buffer.from('bin:\xff', 'latin1'), all));
    expect((await direct.getBuffer(Buffer.from('bin:\xff', 'latin1')))?.equals(all)).toBe(true);
    await direct.set('bin2', all);
    const viaCli = await withRedisClient(deps, 'local', (r) => r.call('GET', 'bin2'));
    expect(viaCli).toBe(await direct.get('bin2'));
  });

  test('lists and RQ job hashes: LLEN, LINDEX, LRANGE, HMGET', async () => {
    await direct.rpush('rq:queue:default', 'job-1', 'job "2"');
    await direct.hset('rq:job:job-1', {
      enqueued_at: '2026-12-01T07:48:46.447400Z',
      description: 'app.jobs.apply_transfer(7)',
    });
    await withRedisClient(depsFor(plain.port), 'local', async (r) => {
      expect(await r.llen('rq:queue:default')).toBe(2);
      expect(await r.llen('nothing')).toBe(0);
      expect(await r.lindex('rq:queue:default', 0)).toBe('job-1');
      expect(await r.lindex('nothing', 0)).toBeNull();
      expect(await r.lrange('rq:queue:default', 0, -1)).toEqual(['job-1', 'job "2"']);
      expect(await r.hmget('rq:job:job-1', ['enqueued_at', 'created_at'])).toEqual([
        '2026-12-01T07:48:46.447400Z',
        null,
      ]);
    });
  });
});

describe('activities over redis-cli', () => {
  test('SCAN over thousands of keys costs one redis-cli per activity, not one per key', async () => {
    const pipe = direct.pipeline();
    for (let i = 0; i < 5000; i++) pipe.set(`alfred:cache:scan:${i}`, `v${i}`);
    pipe.set('alfred:cache:scan:with space "q"', 'v');
    pipe.set('alfred:session:keep', 'keep');
    await pipe.exec();
    const seen: { argv: string[]; env: Record<string, string> }[] = [];
    const acts = createActivities(depsFor(plain.port, {}, seen));

    expect(await act(acts.countKeys, { target: 'local', pattern: 'alfred:cache:scan:*' })).toEqual({
      count: 5001,
      capped: false,
    });
    expect(seen).toHaveLength(1);
    expect(seen[0]?.argv).toEqual(['redis-cli', '-2', '--quoted-json']);

    expect(await act(acts.unlinkByPattern, { target: 'local', pattern: 'alfred:cache:scan:*' })).toEqual({
      deleted: 5001,
      done: true,
    });
    expect(seen).toHaveLength(2);
    expect(await direct.dbsize()).toBe(1);
    expect(await direct.get('alfred:session:keep')).toBe('keep');
  });

  test('PING, INFO memory, CONFIG GET maxmemory, SLOWLOG, CONFIG SET, the write probe', async () => {
    await direct.config('SET', 'maxmemory', String(64 * 1024 * 1024));
    await direct.config('SET', 'slowlog-log-slower-than', '0');
    await direct.set('some', 'thing');
    const acts = createActivities(depsFor(plain.port));

    const ping = await act(acts.redisPing, { target: 'local' });
    expect(ping).toMatchObject({ ok: true, reply: 'PONG' });
    expect(ping.latencyMs).toBeLessThan(1000);

    const mem = await act(acts.redisMemory, { target: 'local' });
    const info = await direct.info('memory');
    const used = Number(/^used_memory:(\d+)/m.exec(info)?.[1]);
    expect(mem.maxmemoryBytes).toBe(64 * 1024 * 1024);
    expect(mem.usedBytes).toBeGreaterThan(used / 2);
    expect(mem.usedBytes).toBeLessThan(used * 2);
    expect(mem.peakBytes).toBeGreaterThanOrEqual(mem.usedBytes / 2);
    expect(mem.policy).toBe('noeviction');

    const slow = await act(acts.redisSlowlog, { target: 'local', count: 10 });
    expect(slow.entries.length).toBeGreaterThan(0);
    expect(slow.entries[0]).toEqual({
      id: expect.any(Number),
      micros: expect.any(Number),
      command: expect.stringMatching(/^\w+ \(\d+ args\)$/),
    });
    // Only command names and counts: no argument value leaves.
    expect(JSON.stringify(slow)).not.toContain('thing');
    await direct.config('SET', 'slowlog-log-slower-than', '10000');

    expect(await act(acts.raiseMaxmemory, { target: 'local', bytes: 96 * 1024 * 1024 })).toMatchObject({
      performed: true,
    });
    expect(await direct.config('GET', 'maxmemory')).toEqual(['maxmemory', String(96 * 1024 * 1024)]);
    expect(await act(acts.raiseMaxmemory, { target: 'local', bytes: 1024 })).toMatchObject({ performed: false });

    expect(await act(acts.redisWriteProbe, { target: 'local' })).toEqual({ ok: true });
    expect(await direct.ttl('remediation:probe')).toBeGreaterThan(0);
  });

  test('a Redis at maxmemory answers OOM: the write probe reports it, the memory reading shows it', async () => {
    await direct.config('SET', 'maxmemory-policy', 'noeviction');
    await direct.config('SET', 'maxmemory', '1');
    const acts = createActivities(depsFor(plain.port));
    const probe = await act(acts.redisWriteProbe, { target: 'local' });
    expect(probe.ok).toBe(false);
    expect(probe.error).toMatch(/^OOM command not allowed/);
    expect((await act(acts.redisMemory, { target: 'local' })).usedPct).toBeGreaterThan(100);
    await direct.config('SET', 'maxmemory', '0');
  });

  test('queue statistics and where jobs wait: INFO clients, and one round trip for a thousand HGETs', async () => {
    const pipe = direct.pipeline();
    for (let i = 0; i < 1500; i++) {
      pipe.rpush('rq:queue:default', `j${i}`);
      pipe.hset(`rq:job:j${i}`, {
        description: `app.jobs.apply_transfer(${i})`,
        enqueued_at: new Date(Date.now() - 60_000).toISOString(),
      });
    }
    await pipe.exec();
    const acts = createActivities(depsFor(plain.port));
    const stats = await act(acts.queueStats, { target: 'local', sampleMs: 0 });
    expect(stats).toMatchObject({
      ok: true,
      depth: 1500,
      depthAfter: 1500,
      oldestTaken: false,
      oldest: { id: 'j0', kind: 'app.jobs.apply_transfer' },
    });
    expect(stats.oldest?.ageSeconds).toBeGreaterThanOrEqual(59);
    expect(stats.connectedClients).toBeGreaterThanOrEqual(2);
    expect(stats.blockedClients).toBe(0);

    const state = await act(acts.jobQueueState, { target: 'local', transferIds: ['3', '1200', '99999'], sampleMs: 0 });
    expect(state).toMatchObject({ length: 1500, lengthAfter: 1500, scanned: 1500, ahead: { '3': 3, '1200': 1200 } });
  });

  test('cached entries are read in batches of MGET', async () => {
    await direct.set(
      'alfred:cache:a',
      JSON.stringify({ prompt: 'What is 2+2?', response: 'It is 5, "trust me"\nreally' }),
    );
    await direct.set('alfred:cache:b', JSON.stringify({ prompt: 'What is 2+2?', response: '4' }));
    await direct.set('alfred:cache:c', 'not json');
    const acts = createActivities(depsFor(plain.port));
    const r = await act(acts.findSuspiciousCacheEntries, { target: 'local', threshold: 0.9 });
    expect(r).toMatchObject({ scanned: 3, suspicious: 1, example: { key: 'alfred:cache:a' } });
  });
});

describe('redis-cli and a connection (via: tcp) give the same answers', () => {
  test('the same commands, the same replies, errors included', async () => {
    await direct.rpush('list', 'a', 'b c', 'd"e');
    await direct.hset('hash', { f: 'v', 'g h': 'w\nx' });
    await direct.set('counter', '41');
    const commands: (string | number)[][] = [
      ['PING'],
      ['SET', 'same "k"', 'v a l\u0000ue'],
      ['GET', 'same "k"'],
      ['GET', 'missing'],
      ['MGET', 'same "k"', 'missing', 'counter'],
      ['INCR', 'counter'],
      ['LRANGE', 'list', 0, -1],
      ['HGETALL', 'hash'],
      ['TYPE', 'hash'],
      ['EXPIRE', 'counter', 60],
      ['CONFIG', 'GET', 'maxmemory'],
      ['SCAN', 0, 'MATCH', 'list', 'COUNT', 1000],
      ['EVAL', "return {1, 'two', {3, redis.error_reply('E nested')}, false}", 0],
      ['SLOWLOG', 'LEN'],
      ['INFO', 'keyspace'],
      ['INFO', 'no-such-section'],
      ['DEL', 'same "k"'],
    ];
    const replies = async (via: 'exec' | 'tcp') => {
      await direct.set('counter', '41');
      const deps = depsFor(plain.port, via === 'tcp' ? { via, host: '127.0.0.1', port: plain.port } : {});
      return withRedisClient(deps, 'local', (r) => r.batch(commands));
    };
    // INFO keyspace's avg_ttl is Redis's running estimate, sampled as keys expire: it may differ
    // between two calls a moment apart, so it is compared by shape.
    const steady = (rs: unknown[]) => rs.map((r) => (typeof r === 'string' ? r.replace(/avg_ttl=\d+/g, 'avg_ttl=<n>') : r));
    const viaCli = await replies('exec');
    const viaTcp = await replies('tcp');
    expect(steady(viaCli)).toEqual(steady(viaTcp));
    expect(viaCli[12]).toEqual([1, 'two', [3, new RedisReplyError('E nested')], null]);
    expect(viaCli[14]).toMatch(/^# Keyspace\r\ndb0:keys=\d+/);
    expect(viaCli[15]).toBe('');

    for (const via of ['exec', 'tcp'] as const) {
      const deps = depsFor(plain.port, via === 'tcp' ? { via, host: '127.0.0.1', port: plain.port } : {});
      const err = await withRedisClient(deps, 'local', (r) => r.llen('hash')).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RedisReplyError);
      expect((err as Error).message).toMatch(/^WRONGTYPE/);
    }
  });
});

describe('errors stay distinct', () => {
  test('Redis answering an error is a reply error, with the words Redis used', async () => {
    await direct.set('str', 'v');
    await withRedisClient(depsFor(plain.port), 'local', async (r) => {
      await expect(r.llen('str')).rejects.toThrow(RedisReplyError);
      await expect(r.llen('str')).rejects.toThrow(/^WRONGTYPE/);
      await expect(r.call('NOSUCHCOMMAND', 'x')).rejects.toThrow(/unknown command/);
    });
    // A failed command does not end the session: what follows is still answered.
    expect(
      await withRedisClient(depsFor(plain.port), 'local', async (r) => {
        await r.call('NOSUCHCOMMAND').catch(() => undefined);
        return r.ping();
      }),
    ).toBe('PONG');
  });

  test("an unreachable Redis is a finding of PING, in redis-cli's words", async () => {
    const closed = await freePort();
    const acts = createActivities(depsFor(closed));
    const ping = await act(acts.redisPing, { target: 'local' });
    expect(ping.ok).toBe(false);
    expect(ping.error).toMatch(
      /Redis unreachable from .*: Could not connect to Redis at 127\.0\.0\.1:\d+: Connection refused/,
    );
    await expect(withRedisClient(depsFor(closed), 'local', (r) => r.llen('x'))).rejects.toThrow(RedisUnreachableError);
    expect(await act(acts.queueStats, { target: 'local', sampleMs: 0 })).toMatchObject({
      ok: false,
      error: expect.stringMatching(/Could not connect/),
    });
  });

  test('a redis-cli that is not there is a configuration problem naming redis.cli, not "Redis is down"', async () => {
    const acts = createActivities(depsFor(plain.port, { cli: ['/usr/bin/no-such-redis-cli'] }));
    const f = await applicationFailure(act(acts.redisPing, { target: 'local' }));
    expect(f.type).toBe(ErrorType.NotConfigured);
    expect(f.message).toMatch(/no-such-redis-cli could not run in the redis container of local \(exit 127/);
    expect(f.message).toMatch(/targets\.local\.redis\.cli/);
    expect(f.message).toMatch(/targets\.local\.redis\.component/);
    const q = await applicationFailure(act(acts.queueStats, { target: 'local', sampleMs: 0 }));
    expect(q.type).toBe(ErrorType.NotConfigured);
  });

  test('a client without --quoted-json is refused with the version it needs', async () => {
    // A stand-in for an older redis-cli: it rejects the option as redis-cli 6 does.
    const cli = [
      'sh',
      '-c',
      'echo "Unrecognized option or bad number of args for: \'--quoted-json\'" >&2; exit 1',
      'redis-cli-6',
    ];
    const f = await applicationFailure(
      act(createActivities(depsFor(plain.port, { cli })).redisMemory, { target: 'local' }),
    );
    expect(f.type).toBe(ErrorType.NotConfigured);
    expect(f.message).toMatch(/redis-cli 7\.0 or newer/);
  });

  test('a reply that cannot be read is an error, never an empty result', async () => {
    // Answers every command with text that is no reply, and every marker as redis-cli would.
    const liar = [
      'sh',
      '-c',
      'while read -r l; do case "$l" in ECHO*) echo "${l#ECHO }";; *) echo "(empty array)";; esac; done',
      'liar',
    ];
    const acts = createActivities(depsFor(plain.port, { cli: liar }));
    await expect(act(acts.countKeys, { target: 'local', pattern: 'alfred:cache:*' })).rejects.toThrow(
      /SCAN: unparseable reply/,
    );
    const ping = await act(acts.redisPing, { target: 'local' });
    expect(ping).toMatchObject({ ok: false, error: expect.stringMatching(/PING: unparseable reply/) });

    // Well-formed, but not what the command returns.
    const empty = [
      'sh',
      '-c',
      'while read -r l; do case "$l" in ECHO*) echo "${l#ECHO }";; *) echo "[]";; esac; done',
      'empty',
    ];
    await expect(
      act(createActivities(depsFor(plain.port, { cli: empty })).countKeys, {
        target: 'local',
        pattern: 'alfred:cache:*',
      }),
    ).rejects.toThrow(/unexpected reply to SCAN: an array of 0/);
  });

  test('a Redis that does not answer fails the round trip in bounded time', async () => {
    const silent = localSpawn(plain.port);
    const session = await RedisCliSession.open(
      (argv, e) => silent(['sh', '-c', 'cat > /dev/null', 'silent', ...argv.slice(1)], e),
      { cli: ['redis-cli'], label: 'a silent container', timeoutMs: 300 },
    );
    const t0 = Date.now();
    await expect(session.run([['PING']])).rejects.toThrow(/Redis did not answer within \d+ ms \(a silent container\)/);
    expect(Date.now() - t0).toBeLessThan(3000);
    await session.close();
  });
});

/**
 * The exec session as the Docker API hands it over: one socket, stdin written to it, stdout and
 * stderr multiplexed in 8-byte-header frames, here cut into 3-byte pieces so frames arrive split.
 * What runs behind it is the real redis-cli.
 */
function dockerLikeContainer(port: number): Docker.Container {
  return {
    async exec(opts: { Cmd: string[]; Env: string[] }) {
      let child: ChildProcess | undefined;
      return {
        async start() {
          const extra = Object.fromEntries(
            opts.Env.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
          );
          const c = spawn('sh', ['-c', 'exec "$@"', 'sh', ...opts.Cmd, '-p', String(port)], {
            env: { ...process.env, ...extra },
          });
          child = c;
          const frames = new PassThrough();
          const frame = (type: number) => (chunk: Buffer) => {
            const h = Buffer.alloc(8);
            h[0] = type;
            h.writeUInt32BE(chunk.length, 4);
            const all = Buffer.concat([h, chunk]);
            for (let i = 0; i < all.length; i += 3) frames.write(all.subarray(i, i + 3));
          };
          c.stdout.on('data', frame(1));
          c.stderr.on('data', frame(2));
          c.on('close', () => frames.end());
          // Like the daemon's socket: input for a process that has gone is dropped, output is kept.
          c.stdin.on('error', () => undefined);
          const socket = new Duplex({
            write(chunk: Buffer, _enc, cb) {
              c.stdin.write(chunk, () => cb());
            },
            final(cb) {
              c.stdin.end();
              cb();
            },
            read() {},
          });
          frames.on('data', (b: Buffer) => socket.push(b));
          frames.on('end', () => socket.push(null));
          return socket;
        },
        async inspect() {
          return { ExitCode: child?.exitCode ?? null };
        },
      };
    },
  } as unknown as Docker.Container;
}

describe('the Docker exec stream', () => {
  test('stdin goes in, stdout and stderr come apart from split frames', async () => {
    await direct.set('framed', 'a "quoted"\nvalue');
    const session = await RedisCliSession.open(dockerExecSpawn(dockerLikeContainer(plain.port)), {
      cli: ['redis-cli'],
      label: 'a container',
    });
    const replies = await session.run([['PING'], ['GET', 'framed'], ['INFO', 'server'], ['LLEN', 'framed']]);
    expect(replies.slice(0, 2)).toEqual(['PONG', 'a "quoted"\nvalue']);
    expect(replies[2]).toMatch(/^# Server\r\nredis_version:/);
    expect(replies[3]).toEqual(
      new RedisReplyError('WRONGTYPE Operation against a key holding the wrong kind of value'),
    );
    await session.close();

    const down = await RedisCliSession.open(dockerExecSpawn(dockerLikeContainer(await freePort())), {
      cli: ['redis-cli'],
      label: 'a container',
    });
    await expect(down.run([['PING']])).rejects.toThrow(
      /Redis unreachable from a container: Could not connect to Redis/,
    );
    await down.close();
  });

  test('a client missing in the container: exit 127 from the exec', async () => {
    const session = await RedisCliSession.open(dockerExecSpawn(dockerLikeContainer(plain.port)), {
      cli: ['no-such-redis-cli'],
      label: 'a container',
    });
    await expect(session.run([['PING']])).rejects.toThrow(/no-such-redis-cli could not run in a container \(exit 127/);
    await session.close();
  });
});

describe('the password goes as REDISCLI_AUTH', () => {
  test('requirepass: the password is in the exec environment, never in argv or a message', async () => {
    const seen: { argv: string[]; env: Record<string, string> }[] = [];
    const acts = createActivities(depsFor(locked.port, { password: { value: 's3cret pass' } }, seen));
    expect(await act(acts.redisPing, { target: 'local' })).toMatchObject({ ok: true, reply: 'PONG' });
    expect(await act(acts.redisWriteProbe, { target: 'local' })).toEqual({ ok: true });
    expect(seen[0]?.env).toEqual({ REDISCLI_AUTH: 's3cret pass' });
    for (const s of seen) expect(s.argv.join(' ')).not.toContain('s3cret');

    const wrong = await act(createActivities(depsFor(locked.port, { password: { value: 'not-it' } })).redisPing, {
      target: 'local',
    });
    expect(wrong.ok).toBe(false);
    expect(wrong.error).toMatch(/^(WRONGPASS|NOAUTH)/);
    expect(wrong.error).not.toContain('not-it');

    const none = await act(createActivities(depsFor(locked.port)).redisPing, { target: 'local' });
    expect(none).toMatchObject({ ok: false, error: expect.stringMatching(/^NOAUTH/) });
  });

  test('a password Redis does not need is ignored, as a connection ignores it', async () => {
    const acts = createActivities(depsFor(plain.port, { password: { value: 'unused' } }));
    expect(await act(acts.redisPing, { target: 'local' })).toMatchObject({ ok: true, reply: 'PONG' });
  });
});
