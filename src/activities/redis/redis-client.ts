/**
 * The Redis commands the activities use, written once over a small transport that runs a batch of
 * commands and returns one reply each. Two transports implement it: redis-cli inside the target's
 * redis container (`redis.via: exec`, ./redis-cli.ts) and an ioredis connection (`redis.via: tcp`).
 * Both speak RESP2, so replies have the same shapes either way.
 *
 * Every helper checks the shape of what came back: a reply that is not what the command returns is
 * an error, never read as "nothing there".
 */
import type Redis from 'ioredis';

/** One argument of a command: text (sent as UTF-8), a number, or raw bytes. */
export type RedisArg = string | number | Buffer;

/** A reply as RESP2 gives it: bulk and status strings (UTF-8), integers, nil, arrays, errors. */
export type RedisReply = string | number | null | RedisReplyError | RedisReply[];

/** Redis answered with an error (`-ERR ...`, `-OOM ...`, `-WRONGTYPE ...`, `-NOAUTH ...`). */
export class RedisReplyError extends Error {
  override readonly name = 'ReplyError';
}

/** Redis could not be reached: connection refused or closed, no answer in time, its container down. */
export class RedisUnreachableError extends Error {}

/** A reply that could not be read, or that is not what the command returns. */
export class RedisProtocolError extends Error {}

export interface RedisTransport {
  /** Runs the commands in order, in one round trip where the transport can, and returns their replies. */
  run(commands: RedisArg[][]): Promise<RedisReply[]>;
}

export interface SlowlogEntry {
  id: number;
  micros: number;
  /** Command name and argument count only: argument values may hold user data. */
  command: string;
}

const nameOf = (cmd: RedisArg[]): string =>
  cmd
    .slice(0, /^(config|slowlog|memory|client)$/i.test(String(cmd[0])) ? 2 : 1)
    .map(String)
    .join(' ')
    .toUpperCase();

function unexpected(cmd: RedisArg[], reply: RedisReply): RedisProtocolError {
  const kind = reply === null ? 'nil' : Array.isArray(reply) ? `an array of ${reply.length}` : typeof reply;
  return new RedisProtocolError(`unexpected reply to ${nameOf(cmd)}: ${kind}`);
}

function str(cmd: RedisArg[], r: RedisReply): string {
  if (typeof r !== 'string') throw unexpected(cmd, r);
  return r;
}

function int(cmd: RedisArg[], r: RedisReply): number {
  if (typeof r !== 'number') throw unexpected(cmd, r);
  return r;
}

function strOrNil(cmd: RedisArg[], r: RedisReply): string | null {
  if (r !== null && typeof r !== 'string') throw unexpected(cmd, r);
  return r;
}

function list(cmd: RedisArg[], r: RedisReply): RedisReply[] {
  if (!Array.isArray(r)) throw unexpected(cmd, r);
  return r;
}

/** The typed commands of the activities, over either transport. */
export class RedisClient {
  constructor(private readonly transport: RedisTransport) {}

  /** Runs commands in one round trip; an error reply of any of them is thrown. */
  async batch(commands: RedisArg[][]): Promise<RedisReply[]> {
    if (commands.length === 0) return [];
    const replies = await this.transport.run(commands);
    if (replies.length !== commands.length)
      throw new RedisProtocolError(`${replies.length} replies to ${commands.length} commands`);
    for (const r of replies) if (r instanceof RedisReplyError) throw r;
    return replies;
  }

  async call(...cmd: RedisArg[]): Promise<RedisReply> {
    return (await this.batch([cmd]))[0] as RedisReply;
  }

  async ping(): Promise<string> {
    return str(['PING'], await this.call('PING'));
  }

  /** INFO of one section, as the text Redis sends (`key:value` lines). */
  async info(section: string): Promise<string> {
    return str(['INFO'], await this.call('INFO', section));
  }

  /** CONFIG GET of one parameter: its value, or undefined when the server has no such parameter. */
  async configGet(parameter: string): Promise<string | undefined> {
    const cmd = ['CONFIG', 'GET', parameter];
    const r = list(cmd, await this.call(...cmd));
    for (let i = 0; i + 1 < r.length; i += 2) {
      if (String(r[i]).toLowerCase() === parameter.toLowerCase()) return str(cmd, r[i + 1] as RedisReply);
    }
    if (r.length % 2 !== 0) throw unexpected(cmd, r);
    return undefined;
  }

