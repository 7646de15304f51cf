/**
 * The engine's payload codecs.
 *
 *   engineCodecs(secrets)   worker, receiver, client: encode = encrypt; decode = decrypt, then verify
 *                           seals (`__sealedBy` / `__sealRefused` on JSON objects, ./sealed.ts).
 *   sealingCodecs(...)      the codec server's /encode: seal for the authenticated operator, then encrypt.
 *
 * The SDK encodes in array order and decodes in reverse, so the seal step sits before encryption.
 */
import type { DataConverter, Payload, PayloadCodec } from '@temporalio/common';
import { EncryptionCodec } from './encryption';
import { SealingCodec, SealVerifyCodec } from './seal';
import type { CodecSecrets } from './secrets';
import type { SealVia } from './sealed';

export function engineCodecs(secrets: CodecSecrets): PayloadCodec[] {
  return [new SealVerifyCodec(secrets.seal), new EncryptionCodec(secrets.encryption)];
}

export function sealingCodecs(secrets: CodecSecrets, identity: string, via: SealVia): PayloadCodec[] {
  if (!secrets.seal) throw new Error(`secrets file ${secrets.origin} has no seal keys: nothing can be sealed`);
  return [new SealingCodec(secrets.seal, identity, via), new EncryptionCodec(secrets.encryption)];
}

/** Decryption only: what the codec server's /decode shows (seal metadata is left in place, unverified). */
export function displayCodecs(secrets: CodecSecrets): PayloadCodec[] {
  return [new EncryptionCodec(secrets.encryption)];
}

/** The module whose `failureConverter` encodes failure messages and stack traces (./failure-converter.ts). */
export const FAILURE_CONVERTER_PATH = require.resolve('./failure-converter');

/** `{ payloadCodecs, failureConverterPath }` for `Worker.create`, `new Client` and the receiver's client. */
export function engineDataConverter(secrets: CodecSecrets): DataConverter {
  return { payloadCodecs: engineCodecs(secrets), failureConverterPath: FAILURE_CONVERTER_PATH };
}

/** Runs codecs the way the SDK does: encode in order. */
export async function encodeWith(codecs: readonly PayloadCodec[], payloads: Payload[]): Promise<Payload[]> {
  let out = payloads;
  for (const c of codecs) out = await c.encode(out);
  return out;
}

/** Runs codecs the way the SDK does: decode in reverse order. */
export async function decodeWith(codecs: readonly PayloadCodec[], payloads: Payload[]): Promise<Payload[]> {
  let out = payloads;
  for (const c of [...codecs].reverse()) out = await c.decode(out);
  return out;
}

export { EncryptionCodec, PayloadDecryptionError, ENCRYPTED_ENCODING, KEY_ID_METADATA } from './encryption';
export {
  SealingCodec,
  SealVerifyCodec,
  seal,
  verifySeal,
  applySealVerdict,
  SEAL_METADATA,
  type SealCheck,
} from './seal';
export { loadSecrets, parseSecrets, SecretsError, type CodecSecrets, type KeyRing } from './secrets';
export * from './sealed';
