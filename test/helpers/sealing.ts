/**
 * Clients that send what an attacker with access to Temporal could send: decisions that are not
 * sealed, sealed with a forged mac, sealed long ago, sealed once and sent twice, or sealed for
 * another incident. Each encrypts as the engine does (a payload Temporal refuses to decode would
 * prove nothing), so only the seal differs from what the codec server makes.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { Client } from '@temporalio/client';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { EncryptionCodec, loadSecrets, seal, SEAL_METADATA, type CodecSecrets } from '../../src/lib/codec';
import type { Engine } from './engine';

export function engineSecrets(engine: Engine): CodecSecrets {
  return loadSecrets(engine.config.codec.secretsFile);
}

/** Seals every payload as `identity`, with a fixed seal id and time when given (a replay, a stale seal). */
class FixedSealCodec implements PayloadCodec {
  constructor(
    private readonly secrets: CodecSecrets,
    private readonly identity: string,
    private readonly opts: { id?: string; at?: Date; forgeMac?: boolean },
  ) {}

  async encode(payloads: Payload[]): Promise<Payload[]> {
    const ring = this.secrets.seal;
    if (!ring) throw new Error(`${this.secrets.origin} has no seal keys`);
    return payloads.map((p) => {
      const sealed = seal(p, this.identity, { via: 'token', id: this.opts.id ?? randomUUID(), ...(this.opts.at ? { at: this.opts.at } : {}) }, ring);
      if (!this.opts.forgeMac) return sealed;
      // A mac of the right length made without the key.
      const forged = Buffer.from(randomBytes(32).toString('base64'), 'utf8');
      return { ...sealed, metadata: { ...sealed.metadata, [SEAL_METADATA.mac]: forged } };
    });
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads;
  }
}

/** A client on the engine's Temporal whose payloads are encrypted and, if asked, sealed as someone. */
export function clientFor(engine: Engine, how: { sealAs?: string; id?: string; at?: Date; forgeMac?: boolean } = {}): Client {
  const secrets = engineSecrets(engine);
  const codecs: PayloadCodec[] = [
    ...(how.sealAs ? [new FixedSealCodec(secrets, how.sealAs, how)] : []),
    new EncryptionCodec(secrets.encryption),
  ];
  return new Client({ connection: engine.client.connection, namespace: engine.config.temporal.namespace, dataConverter: { payloadCodecs: codecs } });
}
