/**
 * PostgreSQL the way the seeds reach it: `psql -U alfred -d alfred` inside the db container
 * (`docker compose exec db psql ...`), here through the Docker exec API. One exec session is one
 * database session, so transactions, locks and `pg_backend_pid()` mean what they mean over a socket,
 * and the engine needs neither a published port nor the database password.
 *
 * The session speaks psql's unaligned output with unit/record separators. Each query is described
 * first (`\gdesc`: column names and types, nothing executed), then run; values are converted as
 * node-postgres converts them (int4 → number, int8/numeric → string, timestamptz → Date, json →
 * object, arrays → arrays), so activities read rows the same way whichever way they connect.
 */
import type { Duplex } from 'node:stream';
import type Docker from 'dockerode';
import { types as pgTypes } from 'pg';

const FS = '\x1f';
const RS = '\x1e';
const NULL = '\x01N';

/** A double-quoted SQL identifier (role and table names from configuration). */
export function escapeIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** What activities use of a client: `query(text, params)` → rows, rowCount (node-postgres' shape). */
export interface PgQueryable {
  query<R = Record<string, unknown>>(text: string, params?: unknown[]): Promise<{ rows: R[]; rowCount: number | null }>;
}

export class PgExecError extends Error {
  constructor(
    message: string,
    /** SQLSTATE-like code when psql named one (e.g. 57014 for a statement timeout). */
    readonly code?: string,
  ) {
    super(message);
  }
}

/** Type names as `\gdesc` prints them → the OID node-postgres parses by. */
const OIDS: Record<string, number> = {
  boolean: 16,
  bigint: 20,
  smallint: 21,
  integer: 23,
  oid: 26,
  json: 114,
  real: 700,
  'double precision': 701,
  'integer[]': 1007,
  'text[]': 1009,
  'bigint[]': 1016,
  date: 1082,
  'timestamp without time zone': 1114,
  'timestamp with time zone': 1184,
  interval: 1186,
  numeric: 1700,
  jsonb: 3802,
};

function parserFor(type: string): (v: string) => unknown {
  const oid = OIDS[type];
  if (oid === undefined) return (v) => v;
  return pgTypes.getTypeParser(oid, 'text') as (v: string) => unknown;
}

/** A value as an SQL literal, for `$n`. Strings are quoted with standard_conforming_strings (the default). */
export function literal(v: unknown): string {
  if (v === null || v === undefined) return 'NULL';
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new PgExecError(`cannot send ${v} as a parameter`);
    return String(v);
  }
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (v instanceof Date) return quote(v.toISOString());
  if (Array.isArray(v)) return quote(arrayLiteral(v));
  if (typeof v === 'object') return quote(JSON.stringify(v));
  return quote(String(v));
}

function quote(s: string): string {
  if (s.includes('\0')) throw new PgExecError('a parameter contains a NUL byte');
  return `'${s.replace(/'/g, "''")}'`;
}

