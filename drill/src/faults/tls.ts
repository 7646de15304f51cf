/** Self-signed certificates for the drill proxy, made with the openssl CLI. */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, renameSync, rmSync, chmodSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export async function writeCert(dir: string, days: number): Promise<void> {
  // Made beside the target so the final renames stay on one filesystem.
  const tmp = mkdtempSync(path.join(dir, '.tmp-'));
  try {
    await run('openssl', [
      'req',
      '-x509',
      '-nodes',
      '-newkey',
      'rsa:2048',
      '-days',
      String(days),
      '-sha256',
      '-keyout',
      path.join(tmp, 'server.key'),
      '-out',
      path.join(tmp, 'server.crt'),
      '-subj',
      '/CN=alfred.local',
      '-addext',
      'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:alfred.local',
    ]);
    chmodSync(path.join(tmp, 'server.key'), 0o600);
    chmodSync(path.join(tmp, 'server.crt'), 0o644);
    renameSync(path.join(tmp, 'server.key'), path.join(dir, 'server.key'));
    renameSync(path.join(tmp, 'server.crt'), path.join(dir, 'server.crt'));
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** The certificate's notAfter, or null when there is none. */
export async function certNotAfter(dir: string): Promise<Date | null> {
  const crt = path.join(dir, 'server.crt');
  if (!existsSync(crt)) return null;
  const { stdout } = await run('openssl', ['x509', '-enddate', '-noout', '-in', crt]);
  const m = /notAfter=(.*)/.exec(stdout);
  return m ? new Date(m[1]!.trim()) : null;
}
