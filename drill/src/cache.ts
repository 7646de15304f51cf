/**
 * Semantic response cache in Redis: `alfred:cache:<sha256(normalised prompt)>` holds
 * {prompt, response, model, created_at}. A lookup tries the exact key, then compares token-set
 * Jaccard similarity against a bounded scan of cached prompts and serves the best one at or above
 * the configured threshold.
 */
import { createHash } from 'node:crypto';
import type Redis from 'ioredis';
import { redisReady } from './redis';

export const CACHE_PREFIX = 'alfred:cache:';
const FILL_PREFIX = 'alfred:cache:fill:';
const SCAN_LIMIT = 500;
const TTL_SECONDS = 3600;

export interface CacheEntry {
  prompt: string;
  response: string;
  model?: string;
  created_at: string;
}

export function normalisePrompt(prompt: string): string {
  return prompt
    .toLowerCase()
    .replace(/[^a-z0-9+\-*/.\s]/g, ' ')
    .replace(/\.(?=\s|$)/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
}

export function cacheKey(prompt: string): string {
  return CACHE_PREFIX + createHash('sha256').update(normalisePrompt(prompt)).digest('hex');
}

export function jaccard(a: string, b: string): number {
  const x = new Set(normalisePrompt(a).split(' ').filter(Boolean));
  const y = new Set(normalisePrompt(b).split(' ').filter(Boolean));
  if (x.size === 0 && y.size === 0) return 1;
  let inter = 0;
  for (const t of x) if (y.has(t)) inter++;
  return inter / (x.size + y.size - inter);
}

function parse(raw: string | null): CacheEntry | null {
  if (!raw) return null;
  try {
    const v = JSON.parse(raw) as Partial<CacheEntry>;
    return typeof v.prompt === 'string' && typeof v.response === 'string' ? (v as CacheEntry) : null;
  } catch {
    return null;
  }
}

export interface CacheHit {
  key: string;
  entry: CacheEntry;
  similarity: number;
}

export async function cacheLookup(redis: Redis, prompt: string, threshold: number): Promise<CacheHit | null> {
  if (!redisReady(redis)) return null;
  const exactKey = cacheKey(prompt);
  const exact = parse(await redis.get(exactKey));
  if (exact) return { key: exactKey, entry: exact, similarity: 1 };
  let best: CacheHit | null = null;
  let cursor = '0';
  let examined = 0;
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${CACHE_PREFIX}*`, 'COUNT', 200);
    cursor = next;
    const candidates = keys.filter((k) => !k.startsWith(FILL_PREFIX)).slice(0, SCAN_LIMIT - examined);
    examined += candidates.length;
    if (candidates.length) {
      const values = await redis.mget(...candidates);
      values.forEach((raw, i) => {
        const entry = parse(raw);
        if (!entry) return;
        const similarity = jaccard(prompt, entry.prompt);
        if (similarity >= threshold && (!best || similarity > best.similarity)) {
          best = { key: candidates[i]!, entry, similarity };
        }
      });
    }
  } while (cursor !== '0' && examined < SCAN_LIMIT);
  return best;
}

export async function cacheStore(redis: Redis, prompt: string, response: string, model: string): Promise<void> {
  if (!redisReady(redis)) return;
  const entry: CacheEntry = { prompt, response, model, created_at: new Date().toISOString() };
  await redis.set(cacheKey(prompt), JSON.stringify(entry), 'EX', TTL_SECONDS);
}
