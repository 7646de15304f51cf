/**
 * Seals: the codec server's statement "operator X sent this payload", which the worker verifies.
 *
 * `seal()` adds metadata to a payload (before it is encrypted):
 *   seal-by, seal-id (random uuid), seal-at (ISO time), seal-via (session | bearer | token),
 *   seal-key-id, seal-mac = base64 HMAC-SHA256(seal key,
 *       JSON ["temporal-seal/v1", key id, by, id, at, via, hex sha256(u32be(len(encoding)) ‖ encoding ‖ data)])
 *
 * The worker's decode step (`SealVerifyCodec`, after decryption) turns the verdict into fields of a
 * JSON object argument (see ./sealed.ts). It never looks at the clock: a history decodes the same
 * years later, and freshness is the workflow's decision from `at`.
 */
import { createHash, createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { metadataText, textBytes } from './encryption';
import type { KeyRing } from './secrets';
import { SEAL_REFUSED_FIELD, SEAL_VIAS, SEALED_BY_FIELD, type SealedBy, type SealVia } from './sealed';

export const SEAL_METADATA = {
  by: 'seal-by',
  id: 'seal-id',
  at: 'seal-at',
  via: 'seal-via',
  keyId: 'seal-key-id',
  mac: 'seal-mac',
} as const;

const SEAL_PREFIX = 'seal-';
const JSON_ENCODING = 'json/plain';

function contentDigest(payload: Payload): string {
  const encoding = Buffer.from(payload.metadata?.encoding ?? new Uint8Array());
  const len = Buffer.alloc(4);
  len.writeUInt32BE(encoding.length);
  return createHash('sha256')
    .update(len)
    .update(encoding)
    .update(payload.data ?? new Uint8Array())
    .digest('hex');
}

function macOf(key: Buffer, keyId: string, s: SealedBy, digest: string): Buffer {
  const input = JSON.stringify(['temporal-seal/v1', keyId, s.by, s.id, s.at, s.via, digest]);
  return createHmac('sha256', key).update(input, 'utf8').digest();
}

/** Any earlier seal metadata is replaced: a payload carries one seal, made for whoever sent it last. */
function withoutSeal(metadata: Payload['metadata']): Record<string, Uint8Array> {
  const out: Record<string, Uint8Array> = {};
  for (const [k, v] of Object.entries(metadata ?? {})) if (!k.startsWith(SEAL_PREFIX) && v) out[k] = v;
  return out;
}

export function seal(
  payload: Payload,
  identity: string,
  opts: { via: SealVia; at?: Date; id?: string },
  sealKeys: KeyRing,
): Payload {
  const keyId = sealKeys.active;
  const key = sealKeys.keys.get(keyId);
  if (!key) throw new Error(`active seal key "${keyId}" is missing`);
  if (!identity) throw new Error('a seal needs an identity');
  const s: SealedBy = {
    by: identity,
    id: opts.id ?? randomUUID(),
    at: (opts.at ?? new Date()).toISOString(),
    via: opts.via,
  };
  const mac = macOf(key, keyId, s, contentDigest(payload));
  return {
    ...payload,
    metadata: {
      ...withoutSeal(payload.metadata),
      [SEAL_METADATA.by]: textBytes(s.by),
      [SEAL_METADATA.id]: textBytes(s.id),
      [SEAL_METADATA.at]: textBytes(s.at),
      [SEAL_METADATA.via]: textBytes(s.via),
      [SEAL_METADATA.keyId]: textBytes(keyId),
      [SEAL_METADATA.mac]: textBytes(mac.toString('base64')),
    },
  };
}

export type SealCheck = { status: 'absent' } | { status: 'valid'; seal: SealedBy } | { status: 'refused'; why: string };

/** Verifies a payload's seal against the seal keys (none configured: every seal is refused). */
export function verifySeal(payload: Payload, sealKeys: KeyRing | undefined): SealCheck {
  const present = Object.keys(payload.metadata ?? {}).some((k) => k.startsWith(SEAL_PREFIX));
  if (!present) return { status: 'absent' };
  const field = (k: keyof typeof SEAL_METADATA) => metadataText(payload, SEAL_METADATA[k]);
  const [by, id, at, via, keyId, mac] = [
    field('by'),
    field('id'),
    field('at'),
    field('via'),
    field('keyId'),
    field('mac'),
  ];
  const missing = (Object.keys(SEAL_METADATA) as Array<keyof typeof SEAL_METADATA>).filter((k) => !field(k));
  if (missing.length > 0 || !by || !id || !at || !via || !keyId || !mac)
    return { status: 'refused', why: `incomplete seal: no ${missing.map((k) => SEAL_METADATA[k]).join(', ')}` };
  if (!SEAL_VIAS.includes(via as SealVia))
    return { status: 'refused', why: `seal-via "${via}" is not one of ${SEAL_VIAS.join(', ')}` };
  if (!sealKeys) return { status: 'refused', why: 'no seal keys are configured here' };
  const key = sealKeys.keys.get(keyId);
  if (!key) return { status: 'refused', why: `seal key "${keyId}" is unknown` };
  const s: SealedBy = { by, id, at, via: via as SealVia };
  const given = Buffer.from(mac, 'base64');
  const expected = macOf(key, keyId, s, contentDigest(payload));
  if (given.length !== expected.length || !timingSafeEqual(given, expected))
    return { status: 'refused', why: `seal (key "${keyId}") does not match: the payload or its seal was altered` };
  return { status: 'valid', seal: s };
}

/**
 * The worker-side step for one decoded payload: a json/plain payload holding a JSON object loses any
 * `__sealedBy` / `__sealRefused` it carries, then gets the verdict on its seal. Other payloads, and
 * objects without a seal or such fields, are returned as they came (byte for byte).
 */
export function applySealVerdict(payload: Payload, sealKeys: KeyRing | undefined): Payload {
  if (metadataText(payload, 'encoding') !== JSON_ENCODING || !payload.data) return payload;
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(payload.data).toString('utf8'));
  } catch {
    return payload; // not JSON: the payload converter reports it
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) return payload;
  const obj = value as Record<string, unknown>;
  const injected = Object.hasOwn(obj, SEALED_BY_FIELD) || Object.hasOwn(obj, SEAL_REFUSED_FIELD);
  delete obj[SEALED_BY_FIELD];
  delete obj[SEAL_REFUSED_FIELD];
  const check = verifySeal(payload, sealKeys);
  if (check.status === 'absent' && !injected) return payload;
  if (check.status === 'valid') obj[SEALED_BY_FIELD] = { ...check.seal };
  if (check.status === 'refused') obj[SEAL_REFUSED_FIELD] = check.why;
  return { ...payload, data: textBytes(JSON.stringify(obj)) };
}

/** Worker, receiver and client: verifies seals on decode; encode leaves payloads alone. */
export class SealVerifyCodec implements PayloadCodec {
  constructor(private readonly sealKeys: KeyRing | undefined) {}

  async encode(payloads: Payload[]): Promise<Payload[]> {
    return payloads;
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((p) => applySealVerdict(p, this.sealKeys));
  }
}

/** The codec server's /encode: seals every payload for the authenticated identity. */
export class SealingCodec implements PayloadCodec {
  constructor(
    private readonly sealKeys: KeyRing,
    private readonly identity: string,
    private readonly via: SealVia,
  ) {}

  async encode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((p) => seal(p, this.identity, { via: this.via }, this.sealKeys));
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads;
  }
}
