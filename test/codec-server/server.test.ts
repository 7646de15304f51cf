/**
 * The codec server over real HTTP on an ephemeral port: authentication (session cookie, personal
 * token, OIDC access tokens checked against a JWKS served by this test), sealing on /encode and
 * decryption on /decode, CORS for the Temporal UI, and bad input answered with a 4xx.
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import http, { type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import { decodeArrayFromPayloads, loadDataConverter } from '@temporalio/common/lib/internal-non-workflow';
import { SignJWT } from 'jose';
import { CodecServerConfigSchema } from '../../src/codec-server/config';
import { createCodecServer, type CodecServer } from '../../src/codec-server/server';
import { encodeWith, engineCodecs } from '../../src/lib/codec';
import { encryptPayload } from '../../src/lib/codec/encryption';
import { RemoteCodec, whoami } from '../../src/lib/codec/remote';
import { hashPassword, newKey, newToken, parseSecrets, type CodecSecrets } from '../../src/lib/codec/secrets';
import { payloadsFromWire, payloadsToWire } from '../../src/lib/codec/wire';
import { testLogger } from '../helpers/test-logs';

const UI = 'http://127.0.0.1:8233';
const FOREIGN = 'http://evil.example';
const ISSUER = 'https://idp.test';
const AUDIENCE = 'temporal-ui';
const APPROVAL = { stepId: 'evict-cache', approver: 'alice' };

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  json: Record<string, unknown>;
}

function request(
  base: string,
  method: string,
  path: string,
  opts: { headers?: Record<string, string>; body?: string | Buffer } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(new URL(path, base), { method, headers: opts.headers ?? {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        let json: Record<string, unknown> = {};
        try {
          json = JSON.parse(body) as Record<string, unknown>;
        } catch {
          // HTML or empty
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json });
      });
    });
    req.on('error', reject);
    if (opts.body !== undefined) req.write(opts.body);
    req.end();
  });
}

const JSON_HEADERS = { 'content-type': 'application/json' };
const wireOf = (values: unknown[]) =>
  JSON.stringify(payloadsToWire(values.map((v) => defaultPayloadConverter.toPayload(v))));

function payloadsOf(a: Answer): Payload[] {
  const parsed = payloadsFromWire(a.json);
  if (!parsed.ok) throw new Error(`not a payloads body (${a.status}): ${a.body}`);
  return parsed.payloads;
}

const text = (b: Uint8Array | null | undefined) => Buffer.from(b ?? new Uint8Array()).toString('utf8');

function rsaKey(): { privateKey: KeyObject; publicJwk: Record<string, unknown> } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { privateKey, publicJwk: publicKey.export({ format: 'jwk' }) as Record<string, unknown> };
}

const idpKey = rsaKey();
const otherKey = rsaKey();
const carolToken = newToken();

/** Where this file's codec servers keep logouts. */
const stateDir = mkdtempSync(path.join(tmpdir(), 'codec-server-test-'));
const REVOCATIONS = path.join(stateDir, 'revoked-sessions.jsonl');
let jwksServer: http.Server;
let jwksRequests = 0;
let secrets: CodecSecrets;
let server: CodecServer;
let base: string;

function accessToken(
  claims: Record<string, unknown> = {},
  opts: { key?: KeyObject; audience?: string; expiresAt?: number; issuer?: string } = {},
): Promise<string> {
  return new SignJWT({ email: 'dave@example.com', ...claims })
    .setProtectedHeader({ alg: 'RS256', kid: 'idp-1' })
    .setIssuer(opts.issuer ?? ISSUER)
    .setAudience(opts.audience ?? AUDIENCE)
    .setIssuedAt()
    .setExpirationTime(opts.expiresAt ?? Math.floor(Date.now() / 1000) + 600)
    .sign(opts.key ?? idpKey.privateKey);
}

async function startCodec(overrides: Record<string, unknown> = {}, withSecrets = secrets): Promise<{ server: CodecServer; base: string }> {
  const config = CodecServerConfigSchema.parse({ listen: { port: 0 }, uiOrigins: [UI], sessionRevocationsFile: REVOCATIONS, ...overrides });
  // Logged where the secrets scan reads (.stack/logs/test-codec-server.log): logins carry passwords and tokens.
  const s = createCodecServer({ config, secrets: withSecrets, logger: testLogger('codec-server') });
  await s.listen(0, '127.0.0.1');
  return { server: s, base: s.url };
}

