/** API keys are stored only as sha256 hex digests and compared in constant time. */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export function hashKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

export function sameHash(a: string, b: string): boolean {
  const x = Buffer.from(a, 'hex');
  const y = Buffer.from(b, 'hex');
  return x.length === y.length && x.length > 0 && timingSafeEqual(x, y);
}

export function newApiKey(): string {
  return `ak_${randomBytes(24).toString('hex')}`;
}

/** Drill-only keys of the seeded users: test-key-1 … test-key-10 (see drill/README.md). */
export function testKey(n: number): string {
  return `test-key-${n}`;
}

export const ADMIN_EMAIL = 'admin@alfred.local';
export const TEST_USER_COUNT = 10;
