/**
 * A workflow history as a client fetches it (`handle.fetchHistory()`) holds the payloads as Temporal
 * stores them: encrypted (docs/codec.md). `decodeHistoryPayloads` decodes them in place with a data
 * converter's codecs, as `temporal workflow show --codec-endpoint` does, so a reader of the history
 * (the post-mortem, a check of what a history contains) sees the values.
 */
import type { Payload, PayloadCodec } from '@temporalio/common';
import { ENCRYPTED_ENCODING } from './codec/encryption';

/** Payloads are sent to the codecs in batches of at most this many data bytes (a codec server caps bodies at 1 MiB). */
const BATCH_BYTES = 256 * 1024;
const BATCH_COUNT = 500;

const textDecoder = new TextDecoder();

function isPayload(v: object): v is Payload & { data: Uint8Array } {
  const p = v as { metadata?: unknown; data?: unknown };
  return (
    p.data instanceof Uint8Array &&
    typeof p.metadata === 'object' &&
    p.metadata !== null &&
    (p.metadata as Record<string, unknown>).encoding instanceof Uint8Array
  );
}

function encodingOf(p: Payload): string {
  const e = p.metadata?.encoding;
  return e ? textDecoder.decode(e) : '';
}

/** Every encrypted payload anywhere in `root` (events, their attributes, nested failures). */
function encryptedPayloads(root: unknown): Payload[] {
  const found: Payload[] = [];
  const seen = new Set<object>();
  const walk = (v: unknown): void => {
    if (!v || typeof v !== 'object' || v instanceof Uint8Array || seen.has(v)) return;
    seen.add(v);
    if (isPayload(v)) {
      if (encodingOf(v) === ENCRYPTED_ENCODING) found.push(v);
      return;
    }
    for (const child of Array.isArray(v) ? v : Object.values(v)) walk(child);
  };
  walk(root);
  return found;
}

async function decodeAll(codecs: readonly PayloadCodec[], payloads: Payload[]): Promise<Payload[]> {
  let out = payloads;
  for (const c of [...codecs].reverse()) out = await c.decode(out);
  return out;
}

/**
 * Decodes, in place, every encrypted payload of `history` (the SDK decodes in reverse codec order);
 * returns the same object. Payloads that are not encrypted (older histories) are left as they are.
 */
export async function decodeHistoryPayloads<H>(history: H, codecs: readonly PayloadCodec[]): Promise<H> {
  const payloads = encryptedPayloads(history);
  let i = 0;
  while (i < payloads.length) {
    const batch: Payload[] = [];
    let bytes = 0;
    while (i < payloads.length && batch.length < BATCH_COUNT) {
      const p = payloads[i] as Payload;
      const size = p.data?.length ?? 0;
      if (batch.length > 0 && bytes + size > BATCH_BYTES) break;
      batch.push(p);
      bytes += size;
      i += 1;
    }
    const decoded = await decodeAll(codecs, batch.map((p) => ({ metadata: p.metadata, data: p.data })));
    if (decoded.length !== batch.length) throw new Error(`decoding ${batch.length} history payloads gave ${decoded.length}`);
    batch.forEach((p, k) => {
      const d = decoded[k] as Payload;
      p.metadata = d.metadata ?? {};
      p.data = d.data ?? new Uint8Array();
    });
  }
  return history;
}
