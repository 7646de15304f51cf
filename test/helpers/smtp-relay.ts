/**
 * A real SMTP relay for tests (smtp-server on 127.0.0.1, a free port): STARTTLS with the certificate
 * it is given, AUTH PLAIN / LOGIN against one user, as a submission relay on port 587 speaks.
 * It records what it saw, so a test can tell what the probe really sent (and what it never sent).
 */
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';

export interface RelaySeen {
  /** Every AUTH attempt: the mechanism, the user, whether it came over TLS and whether it passed. */
  auths: Array<{ method: string; user: string; secure: boolean; ok: boolean }>;
  mailFrom: string[];
  rcptTo: string[];
  /** Sessions that were upgraded with STARTTLS. */
  tlsSessions: number;
}

export interface TestRelay {
  port: number;
  seen: RelaySeen;
  close(): Promise<void>;
}

export async function startTestRelay(opts: {
  /** The relay's certificate and key (PEM); without them no STARTTLS is offered. */
  tls?: { cert: string; key: string };
  /** Mechanisms offered; none: no AUTH at all. */
  authMethods?: Array<'PLAIN' | 'LOGIN'>;
  user?: string;
  password?: string;
}): Promise<TestRelay> {
  const seen: RelaySeen = { auths: [], mailFrom: [], rcptTo: [], tlsSessions: 0 };
  const auth = (opts.authMethods ?? []).length > 0;
  const server = new SMTPServer({
    name: 'relay.test.local',
    banner: 'test submission relay',
    ...(opts.tls ? { key: opts.tls.key, cert: opts.tls.cert } : {}),
    disabledCommands: [...(opts.tls ? [] : ['STARTTLS']), ...(auth ? [] : ['AUTH'])],
    ...(auth ? { authMethods: opts.authMethods } : { authOptional: true }),
    // AUTH is offered in plain text too when there is no TLS: the probe must be the one that refuses.
    allowInsecureAuth: !opts.tls,
    logger: false,
    onSecure(_socket, _session, cb) {
      seen.tlsSessions += 1;
      cb();
    },
    onAuth(a, session, cb) {
      const ok = a.username === opts.user && a.password === opts.password;
      seen.auths.push({ method: a.method, user: a.username ?? '', secure: session.secure, ok });
      if (!ok) {
        cb(Object.assign(new Error('5.7.8 Authentication credentials invalid'), { responseCode: 535 }));
        return;
      }
      cb(null, { user: a.username });
    },
    onMailFrom(address, _session, cb) {
      seen.mailFrom.push(address.address);
      cb();
    },
    onRcptTo(address, _session, cb) {
      seen.rcptTo.push(address.address);
      cb();
    },
  });
  server.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.server.address() as AddressInfo).port;
  return {
    port,
    seen,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
