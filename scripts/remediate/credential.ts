/**
 * The credential: a personal token (scripts/codec-secrets.ts add-token) in a file only its owner can
 * read, $REMEDIATE_CREDENTIALS or ~/.config/remediate/credentials. `remediate login` writes it.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { UsageError } from './errors';

/** Where the credential lives: $REMEDIATE_CREDENTIALS (relative to the caller's directory), else ~/.config/remediate/credentials. */
export function credentialsFile(env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(env.REMEDIATE_CREDENTIALS || path.join(homedir(), '.config', 'remediate', 'credentials'));
}

/** The personal token in the credential file; refused when missing, empty, or readable by others. */
export function readCredential(file = credentialsFile()): string {
  if (!existsSync(file))
    throw new UsageError(
      `no credential: ${file} does not exist. Sign in with \`remediate login\` (it reads your personal token from stdin)`,
    );
  const st = statSync(file);
  if (!st.isFile()) throw new UsageError(`credential ${file} is not a file`);
  const mode = st.mode & 0o777;
  if (mode & 0o077)
    throw new UsageError(
      `credential ${file} can be read by others (mode ${mode.toString(8).padStart(4, '0')}): chmod 600 ${file}`,
    );
  const token =
    readFileSync(file, 'utf8')
      .split(/\r?\n/)
      .find((l) => l.trim())
      ?.trim() ?? '';
  if (!token) throw new UsageError(`credential ${file} is empty: sign in again with \`remediate login\``);
  return token;
}

/** Writes the credential file: mode 600 in a directory of mode 700, replaced atomically. */
export function writeCredential(file: string, token: string): void {
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${token}\n`, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, file);
}

/** A token from stdin: typed at a prompt (not echoed), or piped (the first line). */
export async function readTokenFromStdin(): Promise<string> {
  const stdin = process.stdin;
  if (!stdin.isTTY)
    return (
      readFileSync(0, 'utf8')
        .split(/\r?\n/)
        .find((l) => l.trim()) ?? ''
    ).trim();
  process.stderr.write('Personal token: ');
  stdin.setRawMode(true);
  stdin.resume();
  stdin.setEncoding('utf8');
  return new Promise((resolve, reject) => {
    let value = '';
    const done = (err?: Error) => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.off('data', onData);
      process.stderr.write('\n');
      if (err) reject(err);
      else resolve(value.trim());
    };
    const onData = (chunk: string) => {
      for (const c of chunk) {
        if (c === '\r' || c === '\n' || c === '\u0004') return done();
        if (c === '\u0003') return done(new UsageError('cancelled'));
        if (c === '\u007f' || c === '\b') value = value.slice(0, -1);
        else value += c;
      }
    };
    stdin.on('data', onData);
  });
}