async function login(b = base, name = 'alice', password = 'correct horse battery'): Promise<Answer> {
  return request(b, 'POST', '/login', { headers: JSON_HEADERS, body: JSON.stringify({ name, password }) });
}

function sessionCookie(a: Answer): string {
  const set = a.headers['set-cookie']?.[0] ?? '';
  return set.split(';')[0] ?? '';
}

beforeAll(async () => {
  jwksServer = http.createServer((req, res) => {
    jwksRequests += 1;
    const body = JSON.stringify({ keys: [{ ...idpKey.publicJwk, kid: 'idp-1', alg: 'RS256', use: 'sig' }] });
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(body);
  });
  await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', resolve));
  const jwksUrl = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/jwks`;
  secrets = parseSecrets({
    encryption: { active: 'k1', keys: { k1: newKey() } },
    seal: { active: 's1', keys: { s1: newKey() } },
    operators: [
      { name: 'alice', password: await hashPassword('correct horse battery') },
      { name: 'carol', token: carolToken.stored },
    ],
    oidc: { issuer: ISSUER, audience: AUDIENCE, jwksUrl, identityClaim: 'email' },
  });
  ({ server, base } = await startCodec());
});

afterAll(async () => {
  await server?.close();
  await new Promise<void>((resolve) => jwksServer?.close(() => resolve()));
  rmSync(stateDir, { recursive: true, force: true });
});

describe('without credentials', () => {
  test.each(['/encode', '/decode', '/default/decode'])('POST %s is 401 and decodes nothing', async (path) => {
    const encrypted = encryptPayload(defaultPayloadConverter.toPayload(APPROVAL), secrets.encryption);
    const a = await request(base, 'POST', path, {
      headers: JSON_HEADERS,
      body: JSON.stringify(payloadsToWire([encrypted])),
    });
    expect(a.status).toBe(401);
    expect(a.json.error).toMatch(/not signed in/);
    expect(a.json.payloads).toBeUndefined();
    expect(a.body).not.toContain(Buffer.from('evict-cache').toString('base64').slice(0, 12));
  });

  test('GET /whoami is 401', async () => {
    expect((await request(base, 'GET', '/whoami')).status).toBe(401);
  });

  test('GET /login serves the sign-in form', async () => {
    const a = await request(base, 'GET', '/login');
    expect(a.status).toBe(200);
    expect(a.headers['content-type']).toMatch(/text\/html/);
    expect(a.body).toContain('<form method="post" action="/login">');
    expect(a.body).toContain('type="password"');
  });
});

describe('login session', () => {
  test('a wrong password is 401 and sets no cookie', async () => {
    const a = await login(base, 'alice', 'wrong password');
    expect(a.status).toBe(401);
    expect(a.json.error).toBe('wrong name or password');
    expect(a.headers['set-cookie']).toBeUndefined();
  });

  test('an unknown name is answered the same way', async () => {
    const a = await login(base, 'mallory', 'correct horse battery');
    expect(a.status).toBe(401);
    expect(a.json.error).toBe('wrong name or password');
  });

  test('the right password sets an HttpOnly, SameSite=Lax session cookie', async () => {
    const a = await login();
    expect(a.status).toBe(200);
    expect(a.json).toEqual({ name: 'alice', via: 'session', expiresAt: expect.any(String) });
    const set = a.headers['set-cookie']?.[0] ?? '';
    expect(set).toMatch(/^codec_session=s1\.[\w-]+\.[\w-]+\.[\w-]{43};/);
    expect(set).toContain('HttpOnly');
    expect(set).toContain('SameSite=Lax');
    expect(set).toContain(`Max-Age=${8 * 3600}`);
    const expires = Date.parse(String(a.json.expiresAt));
    expect(expires - Date.now()).toBeGreaterThan(8 * 3600_000 - 60_000);
  });

  test('a form login answers a page and the cookie', async () => {
    const a = await request(base, 'POST', '/login', {
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ name: 'alice', password: 'correct horse battery' }).toString(),
    });
    expect(a.status).toBe(200);
    expect(a.body).toContain('Signed in as <b>alice</b>');
    expect(sessionCookie(a)).toMatch(/^codec_session=/);
  });

  test('with the cookie, /encode seals as the operator and /decode returns the original', async () => {
    const cookie = sessionCookie(await login());
    const who = await request(base, 'GET', '/whoami', { headers: { cookie } });
    expect(who.json).toEqual({ name: 'alice', via: 'session', expiresAt: expect.any(String) });

    const enc = await request(base, 'POST', '/encode', {
      headers: { ...JSON_HEADERS, cookie, origin: UI },
      body: wireOf([APPROVAL, 'second']),
    });
    expect(enc.status).toBe(200);
    expect(enc.headers['access-control-allow-origin']).toBe(UI);
    const encoded = payloadsOf(enc);
    expect(encoded).toHaveLength(2);
    expect(text(encoded[0]?.metadata?.encoding)).toBe('binary/encrypted');
    expect(enc.body).not.toContain(Buffer.from(JSON.stringify(APPROVAL)).toString('base64'));

    // The worker's codecs see the seal.
    const conv = loadDataConverter({ payloadCodecs: engineCodecs(secrets) });
    const [value, second] = await decodeArrayFromPayloads(conv, encoded);
    expect(value).toEqual({
      ...APPROVAL,
      __sealedBy: { by: 'alice', id: expect.any(String), at: expect.any(String), via: 'session' },
    });
    expect(second).toBe('second');

    // The UI's /decode shows the original value, with the seal in the metadata.
    const dec = await request(base, 'POST', '/default/decode', {
      headers: { ...JSON_HEADERS, cookie },
      body: JSON.stringify(enc.json),
    });
    expect(dec.status).toBe(200);
    const [shown] = payloadsOf(dec);
    expect(text(shown?.metadata?.encoding)).toBe('json/plain');
    expect(JSON.parse(text(shown?.data))).toEqual(APPROVAL);
    expect(text(shown?.metadata?.['seal-by'])).toBe('alice');
    expect(text(shown?.metadata?.['seal-via'])).toBe('session');
  });

  test('after /logout the cookie no longer works', async () => {
    const cookie = sessionCookie(await login());
    expect((await request(base, 'GET', '/whoami', { headers: { cookie } })).status).toBe(200);
    const out = await request(base, 'POST', '/logout', { headers: { cookie } });
    expect(out.status).toBe(200);
    expect(out.headers['set-cookie']?.[0]).toContain('Max-Age=0');
    expect((await request(base, 'GET', '/whoami', { headers: { cookie } })).status).toBe(401);
    expect(
      (await request(base, 'POST', '/decode', { headers: { ...JSON_HEADERS, cookie }, body: '{"payloads":[]}' }))
        .status,
    ).toBe(401);
  });

  test('a session outlives its server: another with the same secrets file accepts it, and a logout on one ends it on both', async () => {
    const cookie = sessionCookie(await login());
    const other = await startCodec();
    try {
      const me = await request(other.base, 'GET', '/whoami', { headers: { cookie } });
      expect(me.status).toBe(200);
      expect(me.json).toMatchObject({ name: 'alice', via: 'session' });
      await server.close();
      ({ server, base } = await startCodec());
      expect((await request(base, 'GET', '/whoami', { headers: { cookie } })).json).toMatchObject({ name: 'alice' });

      expect((await request(other.base, 'POST', '/logout', { headers: { cookie } })).json).toEqual({ signedOut: true });
      expect(readFileSync(REVOCATIONS, 'utf8').trim().split('\n').length).toBeGreaterThan(0);
      expect((await request(base, 'GET', '/whoami', { headers: { cookie } })).status).toBe(401);
      const restarted = await startCodec();
      try {
        expect((await request(restarted.base, 'GET', '/whoami', { headers: { cookie } })).status).toBe(401);
      } finally {
        await restarted.server.close();
      }
    } finally {
      await other.server.close();
    }
  });

  test('a session cookie altered, or signed with a key not in the ring, is refused', async () => {
    const cookie = sessionCookie(await login());
    const [name, value] = cookie.split('=') as [string, string];
    const [v, kid, body, mac] = value.split('.') as [string, string, string, string];
    const claims = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as Record<string, unknown>;
    expect(claims).toEqual({ n: 'alice', s: expect.any(String), e: expect.any(Number) });
    const asCarol = Buffer.from(JSON.stringify({ ...claims, n: 'carol' })).toString('base64url');
    const later = Buffer.from(JSON.stringify({ ...claims, e: (claims.e as number) + 86_400_000 })).toString('base64url');
    for (const forged of [`${v}.${kid}.${asCarol}.${mac}`, `${v}.${kid}.${later}.${mac}`, `${v}.other.${body}.${mac}`, `${v}.${kid}.${body}.${mac.slice(1)}`]) {
      expect((await request(base, 'GET', '/whoami', { headers: { cookie: `${name}=${forged}` } })).status).toBe(401);
    }
    const rotated = parseSecrets({
      encryption: { active: 'k1', keys: { k1: newKey() } },
      seal: { active: 's2', keys: { s2: newKey() } },
      operators: [{ name: 'alice', password: await hashPassword('correct horse battery') }],
    });
    const elsewhere = await startCodec({}, rotated);
    try {
      expect((await request(elsewhere.base, 'GET', '/whoami', { headers: { cookie } })).status).toBe(401);
    } finally {
      await elsewhere.server.close();
    }
  });

  test('an operator removed from the secrets file is signed out', async () => {
    const cookie = sessionCookie(await login());
    const without = parseSecrets({
      encryption: { active: 'k1', keys: { k1: newKey() } },
      seal: { active: secrets.seal?.active as string, keys: Object.fromEntries([...(secrets.seal?.keys ?? new Map())].map(([k, b]) => [k, b.toString('base64')])) },
      operators: [{ name: 'carol', token: carolToken.stored }],
    });
    const after = await startCodec({}, without);
    try {
      expect((await request(after.base, 'GET', '/whoami', { headers: { cookie } })).status).toBe(401);
      expect((await request(base, 'GET', '/whoami', { headers: { cookie } })).status).toBe(200);
    } finally {
      await after.server.close();
    }
  });

  test('an invented session id is refused', async () => {
    const a = await request(base, 'GET', '/whoami', { headers: { cookie: `codec_session=${'A'.repeat(43)}` } });
    expect(a.status).toBe(401);
  });

  test('sessions expire after the configured time', async () => {
    const short = await startCodec({ sessionTtl: '1s' });
    try {
      const cookie = sessionCookie(await login(short.base));
      expect((await request(short.base, 'GET', '/whoami', { headers: { cookie } })).status).toBe(200);
      await new Promise((r) => setTimeout(r, 1100));
      expect((await request(short.base, 'GET', '/whoami', { headers: { cookie } })).status).toBe(401);
    } finally {
      await short.server.close();
    }
  });

  test('repeated failed logins for a name are throttled (429 with Retry-After)', async () => {
    const strict = await startCodec({ maxLoginFailures: 2 });
    try {
      expect((await login(strict.base, 'alice', 'nope-1')).status).toBe(401);
      expect((await login(strict.base, 'alice', 'nope-2')).status).toBe(401);
      const third = await login(strict.base, 'alice', 'correct horse battery');
      expect(third.status).toBe(429);
      expect(Number(third.headers['retry-after'])).toBeGreaterThan(0);
    } finally {
      await strict.server.close();
    }
  });
});

describe('personal token', () => {
  const auth = { authorization: `Bearer ${carolToken.token}` };

  test('identifies its operator; /encode seals with via "token"', async () => {
    expect((await request(base, 'GET', '/whoami', { headers: auth })).json).toEqual({ name: 'carol', via: 'token' });
    const enc = await request(base, 'POST', '/encode', {
      headers: { ...JSON_HEADERS, ...auth },
      body: wireOf([APPROVAL]),
    });
    expect(enc.status).toBe(200);
    const conv = loadDataConverter({ payloadCodecs: engineCodecs(secrets) });
    const [value] = await decodeArrayFromPayloads(conv, payloadsOf(enc));
    expect((value as { __sealedBy: unknown }).__sealedBy).toEqual({
      by: 'carol',
      id: expect.any(String),
      at: expect.any(String),
      via: 'token',
    });
  });

  test('an unknown token is 401', async () => {
    const a = await request(base, 'POST', '/decode', {
      headers: { ...JSON_HEADERS, authorization: `Bearer ${carolToken.token.slice(0, -2)}xx` },
      body: '{"payloads":[]}',
    });
    expect(a.status).toBe(401);
    expect(a.json.error).toBe('unknown personal token');
  });

  test('a bad credential is 401 even alongside a valid session cookie', async () => {
    const cookie = sessionCookie(await login());
    const a = await request(base, 'GET', '/whoami', { headers: { cookie, authorization: 'Basic YWxpY2U6eA==' } });
    expect(a.status).toBe(401);
    expect(a.json.error).toMatch(/Bearer/);
  });

  test('the client script codec (RemoteCodec) seals through the server', async () => {
    const remote = { url: base, token: carolToken.token };
    expect(await whoami(remote)).toEqual({ name: 'carol', via: 'token' });
    const conv = loadDataConverter({ payloadCodecs: [new RemoteCodec(remote)] });
    const encoded = await encodeWith([new RemoteCodec(remote)], [defaultPayloadConverter.toPayload(APPROVAL)]);
    expect(text(encoded[0]?.metadata?.encoding)).toBe('binary/encrypted');
    // The worker verifies; the script itself decodes through /decode.
    const worker = loadDataConverter({ payloadCodecs: engineCodecs(secrets) });
    expect(((await decodeArrayFromPayloads(worker, encoded))[0] as { __sealedBy: { by: string } }).__sealedBy.by).toBe(
      'carol',
    );
    expect(await decodeArrayFromPayloads(conv, encoded)).toEqual([APPROVAL]);
    await expect(whoami({ url: base, token: 'wrong' })).rejects.toThrow(/401 unknown personal token/);
  });
});

describe('OIDC access token (the UI passes it on)', () => {
  const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

  test('a valid RS256 token from the JWKS identifies its email claim; /encode seals with via "bearer"', async () => {
    const token = await accessToken();
    expect((await request(base, 'GET', '/whoami', { headers: bearer(token) })).json).toEqual({
      name: 'dave@example.com',
      via: 'bearer',
    });
    const enc = await request(base, 'POST', '/encode', {
      headers: { ...JSON_HEADERS, ...bearer(token) },
      body: wireOf([APPROVAL]),
    });
    expect(enc.status).toBe(200);
    const conv = loadDataConverter({ payloadCodecs: engineCodecs(secrets) });
    const [value] = await decodeArrayFromPayloads(conv, payloadsOf(enc));
    expect((value as { __sealedBy: { by: string; via: string } }).__sealedBy).toMatchObject({
      by: 'dave@example.com',
      via: 'bearer',
    });
    expect(jwksRequests).toBeGreaterThan(0);
  });

  test('an expired token is 401', async () => {
    const token = await accessToken({}, { expiresAt: Math.floor(Date.now() / 1000) - 3600 });
    const a = await request(base, 'POST', '/decode', {
      headers: { ...JSON_HEADERS, ...bearer(token) },
      body: '{"payloads":[]}',
    });
    expect(a.status).toBe(401);
    expect(a.json.error).toBe('access token refused: it has expired');
  });

  test('a token for another audience is 401', async () => {
    const token = await accessToken({}, { audience: 'another-app' });
    const a = await request(base, 'POST', '/decode', {
      headers: { ...JSON_HEADERS, ...bearer(token) },
      body: '{"payloads":[]}',
    });
    expect(a.status).toBe(401);
    expect(a.json.error).toMatch(/^access token refused: its "aud" claim is not accepted/);
  });

  test('a token from another issuer is 401', async () => {
    const token = await accessToken({}, { issuer: 'https://other-idp.test' });
    const a = await request(base, 'GET', '/whoami', { headers: bearer(token) });
    expect(a.status).toBe(401);
    expect(a.json.error).toMatch(/"iss" claim is not accepted/);
  });

  test('a token signed with another key (same kid) is 401', async () => {
    const token = await accessToken({}, { key: otherKey.privateKey });
    const a = await request(base, 'POST', '/encode', {
      headers: { ...JSON_HEADERS, ...bearer(token) },
      body: wireOf([APPROVAL]),
    });
    expect(a.status).toBe(401);
    expect(a.json.error).toBe('access token refused: its signature does not verify');
    expect(a.json.payloads).toBeUndefined();
  });

  test('a token without the identity claim is 401', async () => {
    const token = await accessToken({ email: undefined, sub: 'u-1' });
    const a = await request(base, 'GET', '/whoami', { headers: bearer(token) });
    expect(a.status).toBe(401);
    expect(a.json.error).toBe('access token refused: it has no usable "email" claim');
  });
});

describe('CORS for the Temporal UI', () => {
  test('a preflight from an allowed origin allows credentials and the UI headers', async () => {
    const a = await request(base, 'OPTIONS', '/encode', {
      headers: {
        origin: UI,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'content-type,x-namespace,authorization',
      },
    });
    expect(a.status).toBe(204);
    expect(a.headers['access-control-allow-origin']).toBe(UI);
    expect(a.headers['access-control-allow-credentials']).toBe('true');
    expect(a.headers['access-control-allow-headers']).toBe('content-type, x-namespace, authorization');
    expect(a.headers['access-control-allow-methods']).toContain('POST');
    expect(a.headers.vary).toBe('Origin');
  });

  test('the default origins include both the 127.0.0.1 and localhost UI', async () => {
    const dflt = await startCodec({ uiOrigins: undefined });
    try {
      for (const origin of ['http://127.0.0.1:8233', 'http://localhost:8233']) {
        const a = await request(dflt.base, 'OPTIONS', '/decode', {
          headers: { origin, 'access-control-request-method': 'POST' },
        });
        expect(a.headers['access-control-allow-origin']).toBe(origin);
      }
    } finally {
      await dflt.server.close();
    }
  });

  test('a preflight from a foreign origin is refused without CORS headers', async () => {
    const a = await request(base, 'OPTIONS', '/decode', {
      headers: { origin: FOREIGN, 'access-control-request-method': 'POST' },
    });
    expect(a.status).toBe(403);
    expect(a.headers['access-control-allow-origin']).toBeUndefined();
    expect(a.headers['access-control-allow-credentials']).toBeUndefined();
  });

  test('a request from a foreign origin is refused even with a valid session', async () => {
    const cookie = sessionCookie(await login());
    const encrypted = encryptPayload(defaultPayloadConverter.toPayload(APPROVAL), secrets.encryption);
    const a = await request(base, 'POST', '/decode', {
      headers: { ...JSON_HEADERS, cookie, origin: FOREIGN },
      body: JSON.stringify(payloadsToWire([encrypted])),
    });
    expect(a.status).toBe(403);
    expect(a.json.payloads).toBeUndefined();
    expect(a.headers['access-control-allow-origin']).toBeUndefined();
  });

  test('no wildcard origin can be configured', () => {
    expect(() => CodecServerConfigSchema.parse({ uiOrigins: ['*'] })).toThrow(/is not an origin/);
    expect(() => CodecServerConfigSchema.parse({ uiOrigins: ['http://127.0.0.1:8233/'] })).toThrow(/is not an origin/);
  });
});

describe('bad input', () => {
  let auth: Record<string, string>;
  beforeAll(() => {
    auth = { ...JSON_HEADERS, authorization: `Bearer ${carolToken.token}` };
  });

  test.each([
    ['{"payloads": [', /^body is not valid JSON: /],
    ['[]', /^body must be a JSON object/],
    ['{}', /^body has no "payloads" array/],
    ['{"payloads": {}}', /^"payloads" must be an array/],
    ['{"payloads": [7]}', /^payloads\[0\] must be an object/],
    ['{"payloads": [{"data": "***"}]}', /^payloads\[0\]\.data is not base64/],
    ['{"payloads": [{"metadata": {"encoding": 5}}]}', /^payloads\[0\]\.metadata\.encoding must be a base64 string/],
  ])('%s is 400 saying what is wrong', async (body, message) => {
    const a = await request(base, 'POST', '/decode', { headers: auth, body });
    expect(a.status).toBe(400);
    expect(String(a.json.error)).toMatch(message);
  });

  test('a body that is not JSON by content-type is 415', async () => {
    const a = await request(base, 'POST', '/encode', {
      headers: { ...auth, 'content-type': 'text/plain' },
      body: wireOf([APPROVAL]),
    });
    expect(a.status).toBe(415);
  });

  test('a body over 1 MiB is 413', async () => {
    const big = JSON.stringify({ payloads: [{ metadata: {}, data: 'A'.repeat(1024 * 1024 + 16) }] });
    const a = await request(base, 'POST', '/encode', { headers: auth, body: big });
    expect(a.status).toBe(413);
    expect(a.json.error).toMatch(/larger than the limit of 1048576 bytes/);
  });

  test('a payload that does not decrypt is 422 naming the payload and the key id', async () => {
    const foreign = parseSecrets({ encryption: { active: 'k7', keys: { k7: newKey() } } });
    const payload = encryptPayload(defaultPayloadConverter.toPayload(APPROVAL), foreign.encryption);
    const a = await request(base, 'POST', '/decode', {
      headers: auth,
      body: JSON.stringify(payloadsToWire([payload])),
    });
    expect(a.status).toBe(422);
    expect(a.json.error).toMatch(/^payloads\[0\]: encrypted payload names encryption key "k7"/);
  });

  test('unencrypted payloads (older histories) decode as they are', async () => {
    const a = await request(base, 'POST', '/decode', { headers: auth, body: wireOf([APPROVAL]) });
    expect(a.status).toBe(200);
    expect(JSON.parse(text(payloadsOf(a)[0]?.data))).toEqual(APPROVAL);
  });

  test('unknown paths are 404 and wrong methods 405', async () => {
    expect((await request(base, 'GET', '/nothing')).status).toBe(404);
    expect((await request(base, 'GET', '/encode', { headers: auth })).status).toBe(405);
  });
});
