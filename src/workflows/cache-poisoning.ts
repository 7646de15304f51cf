/**
 * INC-15 Semantic cache poisoning (seed 002). Diagnoses the cache hit rate (above the configured
 * share is anomalous), the cache key count, the similarity threshold, a known query's answer and the
 * cached entries that would be served for it. Wrong answers found → tighten the similarity threshold
 * to 0.98 (auto: it only makes matching stricter) and flush the cache keys by pattern in bounded
 * batches (approve). Verify: the known query gets its correct answer and no wrong entry remains.
 */
import { acts, longActs, runIncident, type Check, type Plan, type Runbook, type RunbookContext, type Step } from './kernel';
import type { IncidentInput, IncidentRecord } from './contracts';
import type { ProbeAnswer, SuspiciousEntries } from '../activities/redis/semantic-cache';
import { readsTargetApiSettings } from './target-api';

/** Seed 002: "Increase minimum similarity score for cache hits" to 0.98. */
export const SAFE_SIMILARITY = 0.98;

export interface PoisoningFacts {
  keyPattern: string;
  hitRatePct?: number;
  hitRateAnomalyPct: number;
  keyCount: number;
  keyCountCapped: boolean;
  threshold?: number;
  probePrompt: string;
  probe: ProbeAnswer;
  suspicious: SuspiciousEntries;
}

export type PoisoningStep = 'tighten-threshold' | 'flush-cache';

