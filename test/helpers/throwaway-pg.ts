/**
 * A PostgreSQL server of a test's own: a fresh cluster in a temporary directory (Debian's
 * postgresql binaries, as scripts/install.sh installs them), on 127.0.0.1 and a free port, trust
 * authentication, English messages. It shares nothing with the drill; `stop()` removes it.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client } from 'pg';

export interface ThrowawayPg {
  host: string;
  port: number;
  user: string;
  database: string;
  /** A connection as `user`, closed by the caller. */
  connect(): Promise<Client>;
  stop(): void;
}

/** The newest installed server's binaries (PG_BINDIR overrides). */
function binDir(): string {
  if (process.env.PG_BINDIR) return process.env.PG_BINDIR;
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((v) => existsSync(path.join(root, v, 'bin', 'initdb')))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (!versions[0])
    throw new Error(`no PostgreSQL server binaries under ${root} (scripts/install.sh installs postgresql-15)`);
  return path.join(root, versions[0], 'bin');
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

const shellQuote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

export async function startThrowawayPg(): Promise<ThrowawayPg> {
  const bin = binDir();
  const dir = mkdtempSync(path.join(tmpdir(), 'throwaway-pg-'));
  const data = path.join(dir, 'data');
  // The server refuses to run as root: as root, the cluster belongs to the postgres system user.
  const asRoot = process.getuid?.() === 0;
  if (asRoot) {
    execFileSync('chown', ['postgres', dir]);
    chmodSync(dir, 0o700);
  }
  const run = (cmd: string, args: string[]) => {
    const argv = [path.join(bin, cmd), ...args];
    if (asRoot)
      execFileSync('su', ['postgres', '-s', '/bin/sh', '-c', argv.map(shellQuote).join(' ')], { stdio: 'pipe' });
    else execFileSync(argv[0] as string, argv.slice(1), { stdio: 'pipe' });
  };
  const port = await freePort();
  const user = 'alfred';
  try {
    run('initdb', ['-D', data, '-U', user, '--auth=trust', '--locale=C', '-E', 'UTF8', '-N']);
    run('pg_ctl', [
      '-D',
      data,
      '-w',
      '-t',
      '30',
      '-l',
      path.join(dir, 'server.log'),
      '-o',
      `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`,
      'start',
    ]);
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    host: '127.0.0.1',
    port,
    user,
    database: 'postgres',
    async connect() {
      const c = new Client({ host: '127.0.0.1', port, user, database: 'postgres' });
      await c.connect();
      return c;
    },
    stop() {
      try {
        run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