function arrayLiteral(items: unknown[]): string {
  const el = (x: unknown): string => {
    if (x === null || x === undefined) return 'NULL';
    if (Array.isArray(x)) return arrayLiteral(x);
    const s = x instanceof Date ? x.toISOString() : typeof x === 'object' ? JSON.stringify(x) : String(x);
    return `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
  };
  return `{${items.map(el).join(',')}}`;
}

/** Replaces `$1`…`$n` with literals (the engine's SQL is static text; parameters never contain SQL). */
export function inline(text: string, params: unknown[] = []): string {
  return text.replace(/\$(\d+)/g, (m, n: string) => {
    const i = Number(n) - 1;
    if (i < 0 || i >= params.length)
      throw new PgExecError(`query uses ${m} but ${params.length} parameter(s) were given`);
    return literal(params[i]);
  });
}

interface Frames {
  out: string;
  err: string;
}

/**
 * One psql process in the db container, driven over the exec session's stdin. Not for concurrent
 * use: queries run one after another, as on one connection.
 */
export class PsqlSession implements PgQueryable {
  private buf = Buffer.alloc(0);
  private readonly frames: Frames = { out: '', err: '' };
  private waiters: (() => void)[] = [];
  private ended = false;
  private seq = 0;

  private constructor(
    private readonly stream: Duplex,
    private readonly label: string,
  ) {
    stream.on('data', (chunk: Buffer) => this.onData(chunk));
    const end = () => {
      this.ended = true;
      this.wake();
    };
    stream.on('end', end);
    stream.on('close', end);
    stream.on('error', end);
  }

  /**
   * Starts psql in the container as `user` on `database`. `statementTimeoutMs` bounds every
   * statement (0: none); `applicationName` lets the engine leave its own sessions out of what it lists.
   */
  static async open(
    container: Docker.Container,
    opts: { user: string; database: string; statementTimeoutMs: number; applicationName: string; osUser?: string },
  ): Promise<PsqlSession> {
    const exec = await container.exec({
      Cmd: [
        'psql',
        '-X',
        '-A',
        '-F',
        FS,
        '-R',
        RS,
        '-P',
        'footer=off',
        '-P',
        `null=${NULL}`,
        '-v',
        'ON_ERROR_STOP=0',
        // Errors carry their SQLSTATE (`ERROR:  42703: column ...`), as node-postgres' `code` does.
        '-v',
        'VERBOSITY=verbose',
        '-U',
        opts.user,
        '-d',
        opts.database,
      ],
      AttachStdin: true,
      AttachStdout: true,
      AttachStderr: true,
      Tty: false,
      Env: [
        `PGAPPNAME=${opts.applicationName}`,
        `PGOPTIONS=-c statement_timeout=${opts.statementTimeoutMs}`,
        'PGCONNECT_TIMEOUT=3',
      ],
      ...(opts.osUser ? { User: opts.osUser } : {}),
    });
    const stream = (await exec.start({ hijack: true, stdin: true })) as unknown as Duplex;
    const session = new PsqlSession(stream, `psql -U ${opts.user} -d ${opts.database}`);
    // The first round trip proves psql started and connected (or says why not).
    await session.query('SELECT 1 AS ok');
    return session;
  }

  private onData(chunk: Buffer): void {
    this.buf = Buffer.concat([this.buf, chunk]);
    // Docker's multiplexed stream: 8-byte header (1 stdout, 2 stderr; length big-endian) per frame.
    while (this.buf.length >= 8) {
      const len = this.buf.readUInt32BE(4);
      if (this.buf.length < 8 + len) break;
      const text = this.buf.subarray(8, 8 + len).toString('utf8');
      if (this.buf[0] === 2) this.frames.err += text;
      else this.frames.out += text;
      this.buf = this.buf.subarray(8 + len);
    }
    this.wake();
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Everything up to `marker` on both streams (psql echoes it on stdout and, with \warn, on stderr). */
  private async until(marker: string): Promise<Frames> {
    const line = `${marker}\n`;
    for (;;) {
      const o = this.frames.out.indexOf(line);
      const e = this.frames.err.indexOf(line);
      if (o >= 0 && e >= 0) {
        const got = { out: this.frames.out.slice(0, o), err: this.frames.err.slice(0, e) };
        this.frames.out = this.frames.out.slice(o + line.length);
        this.frames.err = this.frames.err.slice(e + line.length);
        return got;
      }
      if (this.ended) {
        const why = (this.frames.err || this.frames.out).trim().split('\n').slice(-3).join(' ');
        throw new PgExecError(`${this.label} ended: ${why || 'no output'}`);
      }
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  private async roundTrip(script: string): Promise<Frames> {
    const marker = `__remediation_${process.pid}_${++this.seq}__`;
    this.stream.write(`${script}\n\\echo ${marker}\n\\warn ${marker}\n`);
    return this.until(marker);
  }

  private static failure(err: string): PgExecError | undefined {
    const m = /(?:ERROR|FATAL):\s+(.*)/.exec(err);
    if (!m) return undefined;
    return PsqlSession.errorOf((m[1] ?? '').trim());
  }

  /** An error line's text after `ERROR:`, with or without the SQLSTATE verbose output puts first. */
  static errorOf(text: string): PgExecError {
    const coded = /^([0-9A-Z]{5}):\s+(.*)$/.exec(text);
    if (coded) return new PgExecError(coded[2] ?? '', coded[1]);
    const code = /canceling statement due to statement timeout/.test(text) ? '57014' : undefined;
    return new PgExecError(text, code);
  }

  async query<R = Record<string, unknown>>(
    text: string,
    params: unknown[] = [],
  ): Promise<{ rows: R[]; rowCount: number | null }> {
    const sql = inline(text, params).trim().replace(/;\s*$/, '');
    if (/\n\s*\\/.test(`\n${sql}`)) throw new PgExecError('a psql meta-command inside a query is refused');
    // 1. Describe: column names and types, without executing anything.
    const desc = await this.roundTrip(`${sql}\n\\gdesc`);
    const descErr = PsqlSession.failure(desc.err);
    if (descErr) throw descErr;
    const columns = parseTable(desc.out)
      .slice(1)
      .map(([name = '', type = '']) => ({ name, parse: parserFor(type) }));
    // 2. Run it.
    // The terminator on a line of its own: a query ending in a `--` comment still ends here.
    const res = await this.roundTrip(`${sql}\n;`);
    const err = PsqlSession.failure(res.err);
    if (err) throw err;
    if (columns.length === 0) {
      // A command without result columns: psql prints its tag (UPDATE 3, INSERT 0 1, VACUUM, ...).
      const tag = res.out.trim().split('\n').pop() ?? '';
      const n = /(\d+)$/.exec(tag);
      return { rows: [], rowCount: n ? Number(n[1]) : null };
    }
    const table = parseTable(res.out);
    const rows = table.slice(1).map((cells) => {
      const row: Record<string, unknown> = {};
      columns.forEach((c, i) => {
        const v = cells[i] ?? NULL;
        row[c.name] = v === NULL ? null : c.parse(v);
      });
      return row as R;
    });
    return { rows, rowCount: rows.length };
  }

  async close(): Promise<void> {
    if (this.ended) return;
    try {
      this.stream.end('\\q\n');
    } catch {
      // already gone
    }
    await Promise.race([
      new Promise<void>((resolve) => this.waiters.push(resolve)),
      new Promise((r) => setTimeout(r, 1000)),
    ]);
    this.stream.destroy();
  }
}

/** psql's unaligned output: records separated by RS, fields by FS; the first record is the header. */
function parseTable(out: string): string[][] {
  const body = out.replace(/\n$/, '');
  if (!body.includes(FS) && !body.includes(RS) && !/\S/.test(body)) return [];
  const trimmed = body.endsWith(RS) ? body.slice(0, -1) : body;
  // psql ends the last record with a newline, not RS.
  return trimmed.split(RS).map((r) => r.replace(/\n$/, '').split(FS));
}
