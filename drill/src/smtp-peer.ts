/**
 * The drill's SMTP relays as one process: the primary and the sandbox relay, each a real SMTP server
 * (smtp-server) on 127.0.0.1. Both accept any sender and recipient and discard message bodies; the
 * primary refuses while the `smtp-refuse` fault is on (read per connection from the refusal file).
 * Started and stopped by scripts/stack.sh:  tsx drill/src/smtp-peer.ts
 */
import path from 'node:path';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';
import { readRefusal, relayPorts, type RelayName } from './smtp-relays';

const stackDir = path.resolve(process.env.STACK_DIR ?? path.join(__dirname, '..', '..', '.stack'));

function log(relay: RelayName, event: string): void {
  console.log(JSON.stringify({ at: new Date().toISOString(), relay, event }));
}

/** A refusal carries its SMTP reply code (smtp-server sends `responseCode message`). */
function refusal(code: number, message: string): Error & { responseCode: number } {
  return Object.assign(new Error(message), { responseCode: code });
}

function options(relay: RelayName): SMTPServerOptions {
  const refusing = (at: 'connect' | 'rcpt') => relay === 'primary' && readRefusal(stackDir) === at;
  return {
    name: `${relay}.smtp.alfred.local`,
    banner: relay === 'primary' ? 'alfred primary relay ready' : 'alfred sandbox relay (captures mail, delivers none)',
    // Plain SMTP on loopback: no certificate to manage, and no credentials to check.
    disabledCommands: ['STARTTLS', 'AUTH'],
    size: 10 * 1024 * 1024,
    logger: false,
    onConnect(session, cb) {
      if (refusing('connect')) {
        log(relay, `refused connection from ${session.remoteAddress}`);
        cb(refusal(554, '5.7.1 Service unavailable; sending suspended for this account'));
        return;
      }
      cb();
    },
    onRcptTo(address, _session, cb) {
      if (refusing('rcpt')) {
        log(relay, `refused recipient ${address.address}`);
        cb(refusal(550, '5.7.1 Recipient rejected: sender is on the suppression list'));
        return;
      }
      cb();
    },
    onData(stream, session, cb) {
      stream.on('end', () => {
        log(relay, `accepted a message for ${session.envelope.rcptTo.length} recipient(s)`);
        cb();
      });
      stream.resume();
    },
  };
}

async function listen(relay: RelayName, port: number): Promise<SMTPServer> {
  const server = new SMTPServer(options(relay));
  server.on('error', (err) => log(relay, `error: ${err.message}`));
  await new Promise<void>((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  log(relay, `listening on 127.0.0.1:${port}`);
  return server;
}

async function main(): Promise<void> {
  const ports = relayPorts();
  const servers = [await listen('primary', ports.primary), await listen('sandbox', ports.sandbox)];
  const stop = () => {
    for (const s of servers) s.close(() => undefined);
    // Open sessions do not hold up a stop.
    setTimeout(() => process.exit(0), 1000).unref();
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
