/**
 * What the worker's codec tells a workflow about who sent a handler argument. No Node built-ins:
 * workflow code imports this file.
 *
 * For a JSON object argument the codec always removes `__sealedBy` and `__sealRefused` from what the
 * sender wrote, then sets
 *   `__sealedBy: {by, id, at, via}` when the payload carries a valid seal (made by the codec server
 *                                   for the operator it authenticated),
 *   `__sealRefused: "<why>"`        when it carries a seal that does not verify,
 * and neither when it carries no seal. A value with `__sealedBy` therefore comes from the codec.
 *
 * Only the top level of a handler's argument counts: nested objects are not stripped. A value the
 * workflow passes on (a signal to a child, a continue-as-new input) arrives unsealed: the codec strips
 * the field, since nothing seals what a worker encodes.
 */

export const SEALED_BY_FIELD = '__sealedBy';
export const SEAL_REFUSED_FIELD = '__sealRefused';

/** How the codec server authenticated the operator: login session, OIDC access token, personal token. */
export type SealVia = 'session' | 'bearer' | 'token' | 'slack';
export const SEAL_VIAS: readonly SealVia[] = ['session', 'bearer', 'token', 'slack'];

export interface SealedBy {
  /** The authenticated identity (operator name, or the OIDC identity claim). */
  by: string;
  /** Random per seal (uuid): a workflow can refuse a seal it has already counted. */
  id: string;
  /** When the codec server sealed it (ISO 8601). Never checked by the codec: freshness is the workflow's call. */
  at: string;
  via: SealVia;
}

/** The fields the codec may add to a decoded JSON object. */
export interface SealFields {
  __sealedBy?: SealedBy;
  __sealRefused?: string;
}

export type SealVerdict = { kind: 'sealed'; seal: SealedBy } | { kind: 'refused'; why: string } | { kind: 'unsealed' };

/** Reads what the codec decided about a decoded handler argument. */
export function sealOf(arg: unknown): SealVerdict {
  if (!arg || typeof arg !== 'object' || Array.isArray(arg)) return { kind: 'unsealed' };
  const a = arg as Record<string, unknown>;
  const refused = a[SEAL_REFUSED_FIELD];
  if (typeof refused === 'string') return { kind: 'refused', why: refused };
  const s = a[SEALED_BY_FIELD];
  if (s && typeof s === 'object') {
    const { by, id, at, via } = s as Record<string, unknown>;
    if (
      typeof by === 'string' &&
      typeof id === 'string' &&
      typeof at === 'string' &&
      SEAL_VIAS.includes(via as SealVia)
    )
      return { kind: 'sealed', seal: { by, id, at, via: via as SealVia } };
  }
  return { kind: 'unsealed' };
}

/**
 * Whether a seal made at `seal.at` is acceptable at `nowMs` (workflow time): no older than `maxAgeMs`
 * and no more than `maxFutureMs` ahead (clock skew between the codec server and Temporal).
 */
export function sealIsFresh(seal: SealedBy, nowMs: number, maxAgeMs: number, maxFutureMs = 60_000): boolean {
  const at = Date.parse(seal.at);
  if (!Number.isFinite(at)) return false;
  return nowMs - at <= maxAgeMs && at - nowMs <= maxFutureMs;
}
