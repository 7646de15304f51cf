/**
 * Activities on an LLM gateway's semantic cache (INC-15): cached answers in Redis under the target's
 * cache key pattern, and a probe that asks the gateway a query whose answer is known. Cached prompts
 * and answers may hold user data, so only redacted, truncated excerpts ever leave these activities.
 */
import type { ActivityDeps } from '../engine/deps';
import { withRedisClient, type RedisClient } from './redis';
import { adminKey, targetConfig } from '../engine/deps';
import { answerReader, fieldAt } from '../target-api/api-fields';
import { ErrorType, describeError, permanent } from '../engine/errors';

export interface CacheEntryExcerpt {
  /** The key with its hash shortened. */
  key: string;
  prompt: string;
  response: string;
  similarity: number;
}

export interface SuspiciousEntries {
  scanned: number;
  /** Entries that would be served for the probe prompt but do not carry its known answer. */
  suspicious: number;
  example?: CacheEntryExcerpt;
  /** JSON entries without the configured prompt or response field (`cache.entry`): not checked, and said so. */
  unreadable?: number;
  unreadableDetail?: string;
}

export interface ProbeAnswer {
  status: number;
  /** Redacted and truncated. */
  answer: string;
  correct: boolean;
  cached?: boolean;
  error?: string;
  /** The answer lacks the configured `api.fields.chatCompletion.cached`: whether it came from the cache is unknown. */
  unreadable?: string;
}

const MAX_SCAN = 5000;
const EXCERPT = 60;

/** Masks what could identify a person or a credential, then truncates. */
export function redactExcerpt(text: string, max = EXCERPT): string {
  const masked = text
    .replace(/[\w.+-]+@[\w-]+(\.[\w-]+)+/g, '<email>')
    .replace(/\b(sk|pk|key|tok)[-_][\w-]{6,}/gi, '<secret>')
    .replace(/\d[\d -]{7,}\d/g, '<number>');
  return masked.length > max ? `${masked.slice(0, max)}…` : masked;
}

function shortKey(key: string): string {
  const i = key.lastIndexOf(':');
  const tail = key.slice(i + 1);
  return tail.length > 12 ? `${key.slice(0, i + 1)}${tail.slice(0, 12)}…` : key;
}

function tokens(text: string): Set<string> {
  const norm = text.toLowerCase().replace(/[^a-z0-9+\-*/.\s]/g, ' ').replace(/\.(?=\s|$)/g, ' ');
  return new Set(norm.split(/\s+/).filter(Boolean));
}

/** Token-set Jaccard similarity, the usual measure of a semantic cache's "same question". */
export function similarity(a: string, b: string): number {
  const x = tokens(a);
  const y = tokens(b);
  if (x.size === 0 && y.size === 0) return 1;
  let inter = 0;
  for (const t of x) if (y.has(t)) inter++;
  return inter / (x.size + y.size - inter);
}

type Entry = { prompt: string; response: string } | 'unreadable' | undefined;

/** A cached entry by the configured dotted paths (`cache.entry`); a JSON object without them is unreadable. */
export function parseEntry(raw: string | null, fields: { prompt: string; response: string }): Entry {
  if (!raw) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    return undefined;
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return undefined;
  const prompt = fieldAt(v, fields.prompt);
  const response = fieldAt(v, fields.response);
  return prompt.found && response.found && typeof prompt.value === 'string' && typeof response.value === 'string'
    ? { prompt: prompt.value, response: response.value }
    : 'unreadable';
}

export function createSemanticCacheActivities(deps: ActivityDeps) {
  const doFetch = deps.fetch ?? fetch;

  const withRedis = <T>(target: string, fn: (r: RedisClient) => Promise<T>): Promise<T> => withRedisClient(deps, target, fn);

  /**
   * Scans cached answers (bounded) for entries the gateway would serve for the known query at
   * `threshold` whose answer lacks the known answer: the signature of a poisoned or too loosely
   * matched cache.
   */
  async function findSuspiciousCacheEntries(input: { target: string; threshold: number }): Promise<SuspiciousEntries> {
    const { keyPattern: pattern, probe, entry: fields } = targetConfig(deps, input.target).cache;
    return withRedis(input.target, async (r) => {
      let cursor = '0';
      let scanned = 0;
      let suspicious = 0;
      let example: CacheEntryExcerpt | undefined;
      let unreadable = 0;
      do {
        const step = await r.scan(cursor, { match: pattern, count: 500 });
        cursor = step.cursor;
        const keys = step.keys;
        if (keys.length === 0) continue;
        scanned += keys.length;
        const values = await r.mget(keys);
        values.forEach((raw, i) => {
          const entry = parseEntry(raw, fields);
          if (entry === 'unreadable') unreadable++;
          if (!entry || entry === 'unreadable') return;
          const sim = similarity(probe.prompt, entry.prompt);
          if (sim < input.threshold || entry.response.includes(probe.expect)) return;
          suspicious++;
          if (!example || sim > example.similarity) {
            example = { key: shortKey(keys[i] as string), prompt: redactExcerpt(entry.prompt), response: redactExcerpt(entry.response), similarity: Math.round(sim * 100) / 100 };
          }
        });
      } while (cursor !== '0' && scanned < MAX_SCAN);
      const setting = `targets.${input.target}.cache.entry`;
      return {
        scanned,
        suspicious,
        ...(example ? { example } : {}),
        ...(unreadable > 0
          ? { unreadable, unreadableDetail: `${unreadable} JSON entries have no string \`${fields.prompt}\` and \`${fields.response}\` (set ${setting}.prompt and .response)` }
          : {}),
      };
    });
  }

  /** Asks the gateway the known query (as the admin) and checks the answer. */
  async function probeKnownQuery(input: { target: string }): Promise<ProbeAnswer> {
    const t = targetConfig(deps, input.target);
    const key = adminKey(deps, input.target);
    if (!key) throw permanent(ErrorType.NotConfigured, `target "${input.target}" has no admin key configured`);
    const { prompt, expect, model } = t.cache.probe;
    try {
      const res = await doFetch(new URL('/v1/chat/completions', t.baseUrl).toString(), {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model, messages: [{ role: 'user', content: prompt }] }),
        signal: AbortSignal.timeout(10_000),
      });
      const body = (await res.json().catch(() => ({}))) as { choices?: { message?: { content?: unknown } }[] };
      const content = body.choices?.[0]?.message?.content;
      const answer = typeof content === 'string' ? content : '';
      const r = answerReader(deps, input.target, 'chatCompletion', 'POST /v1/chat/completions', body);
      const cached = res.ok ? r.boolean('cached') : undefined;
      return {
        status: res.status,
        answer: redactExcerpt(answer),
        correct: res.ok && answer.includes(expect),
        ...(cached !== undefined ? { cached } : {}),
        ...(res.ok && cached === undefined ? { unreadable: r.problems.join('; ') } : {}),
      };
    } catch (err) {
      return { status: 0, answer: '', correct: false, error: describeError(err) };
    }
  }

  /** What a runbook may know about the target's semantic cache: its shape, never its contents. */
  async function describeSemanticCache(input: { target: string }): Promise<{ keyPattern: string; hitRateAnomalyPct: number; probePrompt: string }> {
    const c = targetConfig(deps, input.target).cache;
    return { keyPattern: c.keyPattern, hitRateAnomalyPct: c.hitRateAnomalyPct, probePrompt: c.probe.prompt };
  }

  return { describeSemanticCache, findSuspiciousCacheEntries, probeKnownQuery };
}