function numberAt(body: unknown, ...path: string[]): number | undefined {
  let v: unknown = body;
  for (const p of path) v = v && typeof v === 'object' ? (v as Record<string, unknown>)[p] : undefined;
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

/** The similarity threshold the target runs with; `unreadable` says why it is not known. */
async function thresholdReading(target: string): Promise<{ threshold?: number; unreadable?: string }> {
  if (readsTargetApiSettings()) {
    const g = await acts.governanceSettings({ target });
    return g.cacheSimilarityThreshold !== undefined ? { threshold: g.cacheSimilarityThreshold } : { unreadable: g.unreadable.join('; ') };
  }
  const r = await acts.adminRequest({ target, method: 'GET', path: '/v1/governance/settings' });
  const threshold = numberAt(r.body, 'settings', 'cache_similarity_threshold');
  return threshold !== undefined ? { threshold } : {};
}

async function currentThreshold(target: string): Promise<number | undefined> {
  return (await thresholdReading(target)).threshold;
}

/** The SLA window's cache hit rate (seed 002: `jq '.metrics.cache_hit_rate_pct'`) and request count. */
async function hitRateReading(target: string): Promise<{ hitRatePct?: number; requests?: number; unreadable?: string }> {
  if (readsTargetApiSettings()) {
    const s = await acts.slaMetrics({ target });
    const unreadable = s.available ? (s.unreadable ?? []).join('; ') : `SLA metrics unavailable: ${s.error ?? ''}`;
    return {
      ...(s.cacheHitRatePct !== undefined ? { hitRatePct: s.cacheHitRatePct } : {}),
      ...(s.requestCount !== undefined ? { requests: s.requestCount } : {}),
      ...(unreadable ? { unreadable } : {}),
    };
  }
  const sla = await acts.adminRequest({ target, method: 'GET', path: '/v1/notifications/sla/metrics' });
  const hitRatePct = numberAt(sla.body, 'metrics', 'cache_hit_rate_pct');
  const requests = numberAt(sla.body, 'metrics', 'request_count');
  return { ...(hitRatePct !== undefined ? { hitRatePct } : {}), ...(requests !== undefined ? { requests } : {}) };
}

async function diagnose(ctx: RunbookContext): Promise<PoisoningFacts> {
  const t = ctx.target;
  const cache = await acts.describeSemanticCache({ target: t });
  const [sla, keys, reading, probe] = await Promise.all([
    hitRateReading(t),
    acts.countKeys({ target: t, pattern: cache.keyPattern }),
    thresholdReading(t),
    acts.probeKnownQuery({ target: t }),
  ]);
  const threshold = reading.threshold;
  // The probe's own answer may have just been cached; scanning after it sees what users would get.
  const suspicious = await acts.findSuspiciousCacheEntries({ target: t, threshold: threshold ?? SAFE_SIMILARITY });
  const { hitRatePct, requests } = sla;
  const also = sla.unreadable ? ` (${sla.unreadable})` : '';
  ctx.finding(
    'cache hit rate',
    hitRatePct === undefined || hitRatePct <= cache.hitRateAnomalyPct,
    hitRatePct === undefined ? `not reported${also}` : `${hitRatePct}% over the last window (${requests ?? '?'} requests; above ${cache.hitRateAnomalyPct}% is anomalous)${also}`,
  );
  ctx.finding('cache key count', true, `${keys.count}${keys.capped ? '+' : ''} keys match ${cache.keyPattern}`);
  ctx.finding(
    'similarity threshold',
    threshold === undefined || threshold >= SAFE_SIMILARITY,
    threshold === undefined ? `not reported${reading.unreadable ? ` (${reading.unreadable})` : ''}` : `cache_similarity_threshold ${threshold} (safe: ${SAFE_SIMILARITY})`,
  );
  ctx.finding(
    'known query',
    probe.correct,
    probe.status === 0
      ? `"${cache.probePrompt}" could not be asked: ${probe.error ?? 'no answer'}`
      : `"${cache.probePrompt}" → HTTP ${probe.status}, "${probe.answer}"${probe.cached === undefined ? (probe.unreadable ? ` (from cache or not: unknown, ${probe.unreadable})` : '') : probe.cached ? ' (from cache)' : ' (from a provider)'}`,
  );
  ctx.finding(
    'suspicious cache entries',
    suspicious.suspicious === 0,
    suspicious.example
      ? `${suspicious.suspicious} of ${suspicious.scanned} entries would answer the known query wrongly, e.g. ${suspicious.example.key}: ` +
          `"${suspicious.example.prompt}" → "${suspicious.example.response}" (similarity ${suspicious.example.similarity})`
      : `none among ${suspicious.scanned} scanned entries`,
  );
  if (suspicious.unreadable) ctx.finding('unreadable cache entries', false, suspicious.unreadableDetail ?? `${suspicious.unreadable} entries`);
  return {
    keyPattern: cache.keyPattern,
    ...(hitRatePct !== undefined ? { hitRatePct } : {}),
    hitRateAnomalyPct: cache.hitRateAnomalyPct,
    keyCount: keys.count,
    keyCountCapped: keys.capped,
    ...(threshold !== undefined ? { threshold } : {}),
    probePrompt: cache.probePrompt,
    probe,
    suspicious,
  };
}

/** Pure decision over the findings. */
export function planCachePoisoning(f: PoisoningFacts): Omit<Plan, 'steps'> & { steps: PoisoningStep[] } {
  const hitRate = f.hitRatePct === undefined ? 'hit rate not reported' : `hit rate ${f.hitRatePct}%`;
  const wrongAnswer = f.probe.status === 200 && !f.probe.correct;
  if (wrongAnswer || f.suspicious.suspicious > 0) {
    const loose = f.threshold !== undefined && f.threshold < SAFE_SIMILARITY;
    return {
      diagnosis:
        `cache poisoned: ${wrongAnswer ? `"${f.probePrompt}" is answered "${f.probe.answer}"` : 'the known query is answered correctly'}, ` +
        `${f.suspicious.suspicious} cached entr${f.suspicious.suspicious === 1 ? 'y' : 'ies'} would answer it wrongly; ${hitRate}` +
        `${loose ? `; similarity threshold ${f.threshold} is loose` : ''}`,
      rootCause: loose
        ? `wrong answers in the semantic cache, served for other prompts by a loose similarity threshold (${f.threshold})`
        : 'wrong answers stored in the semantic cache',
      steps: loose ? ['tighten-threshold', 'flush-cache'] : ['flush-cache'],
    };
  }
  if (f.probe.status !== 200) {
    return {
      diagnosis: `the known query could not be checked (${f.probe.status === 0 ? f.probe.error ?? 'no answer' : `HTTP ${f.probe.status}`}) and no wrong cache entry was found`,
      escalate: 'the gateway does not answer the known query: not a cache problem this runbook can fix',
      steps: [],
    };
  }
  return {
    diagnosis: `cache answers are correct: "${f.probePrompt}" → "${f.probe.answer}", no wrong entry among ${f.suspicious.scanned}; ${hitRate}`,
    falseAlarm: true,
    steps: [],
  };
}

const runbook: Runbook<PoisoningFacts> = {
  name: 'cachePoisoning',
  diagnose,
  plan(f, ctx): Plan {
    const t = ctx.target;
    const p = planCachePoisoning(f);
    const all: Record<PoisoningStep, Step> = {
      'tighten-threshold': {
        id: 'tighten-threshold',
        title: `Tighten the cache similarity threshold to ${SAFE_SIMILARITY}`,
        risk: 'auto',
        resource: 'api',
        describe: `set cache_similarity_threshold from ${f.threshold ?? '?'} to ${SAFE_SIMILARITY} through the governance API`,
        precondition: async () => {
          const now = await currentThreshold(t);
          return { ok: now === undefined || now < SAFE_SIMILARITY, detail: `cache_similarity_threshold ${now ?? 'not reported'}` };
        },
        run: async () => {
          await acts.adminRequest({
            target: t,
            method: 'POST',
            path: '/v1/governance/settings',
            body: { cache_similarity_threshold: SAFE_SIMILARITY, reason: `${ctx.incidentId}: semantic cache poisoning` },
          });
          return `cache_similarity_threshold set to ${SAFE_SIMILARITY}`;
        },
      },
      'flush-cache': {
        id: 'flush-cache',
        title: `Flush cache keys matching ${f.keyPattern}`,
        risk: 'approve',
        resource: 'redis',
        describe: `delete the ${f.keyCount}${f.keyCountCapped ? '+' : ''} keys matching ${f.keyPattern} with SCAN + UNLINK in bounded batches`,
        precondition: async () => {
          const s = await acts.findSuspiciousCacheEntries({ target: t, threshold: (await currentThreshold(t)) ?? SAFE_SIMILARITY });
          return { ok: s.suspicious > 0, detail: `${s.suspicious} wrong entries among ${s.scanned}` };
        },
        run: async () => {
          const r = await longActs.unlinkByPattern({ target: t, pattern: f.keyPattern });
          return `unlinked ${r.deleted} keys matching ${f.keyPattern}${r.done ? '' : ' (stopped at the cap)'}`;
        },
      },
    };
    return { ...p, steps: p.steps.map((id) => all[id]) };
  },
  async verify(ctx): Promise<Check> {
    const t = ctx.target;
    const probe = await acts.probeKnownQuery({ target: t });
    const threshold = await currentThreshold(t);
    const s = await acts.findSuspiciousCacheEntries({ target: t, threshold: threshold ?? SAFE_SIMILARITY });
    return {
      ok: probe.correct && s.suspicious === 0,
      detail: `known query → HTTP ${probe.status} "${probe.answer}" (${probe.correct ? 'correct' : 'wrong'}), ${s.suspicious} wrong cache entries, threshold ${threshold ?? '?'}`,
    };
  },
};

/** INC-15: semantic cache poisoning. */
export async function cachePoisoning(input: IncidentInput): Promise<IncidentRecord> {
  return runIncident(runbook, input);
}
