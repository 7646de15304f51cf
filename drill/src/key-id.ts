/**
 * A short, non-secret identifier of the API key a request carried: the first 12 hex digits of its
 * sha256, i.e. a prefix of the stored `users.api_key_hash`. Logged where the key is not checked
 * (a rate-limited request is refused before authentication), so operators can tell whose traffic
 * it was without the key ever being written down.
 */
import type { IncomingMessage } from 'node:http';
import { hashKey } from './keys';

export const KEY_ID_LENGTH = 12;

export function requestKeyId(req: IncomingMessage): string | undefined {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
  return m ? hashKey(m[1]!).slice(0, KEY_ID_LENGTH) : undefined;
}
