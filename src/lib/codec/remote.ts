/**
 * A client of the codec server, for tools run by a person (the client script): it sends payloads to
 * the server's /encode with the operator's personal token, so what it sends is sealed with that
 * operator's identity, and decodes through /decode. Such a tool needs no key of its own.
 */
import type { Payload, PayloadCodec } from '@temporalio/common';
import type { SealVia } from './sealed';
import { payloadsFromWire, payloadsToWire } from './wire';

export interface RemoteCodecOptions {
  /** The codec server, e.g. `http://127.0.0.1:8234`. */
  url: string;
  /** The operator's personal token (`scripts/codec-secrets.ts add-token`) or an OIDC access token. */
  token: string;
  namespace?: string;
  timeoutMs?: number;
}

export class CodecServerError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'CodecServerError';
  }
}

async function call(opts: RemoteCodecOptions, method: 'GET' | 'POST', path: string, body?: unknown): Promise<unknown> {
  const url = new URL(path, opts.url.endsWith('/') ? opts.url : `${opts.url}/`);
  let res: Response;
  try {
    res = await fetch(url, {
      method,
      headers: {
        authorization: `Bearer ${opts.token}`,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...(opts.namespace ? { 'x-namespace': opts.namespace } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(opts.timeoutMs ?? 10_000),
    });
  } catch (err) {
    throw new CodecServerError(`codec server ${url.origin} cannot be reached: ${(err as Error).message}`);
  }
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new CodecServerError(
      `codec server ${url.origin}${url.pathname} answered ${res.status} with no JSON`,
      res.status,
    );
  }
  if (!res.ok) {
    const error = (json as { error?: unknown }).error;
    throw new CodecServerError(
      `codec server ${url.origin}${url.pathname}: ${res.status} ${typeof error === 'string' ? error : ''}`.trim(),
      res.status,
    );
  }
  return json;
}

/** A PayloadCodec backed by the codec server: use it as the client's only codec. */
export class RemoteCodec implements PayloadCodec {
  constructor(private readonly opts: RemoteCodecOptions) {}

  private async roundTrip(op: 'encode' | 'decode', payloads: Payload[]): Promise<Payload[]> {
    if (payloads.length === 0) return payloads;
    const answer = await call(this.opts, 'POST', op, payloadsToWire(payloads));
    const parsed = payloadsFromWire(answer);
    if (!parsed.ok) throw new CodecServerError(`codec server /${op} answered an invalid body: ${parsed.error}`);
    if (parsed.payloads.length !== payloads.length)
      throw new CodecServerError(
        `codec server /${op} answered ${parsed.payloads.length} payloads for ${payloads.length}`,
      );
    return parsed.payloads;
  }

  encode(payloads: Payload[]): Promise<Payload[]> {
    return this.roundTrip('encode', payloads);
  }

  decode(payloads: Payload[]): Promise<Payload[]> {
    return this.roundTrip('decode', payloads);
  }
}

/** Who the codec server takes this token for (what /encode will seal as). */
export async function whoami(opts: RemoteCodecOptions): Promise<{ name: string; via: SealVia }> {
  const answer = (await call(opts, 'GET', 'whoami')) as { name?: unknown; via?: unknown };
  if (typeof answer.name !== 'string' || typeof answer.via !== 'string')
    throw new CodecServerError('codec server /whoami answered without a name');
  return { name: answer.name, via: answer.via as SealVia };
}
