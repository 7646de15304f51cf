/**
 * A TLS terminator in front of a Docker API unix socket, as a process of its own, so that a test can
 * start it in a network namespace (test/helpers/netns.ts) and the API sits on that namespace's
 * address: `node --import tsx test/helpers/tls-terminator.ts --listen <ip> --port <n> --socket <path>
 * --cert <pem> --key <pem> --ca <pem>`. It demands a client certificate signed by `--ca` and pipes each
 * verified connection, unread, to the socket (a unix socket is a path: reachable from any network
 * namespace).
 *
 * It reports on stdout, one JSON line per event: `{"event":"listening","address","port"}` once,
 * `{"event":"accepted","peer"}` per verified connection, `{"event":"refused","error"}` per handshake
 * it refused (no peer: the connection is gone by then). It exits when its stdin closes, so a test
 * process that dies does not leave it listening.
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { parseArgs } from 'node:util';

export type TerminatorEvent =
  | { event: 'listening'; address: string; port: number }
  | { event: 'accepted'; peer: string }
  | { event: 'refused'; error: string };

// Pipes are written synchronously on Linux: a line is out before the connection it reports goes on.
const report = (e: TerminatorEvent): void => void process.stdout.write(`${JSON.stringify(e)}\n`);

function main(): void {
  const { values } = parseArgs({
    options: {
      listen: { type: 'string' },
      port: { type: 'string' },
      socket: { type: 'string' },
      cert: { type: 'string' },
      key: { type: 'string' },
      ca: { type: 'string' },
    },
  });
  const { listen, port, socket, cert, key, ca } = values;
  if (!listen || !port || !socket || !cert || !key || !ca) {
    throw new Error(
      'usage: tls-terminator --listen <ip> --port <n> --socket <path> --cert <pem> --key <pem> --ca <pem>',
    );
  }
  const open = new Set<net.Socket>();
  const server = tls.createServer(
    {
      cert: readFileSync(cert),
      key: readFileSync(key),
      ca: [readFileSync(ca)],
      requestCert: true,
      rejectUnauthorized: true,
    },
    (conn) => {
      report({ event: 'accepted', peer: conn.remoteAddress ?? '?' });
      const upstream = net.connect(socket);
      conn.pipe(upstream).pipe(conn);
      // Either side failing or closing ends the other.
      for (const s of [conn, upstream]) {
        open.add(s);
        s.on('error', () => undefined).once('close', () => {
          open.delete(s);
          conn.destroy();
          upstream.destroy();
        });
      }
    },
  );
  server.on('tlsClientError', (err) => report({ event: 'refused', error: err.message }));
  const stop = () => {
    for (const s of open) s.destroy();
    server.close(() => process.exit(0));
  };
  server.on('error', (err) => {
    console.error(err);
    process.exit(1);
  });
  process.once('SIGTERM', stop);
  process.stdin.on('end', stop).on('error', stop).resume();
  server.listen(Number(port), listen, () => {
    const bound = server.address() as net.AddressInfo;
    report({ event: 'listening', address: bound.address, port: bound.port });
  });
}

try {
  main();
} catch (err) {
  console.error(err);
  process.exit(1);
}
