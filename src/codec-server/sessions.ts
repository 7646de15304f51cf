/**
 * Login sessions that outlive the process and work across replicas: the cookie carries the session
 * itself (who, a random id, when it expires, which key signed it), signed with HMAC-SHA256 under a key
 * derived from the secrets file's seal key. Any codec server with the same secrets file accepts it;
 * a restart signs nobody out.
 *
 * A session ends when it expires, when its operator leaves the secrets file, when the seal key that
 * signed it leaves the ring (rotation), or at logout: logged-out session ids go to the revocations file
 * (one JSON object per line), which every replica re-reads when it changes. Without that file (a
 * read-only disk), logouts hold for this process only, and the server says so at start.
 */
import { createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { appendFileSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { KeyRing } from '../lib/codec/secrets';

const VERSION = 's1';
const ID = /^[A-Za-z0-9_-]{22}$/;
/** The longest cookie value looked at. */
const MAX_TOKEN = 1024;

export interface Session {
  name: string;
  id: string;
  expiresAtMs: number;
}

export interface SessionStore {
  /** A new session for `name` until `expiresAtMs`, and the cookie value that carries it. */
  issue(name: string, expiresAtMs: number): { token: string; session: Session };
  /** The session a cookie value carries, if its signature holds, it has not expired and was not revoked. */
  verify(token: string, now: number): Session | undefined;
  /** Ends the session (logout); returns it if it was live. */
  revoke(token: string, now: number): Session | undefined;
  /** Where logouts are kept, or why they are kept in memory only. */
  readonly revocations: { file?: string; warning?: string };
}

function sessionKey(key: Buffer, kid: string): Buffer {
  return Buffer.from(hkdfSync('sha256', key, 'remediation-engine codec-server session', `session:${kid}`, 32));
}

export function createSessionStore(opts: {
  seal: KeyRing;
  /** Operators who may hold a session: one removed from the secrets file is signed out. */
  isOperator: (name: string) => boolean;
  /** JSON lines of revoked session ids; undefined keeps them in memory. */
  revocationsFile?: string;
}): SessionStore {
  const keys = new Map<string, Buffer>();
  for (const [kid, key] of opts.seal.keys) keys.set(kid, sessionKey(key, kid));
  const revoked = new Map<string, number>();
  let file = opts.revocationsFile;
  let warning: string | undefined;
  let seen = '';

  if (file) {
    try {
      mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
      load(Date.now());
      compact(Date.now());
    } catch (err) {
      warning = `revocations file ${file} is not usable (${(err as Error).message}): logouts hold for this process only`;
      file = undefined;
    }
  }

  /** Re-reads the revocations file if another replica (or this one) changed it. */
  function load(now: number): void {
    if (!file) return;
    let stamp: string;
    try {
      const st = statSync(file);
      stamp = `${st.mtimeMs}:${st.size}`;
    } catch {
      return; // not written yet
    }
    if (stamp === seen) return;
    seen = stamp;
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      try {
        const r = JSON.parse(line) as { id?: unknown; expiresAtMs?: unknown };
        if (typeof r.id === 'string' && typeof r.expiresAtMs === 'number' && r.expiresAtMs > now) revoked.set(r.id, r.expiresAtMs);
      } catch {
        // a torn or foreign line: skipped
      }
    }
  }

  /** Rewrites the file with the revocations that still matter (expired sessions need none). */
  function compact(now: number): void {
    if (!file) return;
    for (const [id, exp] of revoked) if (exp <= now) revoked.delete(id);
    writeFileSync(file, [...revoked].map(([id, expiresAtMs]) => `${JSON.stringify({ id, expiresAtMs })}\n`).join(''), { mode: 0o600 });
  }

  function mac(kid: string, body: string): Buffer {
    return createHmac('sha256', keys.get(kid) as Buffer)
      .update(`${VERSION}.${kid}.${body}`)
      .digest();
  }

  function parse(token: string): Session | undefined {
    if (token.length > MAX_TOKEN) return undefined;
    const parts = token.split('.');
    if (parts.length !== 4 || parts[0] !== VERSION) return undefined;
    const [, kid, body, sig] = parts as [string, string, string, string];
    if (!keys.has(kid)) return undefined;
    const given = Buffer.from(sig, 'base64url');
    const want = mac(kid, body);
    if (given.length !== want.length || !timingSafeEqual(given, want)) return undefined;
    let claims: { n?: unknown; s?: unknown; e?: unknown };
    try {
      claims = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as typeof claims;
    } catch {
      return undefined;
    }
    if (typeof claims.n !== 'string' || typeof claims.s !== 'string' || !ID.test(claims.s) || typeof claims.e !== 'number') return undefined;
    return { name: claims.n, id: claims.s, expiresAtMs: claims.e };
  }

  return {
    issue(name, expiresAtMs) {
      const session: Session = { name, id: randomBytes(16).toString('base64url'), expiresAtMs };
      const kid = opts.seal.active;
      const body = Buffer.from(JSON.stringify({ n: session.name, s: session.id, e: session.expiresAtMs })).toString('base64url');
      return { session, token: `${VERSION}.${kid}.${body}.${mac(kid, body).toString('base64url')}` };
    },
    verify(token, now) {
      const s = parse(token);
      if (!s || s.expiresAtMs <= now || !opts.isOperator(s.name)) return undefined;
      load(now);
      return revoked.has(s.id) ? undefined : s;
    },
    revoke(token, now) {
      const s = this.verify(token, now);
      if (!s) return undefined;
      revoked.set(s.id, s.expiresAtMs);
      if (file) {
        try {
          appendFileSync(file, `${JSON.stringify({ id: s.id, expiresAtMs: s.expiresAtMs })}\n`, { mode: 0o600 });
        } catch {
          // kept in memory: this process still refuses it
        }
      }
      return s;
    },
    get revocations() {
      return { ...(file ? { file } : {}), ...(warning ? { warning } : {}) };
    },
  };
}
