/** Shared by the benchmarks: statistics, the machine description, and BENCHMARKS.md sections. */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { temporalProfile, temporalServerPid } from './processes';

const FILE = path.resolve(__dirname, '../BENCHMARKS.md');

export function median(xs: number[]): number {
  return percentile(xs, 50);
}

export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const i = Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1));
  return s[i] as number;
}

function version(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim().split('\n')[0] ?? '?';
  } catch {
    return '?';
  }
}

/** How the dev server stores its state, from its command line: SQLite and the pragmas it was given. */
function serverStore(): string {
  const pid = temporalServerPid();
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    const pragmas = argv.flatMap((a, i) => (a === '--sqlite-pragma' && argv[i + 1] ? [argv[i + 1]] : []));
    return `dev server, SQLite${pragmas.length ? ` with ${pragmas.join(', ')}` : ''}`;
  } catch {
    return 'dev server, SQLite';
  }
}

/** The Temporal server measured against: the dev server (the CLI's version), or the cluster profile's server. */
function server(): string {
  if (temporalProfile() === 'cluster') {
    // The running binary itself (scripts/cluster.sh may be given another with TEMPORAL_SERVER_BIN).
    const running = version(`/proc/${temporalServerPid()}/exe`, ['--version']);
    return `Temporal server ${running.replace(/^temporal version\s*/, '')} (cluster profile: frontend, history, matching and worker in one process on PostgreSQL, mTLS)`;
  }
  const gopath = version('go', ['env', 'GOPATH']);
  return `${version(process.env.TEMPORAL_BIN ?? path.join(gopath, 'bin/temporal'), ['--version'])} (${serverStore()})`;
}

/** The machine and versions a figure was measured on. */
export async function machine(): Promise<string> {
  const cpu = os.cpus()[0]?.model ?? '?';
  return [
    `Machine: ${os.cpus().length} cores (${cpu}), ${(os.totalmem() / 1024 ** 3).toFixed(0)} GiB RAM, ${os.platform()} ${os.release()}; ` +
      `Node ${process.version}; ${server()}; measured ${new Date().toISOString().slice(0, 16)} UTC.`,
  ].join('\n');
}

/** Replaces (or appends) the section `## <title>` of BENCHMARKS.md. */
export function writeSection(title: string, body: string, command: string): void {
  const header = '# Benchmarks\n\nFigures from `bench/`; each section says how to reproduce it. Not part of the test suite.\n';
  let text = existsSync(FILE) ? readFileSync(FILE, 'utf8') : header;
  const section = `## ${title}\n\n\`${command}\`\n\n${body.trim()}\n`;
  const start = text.indexOf(`## ${title}\n`);
  if (start < 0) {
    text = `${text.trimEnd()}\n\n${section}`;
  } else {
    const next = text.indexOf('\n## ', start + 1);
    text = `${text.slice(0, start)}${section}${next < 0 ? '' : text.slice(next)}`;
  }
  writeFileSync(FILE, `${text.trimEnd()}\n`);
}
