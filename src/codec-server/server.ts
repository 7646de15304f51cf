/**
 * The codec server: Temporal's remote codec protocol for the Temporal UI and CLI, with the operator
 * authenticated on every call (node:http, no framework; a factory so tests run it on an ephemeral port).
 *
 *   POST /encode, /{namespace}/encode   seal each payload for the caller, then encrypt
 *   POST /decode, /{namespace}/decode   decrypt (seals are left in the metadata, for display)
 *   GET  /login, POST /login, POST /logout   a session cookie for the browser running the UI
 *   GET  /whoami                        the caller's identity
 *   GET  /healthz
 *
 * Callers authenticate with the session cookie, or `Authorization: Bearer` carrying an operator's
 * personal token or an OIDC access token (the UI's "pass access token"). Without one, /encode and
 * /decode answer 401 and nothing is decoded. Bad input is a 4xx, never a 500. Logs carry no secret
 * and no payload content.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLocalJWKSet, createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTVerifyGetKey } from 'jose';
import type { Logger } from 'pino';
import { HttpError, readBody } from '../lib/http-body';
import { createLogger } from '../lib/logger';
import { decryptPayload, PayloadDecryptionError } from '../lib/codec/encryption';
import { encodeWith, sealingCodecs } from '../lib/codec/index';
import { checkPassword, checkToken, SecretsError, type CodecSecrets } from '../lib/codec/secrets';
import type { SealVia } from '../lib/codec/sealed';
import { payloadsFromWire, payloadsToWire } from '../lib/codec/wire';
import type { CodecServerConfig } from './config';
import { createSessionStore } from './sessions';
import { createSlackInteractions, SLACK_BODY_LIMIT, SLACK_PATH, temporalSender, type SendDecision } from './slack';

export const SESSION_COOKIE = 'codec_session';
export const ALLOWED_HEADERS = 'content-type, x-namespace, authorization';
const LOGIN_BODY_LIMIT = 16 * 1024;

export interface Identity {
  name: string;
  via: SealVia;
  /** Session logins only. */
  expiresAt?: string;
}

export interface CreateCodecServerOptions {
  config: CodecServerConfig;
  secrets: CodecSecrets;
  logger?: Logger;
  /** Where Slack decisions go (default: the "decide" update on `config.temporal`, sealed for the operator). */
  sendDecision?: SendDecision;
}

export interface CodecServer {
  listen(port?: number, host?: string): Promise<AddressInfo>;
  close(): Promise<void>;
  /** Base URL once listening, e.g. `http://127.0.0.1:8234`. */
  readonly url: string;
  /** Where logouts are kept (or why only in memory). */
  readonly sessionRevocations: { file?: string; warning?: string };
}

