/**
 * Authentication of webhook senders: bearer tokens (Alertmanager's `http_config.authorization`,
 * the generic format, optionally Grafana) and HMAC-SHA256 body signatures (PagerDuty v3, Grafana).
 * Every comparison is constant-time; nothing here logs or returns a secret.
 *
 * A bearer token is checked before the body is read. A signature covers the body, so it can only be
 * verified once the body is in; its header (and a timestamp header's freshness) is checked before,
 * so a request without one is refused unread (`checkPagerDutyHeader`, `checkGrafanaHeaders`).
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

export type AuthResult =
  { ok: true } | { ok: false; reason: 'missing' | 'invalid' | 'stale' | 'unconfigured'; message: string };

const OK: AuthResult = { ok: true };

/** Compares digests, so neither the length nor the content of a secret leaks through timing. */
function safeEqualText(a: string, b: string): boolean {
  const da = createHash('sha256').update(a).digest();
  const db = createHash('sha256').update(b).digest();
  return timingSafeEqual(da, db);
}

function safeEqualHex(givenHex: string, expected: Buffer): boolean {
  if (!/^[0-9a-f]+$/i.test(givenHex) || givenHex.length !== expected.length * 2) return false;
  return timingSafeEqual(Buffer.from(givenHex, 'hex'), expected);
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name.toLowerCase()];
  return Array.isArray(v) ? v.join(',') : v;
}

export function checkBearer(headers: IncomingHttpHeaders, tokens: readonly string[]): AuthResult {
  if (tokens.length === 0) {
    return {
      ok: false,
      reason: 'unconfigured',
      message: 'no bearer token is configured for this source on the receiver',
    };
  }
  const auth = header(headers, 'authorization');
  if (!auth) return { ok: false, reason: 'missing', message: 'missing "Authorization: Bearer <token>" header' };
  const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
  if (!m?.[1]) return { ok: false, reason: 'invalid', message: 'Authorization header must use the Bearer scheme' };
  const given = m[1];
  // Check every token (no early exit) so the time taken does not tell which one matched.
  let match = false;
  for (const t of tokens) match = safeEqualText(given, t) || match;
  return match ? OK : { ok: false, reason: 'invalid', message: 'invalid bearer token' };
}

export function hmacHex(secret: string, data: Buffer | string): string {
  return createHmac('sha256', secret).update(data).digest('hex');
}

/** The v1 signatures of `X-PagerDuty-Signature`, or why there are none to check. */
function pagerDutySignatures(headers: IncomingHttpHeaders, secrets: readonly string[]): string[] | AuthResult {
  if (secrets.length === 0) {
    return { ok: false, reason: 'unconfigured', message: 'no PagerDuty signing secret is configured on the receiver' };
  }
  const raw = header(headers, 'x-pagerduty-signature');
  if (!raw) return { ok: false, reason: 'missing', message: 'missing X-PagerDuty-Signature header' };
  const given = raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.startsWith('v1='))
    .map((s) => s.slice(3));
  if (given.length === 0) return { ok: false, reason: 'invalid', message: 'X-PagerDuty-Signature has no v1 signature' };
  return given;
}

/** What can be checked of a PagerDuty request before its body is read: a v1 signature is present. */
export function checkPagerDutyHeader(headers: IncomingHttpHeaders, secrets: readonly string[]): AuthResult {
  const given = pagerDutySignatures(headers, secrets);
  return Array.isArray(given) ? OK : given;
}

/**
 * PagerDuty webhook v3: `X-PagerDuty-Signature: v1=<hex>[,v1=<hex>...]`, each an HMAC-SHA256 of the
 * raw body. During a secret rotation PagerDuty sends one signature per secret, and the receiver may
 * hold several secrets: any pair matching authenticates the request.
 */
export function checkPagerDutySignature(
  headers: IncomingHttpHeaders,
  body: Buffer,
  secrets: readonly string[],
): AuthResult {
  const given = pagerDutySignatures(headers, secrets);
  if (!Array.isArray(given)) return given;
  let match = false;
  for (const secret of secrets) {
    const expected = createHmac('sha256', secret).update(body).digest();
    for (const g of given) match = safeEqualHex(g, expected) || match;
  }
  return match ? OK : { ok: false, reason: 'invalid', message: 'X-PagerDuty-Signature does not match the body' };
}

/**
 * Grafana webhook HMAC: hex HMAC-SHA256 in `header`; with a timestamp header configured, the
 * signed data is `<timestamp>:<body>` and timestamps further than `maxSkewSeconds` from now are refused.
 */
export interface GrafanaHmacOptions {
  secrets: readonly string[];
  header: string;
  timestampHeader?: string;
  maxSkewSeconds: number;
}

/** The signature and timestamp headers of a Grafana request, or why they cannot be checked. */
function grafanaHeaders(
  headers: IncomingHttpHeaders,
  opts: GrafanaHmacOptions,
  nowMs: number,
): { sig: string; ts?: string } | Exclude<AuthResult, { ok: true }> {
  if (opts.secrets.length === 0) {
    return { ok: false, reason: 'unconfigured', message: 'no Grafana signing secret is configured on the receiver' };
  }
  const sig = header(headers, opts.header)?.trim();
  if (!sig) return { ok: false, reason: 'missing', message: `missing ${opts.header} header` };
  if (!opts.timestampHeader) return { sig };
  const ts = header(headers, opts.timestampHeader)?.trim();
  if (!ts) return { ok: false, reason: 'missing', message: `missing ${opts.timestampHeader} header` };
  if (!/^\d+$/.test(ts))
    return { ok: false, reason: 'invalid', message: `${opts.timestampHeader} must be a Unix timestamp` };
  if (Math.abs(nowMs / 1000 - Number(ts)) > opts.maxSkewSeconds) {
    return {
      ok: false,
      reason: 'stale',
      message: `${opts.timestampHeader} is more than ${opts.maxSkewSeconds} s from now`,
    };
  }
  return { sig, ts };
}

/** What can be checked of a Grafana request before its body is read: a signature, and a fresh timestamp. */
export function checkGrafanaHeaders(
  headers: IncomingHttpHeaders,
  opts: GrafanaHmacOptions,
  nowMs = Date.now(),
): AuthResult {
  const h = grafanaHeaders(headers, opts, nowMs);
  return 'sig' in h ? OK : h;
}

export function checkGrafanaSignature(
  headers: IncomingHttpHeaders,
  body: Buffer,
  opts: GrafanaHmacOptions,
  nowMs = Date.now(),
): AuthResult {
  const h = grafanaHeaders(headers, opts, nowMs);
  if (!('sig' in h)) return h;
  const { sig, ts } = h;
  const signed = ts === undefined ? body : Buffer.concat([Buffer.from(`${ts}:`), body]);
  let match = false;
  for (const secret of opts.secrets)
    match = safeEqualHex(sig, createHmac('sha256', secret).update(signed).digest()) || match;
  return match ? OK : { ok: false, reason: 'invalid', message: `${opts.header} does not match the body` };
}
