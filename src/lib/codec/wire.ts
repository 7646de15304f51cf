/**
 * The remote codec's JSON (what the Temporal UI and CLI send to a codec server):
 *
 *   {"payloads": [{"metadata": {"encoding": "<base64>", ...}, "data": "<base64>"}, ...]}
 *
 * Payloads are protobuf JSON: metadata values and data are base64 (standard or URL-safe alphabet).
 */
import type { Payload } from '@temporalio/common';

export interface WirePayload {
  metadata: Record<string, string>;
  data: string;
}

const B64 = /^(?:[A-Za-z0-9+/]|[A-Za-z0-9_-])*={0,2}$/;

function fromBase64(s: string): Buffer | undefined {
  if (!B64.test(s)) return undefined;
  const norm = s.replace(/-/g, '+').replace(/_/g, '/');
  const unpadded = norm.replace(/=+$/, '');
  if (unpadded.length % 4 === 1) return undefined;
  return Buffer.from(norm, 'base64');
}

export function payloadsToWire(payloads: readonly Payload[]): { payloads: WirePayload[] } {
  return {
    payloads: payloads.map((p) => ({
      metadata: Object.fromEntries(
        Object.entries(p.metadata ?? {}).flatMap(([k, v]) => (v ? [[k, Buffer.from(v).toString('base64')]] : [])),
      ),
      data: Buffer.from(p.data ?? new Uint8Array()).toString('base64'),
    })),
  };
}

export type WireParse = { ok: true; payloads: Payload[] } | { ok: false; error: string };

/** Parses `{"payloads":[...]}`; the error says which field of which payload is wrong. */
export function payloadsFromWire(body: unknown): WireParse {
  if (!body || typeof body !== 'object' || Array.isArray(body))
    return { ok: false, error: 'body must be a JSON object {"payloads": [...]}' };
  const list = (body as Record<string, unknown>).payloads;
  if (list === undefined) return { ok: false, error: 'body has no "payloads" array' };
  if (!Array.isArray(list)) return { ok: false, error: '"payloads" must be an array' };
  const payloads: Payload[] = [];
  for (const [i, item] of list.entries()) {
    const at = `payloads[${i}]`;
    if (!item || typeof item !== 'object' || Array.isArray(item))
      return { ok: false, error: `${at} must be an object` };
    const { metadata, data } = item as Record<string, unknown>;
    const meta: Record<string, Uint8Array> = {};
    if (metadata !== undefined && metadata !== null) {
      if (typeof metadata !== 'object' || Array.isArray(metadata))
        return { ok: false, error: `${at}.metadata must be an object` };
      for (const [k, v] of Object.entries(metadata as Record<string, unknown>)) {
        if (typeof v !== 'string') return { ok: false, error: `${at}.metadata.${k} must be a base64 string` };
        const bytes = fromBase64(v);
        if (!bytes) return { ok: false, error: `${at}.metadata.${k} is not base64` };
        meta[k] = bytes;
      }
    }
    let bytes: Buffer = Buffer.alloc(0);
    if (data !== undefined && data !== null) {
      if (typeof data !== 'string') return { ok: false, error: `${at}.data must be a base64 string` };
      const b = fromBase64(data);
      if (!b) return { ok: false, error: `${at}.data is not base64` };
      bytes = b;
    }
    payloads.push({ metadata: meta, data: bytes });
  }
  return { ok: true, payloads };
}
