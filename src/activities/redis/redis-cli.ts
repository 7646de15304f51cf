/**
 * Redis the way the seeds reach it: `redis-cli` inside the redis container (`docker compose exec
 * redis redis-cli ping`), here through the Docker exec API. One redis-cli process is one connection;
 * it reads commands from stdin, one per line, so a batch of commands (a SCAN step, the HGETs of a
 * thousand jobs) costs one write and one read, not one exec each.
 *
 * The session runs `redis-cli -2 --quoted-json` (RESP2, one reply per line, strings quoted ASCII-safe):
 * each argument is sent double-quoted with C escapes (`"a\"b\n\xff"`, as redis-cli splits lines), and
 * each command is followed by `ECHO <marker>` with an unguessable marker, whose echo must come right
 * after the reply: a reply that is not one line (INFO, printed raw, has CRLF lines of its own), or
 * not followed by its marker, is out of step and an error. The password goes in the exec's
 * environment as REDISCLI_AUTH, never in argv.
 */
import { randomBytes } from 'node:crypto';
import { PassThrough, type Duplex, type Readable, type Writable } from 'node:stream';
import type Docker from 'dockerode';
import {
  RedisProtocolError,
  RedisReplyError,
  RedisUnreachableError,
  type RedisArg,
  type RedisReply,
  type RedisTransport,
} from './redis-client';

/** A started redis-cli: its stdin, stdout and stderr, and its exit code once it ends. */
export interface CliProcess {
  stdin: Writable;
  stdout: Readable;
  stderr: Readable;
  /** The exit code once the process ended (null when the transport cannot tell). */
  exitCode(): Promise<number | null>;
  /** Ends the process at once (a session that timed out). */
  kill(): void;
}

/** Starts `argv` with `env` added to its environment: in the redis container, or locally in tests. */
export type CliSpawn = (argv: string[], env: Record<string, string>) => Promise<CliProcess>;

/** The options the session adds after the configured argv: RESP2 replies as one quoted JSON line each. */
export const CLI_OUTPUT_OPTIONS = ['-2', '--quoted-json'];

/** redis-cli could not run as configured (not installed there, too old): a setting to change. */
export class RedisCliUnusableError extends Error {}

/** Commands redis-cli prints raw (not as JSON) whatever the output mode. */
function printedRaw(cmd: RedisArg[]): boolean {
  const [a = '', b = ''] = cmd.slice(0, 2).map((x) => String(x).toLowerCase());
  if (a === 'info' || a === 'lolwut') return true;
  if (a === 'cluster') return b === 'nodes' || b === 'info';
  if (a === 'client') return b === 'list' || b === 'info';
  if (a === 'latency') return b === 'graph' || b === 'doctor';
  if (a === 'memory') return b === 'doctor' || b === 'malloc-stats';
  return a === 'debug' && (b === 'htstats' || b === 'htstats-key');
}

/** Commands redis-cli handles itself in its prompt loop, never sent to Redis as written. */
const CLI_OWN = /^(quit|exit|connect|clear|help|restart|monitor|subscribe|psubscribe|ssubscribe|sync|psync)$/i;

/** One argument as redis-cli's line splitter reads it back byte for byte: double-quoted, C escapes. */
export function quoteArg(arg: RedisArg): string {
  const bytes = Buffer.isBuffer(arg) ? arg : Buffer.from(String(arg), 'utf8');
  let out = '"';
  for (const b of bytes) {
    if (b === 0x22) out += '\\"';
    else if (b === 0x5c) out += '\\\\';
    else if (b >= 0x20 && b < 0x7f) out += String.fromCharCode(b);
    else out += `\\x${b.toString(16).padStart(2, '0')}`;
  }
  return `${out}"`;
}

/** A command as one stdin line. */
export function commandLine(cmd: RedisArg[]): string {
  const [name] = cmd;
  if (name === undefined || !/^[A-Za-z][\w|.-]*$/.test(String(name)) || CLI_OWN.test(String(name)))
    throw new RedisProtocolError(`"${String(name)}" cannot be sent through redis-cli`);
  return [String(name), ...cmd.slice(1).map(quoteArg)].join(' ');
}

/** The bytes of a string as redis-cli's ASCII-safe quoting prints them (`\\`, `\"`, `\n`, `\xff`, ...). */
export function unrepr(s: string): Buffer {
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c !== 0x5c) {
      if (c > 0x7f) return Buffer.concat([Buffer.from(bytes), Buffer.from(s.slice(i), 'utf8')]);
      bytes.push(c);
      continue;
    }
    const e = s[++i];
    switch (e) {
      case 'n':
        bytes.push(0x0a);
        break;
      case 'r':
        bytes.push(0x0d);
        break;
      case 't':
        bytes.push(0x09);
        break;
      case 'a':
        bytes.push(0x07);
        break;
      case 'b':
        bytes.push(0x08);
        break;
      case 'x': {
        const hex = s.slice(i + 1, i + 3);
        if (!/^[0-9a-fA-F]{2}$/.test(hex)) throw new RedisProtocolError('bad \\x escape in a reply');
        bytes.push(Number.parseInt(hex, 16));
        i += 2;
        break;
      }
      case undefined:
        throw new RedisProtocolError('a reply string ends in a backslash');
      default:
        bytes.push(e.charCodeAt(0));
    }
  }
  return Buffer.from(bytes);
}

