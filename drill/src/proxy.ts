/** Role `proxy`: TLS termination on TLS_PORT in front of the api. SIGHUP reloads the certificate. */
import { request as httpRequest } from 'node:http';
import { createServer, type Server } from 'node:https';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { DrillConfig } from './config';
import { clientIp } from './http';
import { errText, log } from './log';

function readPair(dir: string): { cert: Buffer; key: Buffer } {
  return { cert: readFileSync(path.join(dir, 'server.crt')), key: readFileSync(path.join(dir, 'server.key')) };
}

export function startProxy(cfg: DrillConfig): void {
  const certFile = path.join(cfg.tlsDir, 'server.crt');
  const keyFile = path.join(cfg.tlsDir, 'server.key');
  const missing = [certFile, keyFile].filter((f) => !existsSync(f));
  if (missing.length) {
    log('error', 'TLS certificate or key missing; cannot start the proxy', {
      missing: missing.join(','),
      tls_dir: cfg.tlsDir,
    });
    process.exit(1);
  }
  let server: Server;
  try {
    server = createServer(readPair(cfg.tlsDir), (req, res) => {
      const started = Date.now();
      const ip = clientIp(req);
      const prior = req.headers['x-forwarded-for'];
      const headers = {
        ...req.headers,
        'x-forwarded-for': prior
          ? `${Array.isArray(prior) ? prior.join(', ') : prior}, ${req.socket.remoteAddress ?? ''}`
          : ip,
        'x-forwarded-proto': 'https',
      };
      const upstream = httpRequest(
        { host: cfg.apiHost, port: cfg.port, method: req.method, path: req.url, headers },
        (up) => {
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
          up.on('end', () =>
            log('info', undefined, {
              method: req.method,
              path: (req.url ?? '/').split('?')[0],
              status: up.statusCode,
              duration_ms: Date.now() - started,
              client_ip: ip,
              upstream: `${cfg.apiHost}:${cfg.port}`,
            }),
          );
        },
      );
      upstream.on('error', (err) => {
        log('error', 'upstream error', {
          err: errText(err),
          path: (req.url ?? '/').split('?')[0],
          status: 502,
          client_ip: ip,
        });
        if (!res.headersSent) res.writeHead(502, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: 'bad gateway' }));
      });
      req.pipe(upstream);
    });
  } catch (err) {
    log('error', 'TLS certificate or key unreadable; cannot start the proxy', {
      err: errText(err),
      tls_dir: cfg.tlsDir,
    });
    process.exit(1);
  }
  server.on('tlsClientError', (err) => log('warn', 'tls handshake failed', { err: errText(err) }));
  server.listen(cfg.tlsPort, () =>
    log('info', 'alfred tls proxy listening', { port: cfg.tlsPort, upstream: cfg.port }),
  );
  process.on('SIGHUP', () => {
    try {
      server.setSecureContext(readPair(cfg.tlsDir));
      log('info', 'tls certificate reloaded');
    } catch (err) {
      log('error', 'tls certificate reload failed', { err: errText(err) });
    }
  });
  process.on('SIGTERM', () => {
    server.close();
    setTimeout(() => process.exit(0), 500).unref();
  });
}
