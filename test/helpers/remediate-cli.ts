/**
 * bin/remediate as engineers run it: a subprocess of the compiled client, against the test's engine
 * (its task queue) and codec server, with a fixture operator's credential.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { credentialFile, FIXTURE_OPERATORS, type FixtureOperator } from './codec';
import { REPO, STACK_DIR } from './engine';

export type CliResult = { code: number; stdout: string; stderr: string };

export interface RemediateCli {
  /** The script as `who` (their personal credential). */
  as(who: FixtureOperator, ...args: string[]): Promise<CliResult>;
  /**
   * The script with `env` as given (no credential, another file), `stdin` piped to it, run from `cwd`
   * (default: the repository) or as another copy of bin/remediate (`bin`).
   */
  withEnv(env: Record<string, string | undefined>, args: string[], stdin?: string, where?: { cwd?: string; bin?: string }): Promise<CliResult>;
  /** The directory holding every fixture operator's credential file (named after them). */
  credentials: string;
  close(): void;
}

/** Builds the client if a source is newer (scripts/build-cli.sh), and writes every fixture operator's credential. */
export function remediateCli(opts: { taskQueue: string; codecUrl: string }): RemediateCli {
  execFileSync('bash', [path.join(REPO, 'scripts/build-cli.sh')], { stdio: 'inherit' });
  const credentials = mkdtempSync(path.join(tmpdir(), 'remediate-creds-'));
  for (const who of FIXTURE_OPERATORS) credentialFile(who, credentials);
  async function withEnv(
    env: Record<string, string | undefined>,
    args: string[],
    stdin?: string,
    where: { cwd?: string; bin?: string } = {},
  ): Promise<CliResult> {
    const child = spawn(where.bin ?? path.join(REPO, 'bin/remediate'), args, {
      env: { ...process.env, STACK_DIR, TEMPORAL_TASK_QUEUE: opts.taskQueue, CODEC_SERVER_URL: opts.codecUrl, REMEDIATE_CREDENTIALS: undefined, ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
      ...(where.cwd ? { cwd: where.cwd } : {}),
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.stdin.end(stdin ?? '');
    const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
    const code = await new Promise<number>((resolve) => child.once('close', (c) => resolve(c ?? -1)));
    clearTimeout(timer);
    return { code, stdout, stderr };
  }
  return {
    as: (who, ...args) => withEnv({ REMEDIATE_CREDENTIALS: path.join(credentials, who) }, args),
    withEnv,
    credentials,
    close: () => rmSync(credentials, { recursive: true, force: true }),
  };
}