/**
 * One reply as `redis-cli -2 --quoted-json` prints it: JSON, except that errors are `error:"..."`
 * and strings hold redis-cli's quoting of the bytes. The whole text must be one reply.
 */
export function parseJsonReply(text: string): RedisReply {
  let i = 0;
  const fail = (): never => {
    throw new RedisProtocolError(`unparseable reply (${text.length} characters, at ${i})`);
  };
  const ws = () => {
    while (i < text.length && /\s/.test(text[i] as string)) i++;
  };
  const string = (): string => {
    // redis-cli 7.0 prints its quoting of the bytes (`"a\"b"`) with every backslash doubled, so a
    // quote after an escaping backslash is bare; proper JSON escapes (`\"`, `\u0000`) are read too.
    i++;
    let repr = '';
    let escaping = false;
    for (;;) {
      if (i >= text.length) fail();
      let ch = text[i] as string;
      if (ch === '\\') {
        const nx = text[i + 1];
        if (nx === '\\' || nx === '"' || nx === '/') {
          ch = nx;
          i += 2;
        } else if (nx === 'u' && /^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) {
          ch = String.fromCharCode(Number.parseInt(text.slice(i + 2, i + 6), 16));
          i += 6;
        } else {
          const json: Record<string, string> = { n: '\n', r: '\r', t: '\t', b: '\b', f: '\f' };
          if (nx === undefined || json[nx] === undefined) fail();
          ch = json[nx as string] as string;
          i += 2;
        }
      } else if (ch === '"') {
        i++;
        if (!escaping) break;
      } else i++;
      repr += ch;
      escaping = ch === '\\' && !escaping;
    }
    return unrepr(repr).toString('utf8');
  };
  const value = (): RedisReply => {
    ws();
    const c = text[i];
    if (c === '"') return string();
    if (c === '[') {
      i++;
      const items: RedisReply[] = [];
      ws();
      if (text[i] === ']') {
        i++;
        return items;
      }
      for (;;) {
        items.push(value());
        ws();
        if (text[i] === ',') i++;
        else if (text[i] === ']') {
          i++;
          return items;
        } else fail();
      }
    }
    if (text.startsWith('error:', i)) {
      i += 6;
      if (text[i] !== '"') fail();
      return new RedisReplyError(string());
    }
    if (text.startsWith('null', i)) {
      i += 4;
      return null;
    }
    const num = /^-?\d+(\.\d+)?([eE][-+]?\d+)?/.exec(text.slice(i));
    if (num) {
      i += num[0].length;
      return Number(num[0]);
    }
    return fail();
  };
  const v = value();
  ws();
  if (i !== text.length) fail();
  return v;
}

/** The reply of a command redis-cli prints raw: INFO's text (CRLF lines), or an error line. */
function parseRawReply(text: string): RedisReply {
  if (text.startsWith('error:')) return parseJsonReply(text);
  if (text === '' || text.endsWith('\r\n')) return text;
  return new RedisReplyError(text.replace(/\n$/, ''));
}

/** stderr lines that mean the connection is gone or was never made. */
const UNREACHABLE = /^(Could not connect to Redis at [^\n]*|Error: [^\n]*)\n/m;
const AUTH_FAILED = /^AUTH failed: ([^\n]*)\n/m;
const RUNTIME_REFUSED = /^.*(?:OCI runtime|runc: exec failed|crun: |executable file not found in \$PATH).*$/m;
const NOT_INSTALLED =
  /executable file not found|not found in \$PATH|no such file or directory|exec format error|permission denied/i;

export interface RedisCliSessionOptions {
  /** The configured argv (`redis.cli`); the output options are appended. */
  cli: string[];
  password?: string;
  /** Where it runs, for messages (`the redis container of alfred`). */
  label: string;
  /** Bound on one round trip; a batch gets a little more per command. */
  timeoutMs?: number;
}

/**
 * One redis-cli process, driven over its stdin. Round trips run one after another (it is one
 * connection); `run` may be called concurrently and is queued.
 */
export class RedisCliSession implements RedisTransport {
  private out = '';
  /** Where the unread part of `out` begins. */
  private pos = 0;
  private err = '';
  private ended = false;
  private waiters: (() => void)[] = [];
  private seq = 0;
  private queue: Promise<unknown> = Promise.resolve();
  private broken: Error | undefined;
  private readonly nonce = randomBytes(8).toString('hex');
  private readonly errDone: Promise<void>;