  async configSet(parameter: string, value: string): Promise<void> {
    const cmd = ['CONFIG', 'SET', parameter, value];
    str(cmd, await this.call(...cmd));
  }

  async set(key: RedisArg, value: RedisArg, opts: { exSeconds?: number } = {}): Promise<void> {
    const cmd = ['SET', key, value, ...(opts.exSeconds !== undefined ? ['EX', opts.exSeconds] : [])];
    str(cmd, await this.call(...cmd));
  }

  async slowlogGet(count: number): Promise<SlowlogEntry[]> {
    const cmd = ['SLOWLOG', 'GET', count];
    return list(cmd, await this.call(...cmd)).map((e) => {
      const row = list(cmd, e);
      const args = list(cmd, row[3] ?? null);
      return {
        id: int(cmd, row[0] ?? null),
        micros: int(cmd, row[2] ?? null),
        command: `${args[0] === undefined ? '?' : String(args[0])} (${Math.max(0, args.length - 1)} args)`,
      };
    });
  }

  /** One SCAN step: the next cursor ('0' when done) and the keys of this step. */
  async scan(cursor: string, opts: { match: string; count: number }): Promise<{ cursor: string; keys: string[] }> {
    const cmd = ['SCAN', cursor, 'MATCH', opts.match, 'COUNT', opts.count];
    const r = list(cmd, await this.call(...cmd));
    if (r.length !== 2) throw unexpected(cmd, r);
    return { cursor: str(cmd, r[0] as RedisReply), keys: list(cmd, r[1] as RedisReply).map((k) => str(cmd, k)) };
  }

  async unlink(keys: RedisArg[]): Promise<number> {
    if (keys.length === 0) return 0;
    const cmd = ['UNLINK', ...keys];
    return int(cmd, await this.call(...cmd));
  }

  async mget(keys: RedisArg[]): Promise<(string | null)[]> {
    if (keys.length === 0) return [];
    const cmd = ['MGET', ...keys];
    const r = list(cmd, await this.call(...cmd));
    if (r.length !== keys.length) throw unexpected(cmd, r);
    return r.map((v) => strOrNil(cmd, v));
  }

  async llen(key: RedisArg): Promise<number> {
    return int(['LLEN'], await this.call('LLEN', key));
  }

  async lindex(key: RedisArg, index: number): Promise<string | null> {
    return strOrNil(['LINDEX'], await this.call('LINDEX', key, index));
  }

  async lrange(key: RedisArg, start: number, stop: number): Promise<string[]> {
    const cmd = ['LRANGE', key, start, stop];
    return list(cmd, await this.call(...cmd)).map((v) => str(cmd, v));
  }

  async hmget(key: RedisArg, fields: readonly RedisArg[]): Promise<(string | null)[]> {
    const cmd = ['HMGET', key, ...fields];
    const r = list(cmd, await this.call(...cmd));
    if (r.length !== fields.length) throw unexpected(cmd, r);
    return r.map((v) => strOrNil(cmd, v));
  }

  /** HGET of one field in each of many hashes, in one round trip. */
  async hgetEach(keys: RedisArg[], field: RedisArg): Promise<(string | null)[]> {
    const replies = await this.batch(keys.map((k) => ['HGET', k, field]));
    return replies.map((v) => strOrNil(['HGET'], v));
  }
}

/** ioredis' reply errors are `ReplyError`s (from redis-errors); anything else is the connection's. */
function isIoredisReplyError(err: unknown): err is Error {
  return err instanceof Error && err.name === 'ReplyError';
}

function fromIoredis(v: unknown): RedisReply {
  if (v === null || typeof v === 'string' || typeof v === 'number') return v;
  if (Buffer.isBuffer(v)) return v.toString('utf8');
  if (Array.isArray(v)) return v.map(fromIoredis);
  if (isIoredisReplyError(v)) return new RedisReplyError(v.message);
  throw new RedisProtocolError(`unexpected reply of type ${typeof v}`);
}

/** The transport of `redis.via: tcp`: one ioredis connection; a batch is one pipeline. */
export function ioredisTransport(r: Redis): RedisTransport {
  return {
    async run(commands) {
      const pipe = r.pipeline();
      for (const [name, ...args] of commands) pipe.call(String(name), ...args);
      const results = (await pipe.exec()) ?? [];
      return results.map(([err, v]) => {
        if (err) {
          if (isIoredisReplyError(err)) return new RedisReplyError(err.message);
          throw err;
        }
        return fromIoredis(v);
      });
    },
  };
}