const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;.*)?$/i;
const FORM_TYPE = /^application\/x-www-form-urlencoded\s*(?:;.*)?$/i;
const CODEC_PATH = /^(?:\/([^/]+))?\/(encode|decode)\/?$/;
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function cookieValue(req: IncomingMessage, name: string): string | undefined {
  const header = req.headers.cookie;
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

function loginPage(opts: { error?: string; signedInAs?: Identity; status?: string }): string {
  const body = opts.signedInAs
    ? `<p>Signed in as <b>${escapeHtml(opts.signedInAs.name)}</b> until ${escapeHtml(opts.signedInAs.expiresAt ?? '')}.</p>
<p>The Temporal UI can now decode payloads, and signals and updates you send from it are sealed with your name.</p>
<form method="post" action="/logout"><button type="submit">Sign out</button></form>`
    : `${opts.error ? `<p class="error">${escapeHtml(opts.error)}</p>` : ''}
<form method="post" action="/login">
<label>Name <input name="name" autocomplete="username" required autofocus></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required></label>
<button type="submit">Sign in</button>
</form>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Codec server: sign in</title>
<style>body{font-family:system-ui,sans-serif;max-width:28rem;margin:4rem auto;padding:0 1rem}label{display:block;margin:.6rem 0}input{display:block;width:100%;padding:.3rem}.error{color:#b00}button{margin-top:.6rem}</style>
</head><body><h1>Remediation engine codec server</h1>${opts.status ? `<p>${escapeHtml(opts.status)}</p>` : ''}
${body}
</body></html>`;
}

const HTML_HEADERS = {
  'content-security-policy':
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
  'x-frame-options': 'DENY',
};

export function createCodecServer(opts: CreateCodecServerOptions): CodecServer {
  const { config, secrets } = opts;
  const logger = opts.logger ?? createLogger('codec-server', config.logLevel);
  if (!secrets.seal)
    throw new SecretsError(`secrets file ${secrets.origin} has no seal keys: the codec server cannot seal`);
  if (secrets.operators.length === 0 && !secrets.oidc)
    throw new SecretsError(
      `secrets file ${secrets.origin} has no operators and no oidc: nobody could use the codec server`,
    );
  const allowedOrigins = new Set(config.uiOrigins);
  const sessions = createSessionStore({
    seal: secrets.seal,
    isOperator: (name) => secrets.operators.some((o) => o.name === name),
    ...(config.sessionRevocationsFile ? { revocationsFile: config.sessionRevocationsFile } : {}),
  });
  if (sessions.revocations.warning) logger.warn(sessions.revocations.warning);
  const sender = secrets.slack && !opts.sendDecision ? temporalSender(config, secrets) : undefined;
  const slack = secrets.slack
    ? createSlackInteractions({ settings: secrets.slack, config, logger, send: opts.sendDecision ?? (sender as { send: SendDecision }).send })
    : undefined;
  /** Slack decisions still on their way: a shutdown waits for them. */
  const inflight = new Set<Promise<void>>();
  const loginFailures = new Map<string, { count: number; since: number }>();
  const jwks = createJwks(secrets);
  let baseUrl = '';

  function createJwks(s: CodecSecrets): JWTVerifyGetKey | undefined {
    if (!s.oidc) return undefined;
    if (s.oidc.jwksUrl)
      return createRemoteJWKSet(new URL(s.oidc.jwksUrl), { timeoutDuration: 5000, cooldownDuration: 30_000 });
    const file = s.oidc.jwksFile ?? '';
    try {
      return createLocalJWKSet(JSON.parse(readFileSync(file, 'utf8')) as Parameters<typeof createLocalJWKSet>[0]);
    } catch (err) {
      throw new SecretsError(`oidc.jwksFile ${file} is not a readable JWKS document: ${(err as Error).message}`);
    }
  }

  function sessionOf(req: IncomingMessage): Identity | undefined {
    const token = cookieValue(req, SESSION_COOKIE);
    const s = token ? sessions.verify(token, Date.now()) : undefined;
    return s ? { name: s.name, via: 'session', expiresAt: new Date(s.expiresAtMs).toISOString() } : undefined;
  }

  async function verifyAccessToken(token: string): Promise<Identity> {
    const oidc = secrets.oidc;
    if (!oidc || !jwks)
      throw new HttpError(401, 'this codec server accepts no OIDC access tokens (no oidc in its secrets file)');
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(token, jwks, {
        issuer: oidc.issuer,
        audience: oidc.audience,
        algorithms: oidc.algorithms,
        clockTolerance: oidc.clockToleranceSeconds,
        requiredClaims: ['exp'],
      }));
    } catch (err) {
      if (err instanceof joseErrors.JOSEError) {
        const why =
          err instanceof joseErrors.JWTExpired
            ? 'it has expired'
            : err instanceof joseErrors.JWTClaimValidationFailed
              ? `its "${err.claim}" claim is not accepted (${err.reason})`
              : err instanceof joseErrors.JWSSignatureVerificationFailed
                ? 'its signature does not verify'
                : err instanceof joseErrors.JWKSNoMatchingKey
                  ? 'no key of the issuer matches it'
                  : err.message;
        throw new HttpError(401, `access token refused: ${why}`, {
          'www-authenticate': 'Bearer error="invalid_token"',
        });
      }
      throw new HttpError(401, 'access token refused: it cannot be verified');
    }
    const name = payload[oidc.identityClaim];
    if (typeof name !== 'string' || name.length === 0 || name.length > 256 || /[\p{Cc}]/u.test(name))
      throw new HttpError(401, `access token refused: it has no usable "${oidc.identityClaim}" claim`);
    return { name, via: 'bearer' };
  }

  async function authenticate(req: IncomingMessage): Promise<Identity> {
    const auth = req.headers.authorization;
    if (auth !== undefined) {
      const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
      if (!m?.[1]) throw new HttpError(401, 'Authorization must be "Bearer <token>"', { 'www-authenticate': 'Bearer' });
      const token = m[1];
      if (JWT_SHAPE.test(token)) return verifyAccessToken(token);
      const op = checkToken(secrets, token);
      if (!op)
        throw new HttpError(401, 'unknown personal token', { 'www-authenticate': 'Bearer error="invalid_token"' });
      return { name: op.name, via: 'token' };
    }
    const session = sessionOf(req);
    if (session) return session;
    throw new HttpError(
      401,
      `not signed in: sign in at ${baseUrl || ''}/login (the UI then sends the session cookie), or send Authorization: Bearer <token>`,
      { 'www-authenticate': 'Bearer' },
    );
  }

  /** CORS headers for an allowed Origin; a foreign Origin gets none (the browser then hides the answer). */
  function corsHeaders(req: IncomingMessage): Record<string, string> {
    const origin = req.headers.origin;
    if (!origin || !allowedOrigins.has(origin)) return {};
    return { 'access-control-allow-origin': origin, 'access-control-allow-credentials': 'true', vary: 'Origin' };
  }

  /** Requests carrying credentials must come from no browser page, the UI, or this server's own pages. */
  function checkOrigin(req: IncomingMessage): void {
    const origin = req.headers.origin;
    if (origin === undefined || allowedOrigins.has(origin)) return;
    const host = req.headers.host;
    if (host && (origin === `http://${host}` || origin === `https://${host}`)) return;
    throw new HttpError(403, `origin ${origin} is not allowed (uiOrigins in the codec server settings)`);
  }

  function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    if (res.headersSent) return;
    const text = JSON.stringify(body);
    res.writeHead(status, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(text),
      'cache-control': 'no-store',
      ...headers,
    });
    res.end(text);
  }

  function sendHtml(res: ServerResponse, status: number, html: string, headers: Record<string, string> = {}): void {
    res.writeHead(status, {
      'content-type': 'text/html; charset=utf-8',
      'content-length': Buffer.byteLength(html),
      'cache-control': 'no-store',
      ...HTML_HEADERS,
      ...headers,
    });
    res.end(html);
  }

  function cookie(value: string, maxAgeSeconds: number): string {
    return `${SESSION_COOKIE}=${value}; Path=/; HttpOnly; SameSite=Lax; Max-Age=${maxAgeSeconds}${config.secureCookie ? '; Secure' : ''}`;
  }

  function parseJson(bytes: Buffer): unknown {
    try {
      return JSON.parse(bytes.toString('utf8'));
    } catch (err) {
      throw new HttpError(400, `body is not valid JSON: ${(err as Error).message}`);
    }
  }

  async function handleLogin(req: IncomingMessage, res: ServerResponse, log: Logger, remote: string): Promise<void> {
    checkOrigin(req);
    const type = req.headers['content-type'] ?? '';
    const form = FORM_TYPE.test(type);
    if (!form && !JSON_TYPE.test(type)) {
      req.resume();
      throw new HttpError(415, 'send the login as application/json {"name","password"} or as a form');
    }
    const body = await readBody(req, LOGIN_BODY_LIMIT);
    if (body.tooLarge) throw new HttpError(413, `login body is larger than ${LOGIN_BODY_LIMIT} bytes`);
    let name: unknown;
    let password: unknown;
    if (form) {
      const params = new URLSearchParams(body.bytes.toString('utf8'));
      [name, password] = [params.get('name'), params.get('password')];
    } else {
      const json = parseJson(body.bytes);
      if (!json || typeof json !== 'object' || Array.isArray(json))
        throw new HttpError(400, 'body must be {"name": "...", "password": "..."}');
      ({ name, password } = json as Record<string, unknown>);
    }
    if (typeof name !== 'string' || !name || typeof password !== 'string' || !password) {
      const msg = 'name and password are required';
      if (form) return sendHtml(res, 400, loginPage({ error: msg }));
      throw new HttpError(400, msg);
    }
    const now = Date.now();
    const key = `${remote}|${name}`;
    const failures = loginFailures.get(key);
    if (failures && now - failures.since > config.loginWindow) loginFailures.delete(key);
    const current = loginFailures.get(key);
    if (current && current.count >= config.maxLoginFailures) {
      const retry = Math.ceil((current.since + config.loginWindow - now) / 1000);
      log.warn({ operator: name, remote }, 'login refused: too many failures');
      throw new HttpError(429, `too many failed logins for ${name}; try again in ${retry} s`, {
        'retry-after': String(retry),
      });
    }
    const op = await checkPassword(secrets, name, password.slice(0, 1024));
    if (!op) {
      loginFailures.set(key, { count: (current?.count ?? 0) + 1, since: current?.since ?? now });
      log.warn({ operator: name, remote }, 'login failed');
      const msg = 'wrong name or password';
      if (form) return sendHtml(res, 401, loginPage({ error: msg }));
      throw new HttpError(401, msg);
    }
    loginFailures.delete(key);
    const expiresAtMs = now + config.sessionTtl;
    const { token: id } = sessions.issue(op.name, expiresAtMs);
    const identity: Identity = { name: op.name, via: 'session', expiresAt: new Date(expiresAtMs).toISOString() };
    log.info({ operator: op.name, remote, expiresAt: identity.expiresAt }, 'signed in');
    const headers = { 'set-cookie': cookie(id, Math.floor(config.sessionTtl / 1000)) };
    if (form) return sendHtml(res, 200, loginPage({ signedInAs: identity }), headers);
    send(res, 200, identity, { ...corsHeaders(req), ...headers });
  }

  async function handleLogout(req: IncomingMessage, res: ServerResponse, log: Logger): Promise<void> {
    checkOrigin(req);
    req.resume();
    const id = cookieValue(req, SESSION_COOKIE);
    const s = id ? sessions.revoke(id, Date.now()) : undefined;
    if (s) log.info({ operator: s.name }, 'signed out');
    const headers = { 'set-cookie': cookie('', 0) };
    if ((req.headers.accept ?? '').includes('text/html'))
      return sendHtml(res, 200, loginPage({ status: 'Signed out.' }), headers);
    send(res, 200, { signedOut: Boolean(s) }, { ...corsHeaders(req), ...headers });
  }

  async function handleCodec(
    op: 'encode' | 'decode',
    req: IncomingMessage,
    res: ServerResponse,
    log: Logger,
    done: (fields: Record<string, unknown>) => void,
  ): Promise<void> {
    checkOrigin(req);
    let identity: Identity;
    try {
      identity = await authenticate(req);
    } catch (err) {
      req.resume();
      throw err;
    }
    done({ operator: identity.name, via: identity.via });
    const body = await readBody(req, config.bodyLimitBytes);
    if (body.tooLarge) throw new HttpError(413, `body is larger than the limit of ${config.bodyLimitBytes} bytes`);
    const type = req.headers['content-type'];
    if (!type || !JSON_TYPE.test(type))
      throw new HttpError(415, `content-type must be application/json, got ${type ? `"${type}"` : 'none'}`);
    const wire = payloadsFromWire(parseJson(body.bytes));
    if (!wire.ok) throw new HttpError(400, wire.error);
    done({ payloads: wire.payloads.length });
    let out;
    if (op === 'encode') {
      out = await encodeWith(sealingCodecs(secrets, identity.name, identity.via), wire.payloads);
    } else {
      out = wire.payloads.map((p, i) => {
        try {
          return decryptPayload(p, secrets.encryption);
        } catch (err) {
          if (err instanceof PayloadDecryptionError) throw new HttpError(422, `payloads[${i}]: ${err.message}`);
          throw err;
        }
      });
    }
    log.debug({ op, payloads: out.length }, 'codec call');
    send(res, 200, payloadsToWire(out), corsHeaders(req));
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const t0 = process.hrtime.bigint();
    const reqId = randomUUID();
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://codec');
    } catch {
      url = new URL('http://codec/');
    }
    const remote = req.socket.remoteAddress ?? '';
    const log = logger.child({ reqId });
    const fields: Record<string, unknown> = {};
    res.setHeader('x-request-id', reqId);
    res.on('finish', () => {
      const ms = Math.round(Number(process.hrtime.bigint() - t0) / 1e6);
      log.info(
        { method: req.method, path: url.pathname, status: res.statusCode, ms, origin: req.headers.origin, ...fields },
        'request',
      );
    });
    try {
      const codec = CODEC_PATH.exec(url.pathname);
      if (req.method === 'OPTIONS') {
        req.resume();
        const origin = req.headers.origin;
        if (origin !== undefined && !allowedOrigins.has(origin))
          throw new HttpError(403, `origin ${origin} is not allowed (uiOrigins in the codec server settings)`);
        res.writeHead(204, {
          ...corsHeaders(req),
          'access-control-allow-methods': 'POST, GET, OPTIONS',
          'access-control-allow-headers': ALLOWED_HEADERS,
          'access-control-max-age': '600',
          ...(req.headers['access-control-request-private-network'] === 'true'
            ? { 'access-control-allow-private-network': 'true' }
            : {}),
          allow: 'POST, GET, OPTIONS',
        });
        res.end();
        return;
      }
      if (url.pathname === SLACK_PATH) {
        req.on('error', () => undefined);
        if (!slack) {
          req.resume();
          throw new HttpError(404, 'Slack approvals are not configured: no slack section in the secrets file');
        }
        if (req.method !== 'POST') {
          req.resume();
          throw new HttpError(405, `${req.method} not allowed; use POST`, { allow: 'POST' });
        }
        // Unsigned requests are refused before their body is read.
        const unsigned = slack.precheck(req.headers);
        if (unsigned) req.resume();
        const answer = unsigned ?? (await slackRequest(req, slack));
        if (answer.after) {
          inflight.add(answer.after);
          void answer.after.finally(() => inflight.delete(answer.after as Promise<void>));
        }
        if (answer.json) return send(res, answer.status, answer.json);
        res.writeHead(answer.status).end();
        return;
      }
      if (codec) {
        if (fields.namespace === undefined) fields.namespace = codec[1] ?? req.headers['x-namespace'];
        if (req.method !== 'POST') {
          req.resume();
          throw new HttpError(405, `${req.method} not allowed; use POST`, { allow: 'POST, OPTIONS' });
        }
        await handleCodec(codec[2] as 'encode' | 'decode', req, res, log, (f) => Object.assign(fields, f));
        return;
      }
      switch (url.pathname) {
        case '/login':
          if (req.method === 'GET' || req.method === 'HEAD') {
            req.resume();
            const who = sessionOf(req);
            return sendHtml(res, 200, loginPage(who ? { signedInAs: who } : {}));
          }
          if (req.method === 'POST') return await handleLogin(req, res, log, remote);
          break;
        case '/logout':
          if (req.method === 'POST') return await handleLogout(req, res, log);
          break;
        case '/whoami':
          if (req.method === 'GET') {
            req.resume();
            checkOrigin(req);
            const who = await authenticate(req);
            Object.assign(fields, { operator: who.name, via: who.via });
            return send(res, 200, who, corsHeaders(req));
          }
          break;
        case '/healthz':
          if (req.method === 'GET' || req.method === 'HEAD') {
            req.resume();
            return send(res, 200, { status: 'ok' });
          }
          break;
        default:
          req.resume();
          throw new HttpError(404, `no such endpoint: ${url.pathname}; the codec is at POST /encode and /decode`);
      }
      req.resume();
      throw new HttpError(405, `${req.method} not allowed on ${url.pathname}`);
    } catch (err) {
      if (err instanceof HttpError) {
        fields.error = err.message;
        send(res, err.status, { error: err.message }, { ...corsHeaders(req), ...err.headers });
        return;
      }
      log.error({ err: { type: (err as Error)?.name, message: (err as Error)?.message } }, 'unexpected error');
      send(res, 500, { error: 'internal error' }, corsHeaders(req));
    }
  }

  async function slackRequest(req: IncomingMessage, s: NonNullable<typeof slack>): Promise<ReturnType<typeof s.handle>> {
    const body = await readBody(req, SLACK_BODY_LIMIT);
    if (body.tooLarge) throw new HttpError(413, `a Slack interaction is at most ${SLACK_BODY_LIMIT} bytes`);
    return s.handle(req.headers, body.bytes);
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      logger.error({ err: { message: (err as Error)?.message } }, 'request handler failed');
      if (!res.headersSent) send(res, 500, { error: 'internal error' });
    });
  });
  server.requestTimeout = 30_000;
  server.headersTimeout = 10_000;

  return {
    get url() {
      return baseUrl;
    },
    get sessionRevocations() {
      return sessions.revocations;
    },
    listen(port = config.listen.port, host = config.listen.host) {
      return new Promise<AddressInfo>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          const addr = server.address() as AddressInfo;
          baseUrl = `http://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}`;
          logger.info(
            {
              url: baseUrl,
              uiOrigins: [...allowedOrigins],
              operators: secrets.operators.length,
              oidc: secrets.oidc ? secrets.oidc.issuer : false,
              encryptionKey: secrets.encryption.active,
              sealKey: secrets.seal?.active,
            },
            'codec server listening',
          );
          resolve(addr);
        });
      });
    },
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
      await Promise.allSettled([...inflight]);
      await sender?.close();
    },
  };
}