  private constructor(
    private readonly proc: CliProcess,
    private readonly opts: RedisCliSessionOptions,
  ) {
    proc.stdout.setEncoding('utf8');
    proc.stderr.setEncoding('utf8');
    proc.stdout.on('data', (s: string) => {
      this.out += s;
      this.wake();
    });
    proc.stderr.on('data', (s: string) => {
      this.err += s;
      this.wake();
    });
    this.errDone = new Promise<void>((resolve) => {
      proc.stderr.on('end', resolve);
      proc.stderr.on('close', resolve);
      proc.stderr.on('error', () => resolve());
    });
    const end = () => {
      this.ended = true;
      this.wake();
    };
    proc.stdout.on('end', end);
    proc.stdout.on('close', end);
    proc.stdout.on('error', end);
    proc.stdin.on('error', () => undefined);
  }

  static async open(spawn: CliSpawn, opts: RedisCliSessionOptions): Promise<RedisCliSession> {
    const env: Record<string, string> = opts.password ? { REDISCLI_AUTH: opts.password } : {};
    let proc: CliProcess;
    try {
      proc = await spawn([...opts.cli, ...CLI_OUTPUT_OPTIONS], env);
    } catch (err) {
      const msg = (err as Error).message;
      if (NOT_INSTALLED.test(msg))
        throw new RedisCliUnusableError(
          `${opts.cli[0] ?? 'redis-cli'} could not run in ${opts.label}: ${msg.slice(0, 300)}`,
        );
      throw err;
    }
    return new RedisCliSession(proc, opts);
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  run(commands: RedisArg[][]): Promise<RedisReply[]> {
    const next = this.queue.then(() => this.roundTrip(commands));
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** Why the process cannot serve, from what it wrote to stderr and how it ended; undefined while it can. */
  private async failure(): Promise<Error | undefined> {
    const auth = AUTH_FAILED.exec(this.err);
    // A password Redis does not need is only warned about (as ioredis does); a wrong one is Redis' answer.
    if (auth && !/without any password configured/.test(auth[1] ?? ''))
      return new RedisReplyError((auth[1] ?? '').trim());
    // The container runtime refusing to start the client (runc, crun: "executable file not found",
    // "OCI runtime attempted to invoke a command that was not found") is not Redis: the setting is wrong.
    const refused = RUNTIME_REFUSED.exec(this.err);
    if (refused)
      return new RedisCliUnusableError(`${this.opts.cli[0] ?? 'redis-cli'} could not run in ${this.opts.label}: ${refused[0].slice(0, 300)}`);
    const down = UNREACHABLE.exec(this.err);
    if (down) return new RedisUnreachableError(`Redis unreachable from ${this.opts.label}: ${down[1] ?? ''}`.trim());
    if (!this.ended) return undefined;
    // What the process said last may still be on its way on stderr.
    await Promise.race([this.errDone, new Promise((r) => setTimeout(r, 500).unref())]);
    const code = await this.proc.exitCode().catch(() => null);
    // Its own words (stderr, or a runtime's message on stdout), never a reply that may hold data.
    const notReplies = this.out
      .slice(this.pos)
      .split('\n')
      .filter((l) => l && !/^("|\[|-?\d|null$|error:)/.test(l));
    const said = [...this.err.split('\n'), ...notReplies].filter(Boolean).slice(-3).join(' ').slice(0, 300);
    if (code === 126 || code === 127 || NOT_INSTALLED.test(said)) {
      return new RedisCliUnusableError(
        `${this.opts.cli[0] ?? 'redis-cli'} could not run in ${this.opts.label} (exit ${code ?? '?'}: ${said || 'no output'})`,
      );
    }
    if (/Unrecognized option|bad number of args/i.test(said)) {
      return new RedisCliUnusableError(
        `${this.opts.cli.join(' ')} in ${this.opts.label} does not accept ${CLI_OUTPUT_OPTIONS.join(' ')} (redis-cli 7.0 or newer is needed): ${said}`,
      );
    }
    return new RedisUnreachableError(
      `redis-cli in ${this.opts.label} ended (exit ${code ?? '?'}): ${said || 'no output'}`,
    );
  }

  private async roundTrip(commands: RedisArg[][]): Promise<RedisReply[]> {
    if (this.broken) throw this.broken;
    const lines = commands.map(commandLine);
    // Unguessable: no value stored in Redis can pass for the end of a reply.
    const markers = commands.map(() => `__redis_cli_${this.nonce}_${++this.seq}__`);
    const script = lines.map((l, k) => `${l}\nECHO "${markers[k] as string}"\n`).join('');
    this.proc.stdin.write(script);
    const timeoutMs = (this.opts.timeoutMs ?? 5000) + commands.length * 2;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      this.wake();
    }, timeoutMs);
    const nextLine = async (): Promise<string> => {
      for (;;) {
        const nl = this.out.indexOf('\n', this.pos);
        if (nl >= 0) {
          const line = this.out.slice(this.pos, nl);
          this.pos = nl + 1;
          // Drop what was read now and then, not at every line: a batch may be thousands of lines.
          if (this.pos > 65536) {
            this.out = this.out.slice(this.pos);
            this.pos = 0;
          }
          return line;
        }
        const why = await this.failure();
        if (why) throw why;
        if (timedOut)
          throw new RedisUnreachableError(`Redis did not answer within ${timeoutMs} ms (${this.opts.label})`);
        await new Promise<void>((resolve) => this.waiters.push(resolve));
      }
    };
    try {
      const replies: RedisReply[] = [];
      for (let k = 0; k < commands.length; k++) {
        const cmd = commands[k] as RedisArg[];
        const marker = `"${markers[k] as string}"`;
        const name = String(cmd[0]).toUpperCase();
        let line = await nextLine();
        if (printedRaw(cmd)) {
          // INFO and the like: text whose lines end in CRLF (none when empty), or one line of error.
          if (line === marker) {
            replies.push('');
            continue;
          }
          if (line.endsWith('\r')) {
            let text = '';
            while (line.endsWith('\r')) {
              text += `${line}\n`;
              line = await nextLine();
            }
            replies.push(text);
          } else {
            replies.push(parseRawReply(`${line}\n`));
            line = await nextLine();
          }
        } else {
          // Every other reply is one line.
          try {
            replies.push(parseJsonReply(line));
          } catch (err) {
            throw new RedisProtocolError(`${name}: ${(err as Error).message}`);
          }
          line = await nextLine();
        }
        if (line !== marker) {
          // Redis refused the marker's ECHO itself (NOAUTH, NOPERM): its answer, for every command.
          let refusal: RedisReply;
          try {
            refusal = parseJsonReply(line);
          } catch {
            throw new RedisProtocolError(
              `${name}: reply out of step (${line.length} characters where the end of the reply was due)`,
            );
          }
          if (refusal instanceof RedisReplyError) throw refusal;
          throw new RedisProtocolError(`${name}: reply out of step (more than one reply)`);
        }
      }
      return replies;
    } catch (err) {
      // Replies after a failure can no longer be matched to their commands.
      this.broken = err as Error;
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    if (!this.ended) {
      try {
        this.proc.stdin.end('QUIT\n');
      } catch {
        // already gone
      }
      await Promise.race([
        new Promise<void>((resolve) => {
          if (this.ended) resolve();
          else this.waiters.push(resolve);
        }),
        new Promise((r) => setTimeout(r, 1000).unref()),
      ]);
    }
    this.proc.kill();
  }
}

/** Splits Docker's multiplexed exec stream (8-byte header per frame: 1 stdout, 2 stderr) into two streams. */
function demux(stream: Duplex, stdout: PassThrough, stderr: PassThrough): void {
  let buf = Buffer.alloc(0);
  stream.on('data', (chunk: Buffer) => {
    buf = Buffer.concat([buf, chunk]);
    while (buf.length >= 8) {
      const len = buf.readUInt32BE(4);
      if (buf.length < 8 + len) break;
      (buf[0] === 2 ? stderr : stdout).write(buf.subarray(8, 8 + len));
      buf = buf.subarray(8 + len);
    }
  });
  const end = () => {
    stdout.end();
    stderr.end();
  };
  stream.on('end', end);
  stream.on('close', end);
  stream.on('error', end);
}

/** Runs argv in a container through the Docker exec API, stdin attached. */
export function dockerExecSpawn(container: Docker.Container): CliSpawn {
  return async (argv, env) => {
    const exec = await container.exec({
      Cmd: argv,
      Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
      AttachStdin: true,
      AttachStdout: true,
      AttachStderr: true,
      Tty: false,
    });
    const stream = (await exec.start({ hijack: true, stdin: true })) as unknown as Duplex;
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    demux(stream, stdout, stderr);
    const ended = new Promise<void>((resolve) => {
      stdout.on('end', resolve);
      stdout.on('close', resolve);
    });
    return {
      stdin: stream,
      stdout,
      stderr,
      async exitCode() {
        await ended;
        // The daemon may still report the exec as running just after its stream ended.
        for (let i = 0; ; i++) {
          const info = await exec.inspect();
          if (!info.Running || i >= 10) return info.Running ? null : (info.ExitCode ?? null);
          await new Promise((r) => setTimeout(r, 100));
        }
      },
      kill() {
        stream.destroy();
      },
    };
  };
}
