/**
 * Payloads encrypted at rest: AES-256-GCM over the protobuf encoding of the whole Payload (metadata
 * and data), so Temporal stores neither the content nor its encoding or seal.
 *
 *   data     = iv (12 random bytes) || ciphertext || tag (16 bytes)
 *   metadata = { encoding: "binary/encrypted", encryption-key-id: <id> }
 *   AAD      = "temporal-payload/v1:" + key id (a ciphertext does not decrypt under another id's name)
 *
 * Decoding uses the key the payload names, so old histories replay after the active key rotates;
 * payloads that are not encrypted (histories recorded before encryption) pass through unchanged.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import type { KeyRing } from './secrets';

export const ENCRYPTED_ENCODING = 'binary/encrypted';
export const KEY_ID_METADATA = 'encryption-key-id';

const IV_BYTES = 12;
const TAG_BYTES = 16;
const ProtoPayload = temporal.api.common.v1.Payload;

/** A payload that cannot be decrypted. The message names the key id, never content. */
export class PayloadDecryptionError extends Error {
  constructor(
    message: string,
    readonly keyId?: string,
  ) {
    super(message);
    this.name = 'PayloadDecryptionError';
  }
}

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();

export function metadataText(payload: Payload, key: string): string | undefined {
  const v = payload.metadata?.[key];
  return v ? textDecoder.decode(v) : undefined;
}

export function textBytes(s: string): Uint8Array {
  return textEncoder.encode(s);
}

function aad(keyId: string): Buffer {
  return Buffer.from(`temporal-payload/v1:${keyId}`, 'utf8');
}

export function isEncrypted(payload: Payload): boolean {
  return metadataText(payload, 'encoding') === ENCRYPTED_ENCODING;
}

export function encryptPayload(payload: Payload, ring: KeyRing): Payload {
  const keyId = ring.active;
  const key = ring.keys.get(keyId);
  if (!key) throw new PayloadDecryptionError(`active encryption key "${keyId}" is missing`, keyId);
  const plain = ProtoPayload.encode(payload).finish();
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(aad(keyId));
  const body = Buffer.concat([cipher.update(plain), cipher.final()]);
  return {
    metadata: { encoding: textBytes(ENCRYPTED_ENCODING), [KEY_ID_METADATA]: textBytes(keyId) },
    data: Buffer.concat([iv, body, cipher.getAuthTag()]),
  };
}

export function decryptPayload(payload: Payload, ring: KeyRing): Payload {
  if (!isEncrypted(payload)) return payload;
  const keyId = metadataText(payload, KEY_ID_METADATA);
  if (!keyId) throw new PayloadDecryptionError(`encrypted payload carries no ${KEY_ID_METADATA}`);
  const key = ring.keys.get(keyId);
  if (!key)
    throw new PayloadDecryptionError(
      `encrypted payload names encryption key "${keyId}", which is not among the keys (${[...ring.keys.keys()].join(', ')})`,
      keyId,
    );
  const data = Buffer.from(payload.data ?? new Uint8Array());
  if (data.length < IV_BYTES + TAG_BYTES)
    throw new PayloadDecryptionError(
      `payload encrypted with key "${keyId}" is truncated (${data.length} bytes)`,
      keyId,
    );
  const decipher = createDecipheriv('aes-256-gcm', key, data.subarray(0, IV_BYTES));
  decipher.setAAD(aad(keyId));
  decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
  let plain: Buffer;
  try {
    plain = Buffer.concat([decipher.update(data.subarray(IV_BYTES, data.length - TAG_BYTES)), decipher.final()]);
  } catch {
    throw new PayloadDecryptionError(
      `payload encrypted with key "${keyId}" fails authentication: altered, or encrypted under another key of that name`,
      keyId,
    );
  }
  let inner: temporal.api.common.v1.Payload;
  try {
    inner = ProtoPayload.decode(plain);
  } catch {
    throw new PayloadDecryptionError(`payload encrypted with key "${keyId}" does not hold a Payload`, keyId);
  }
  return {
    metadata: { ...inner.metadata },
    data: inner.data,
    ...(inner.externalPayloads.length > 0 ? { externalPayloads: inner.externalPayloads } : {}),
  };
}

/** The engine's encryption step (the last on encode, the first on decode). */
export class EncryptionCodec implements PayloadCodec {
  constructor(private readonly ring: KeyRing) {}

  async encode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((p) => encryptPayload(p, this.ring));
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((p) => decryptPayload(p, this.ring));
  }
}
