/**
 * INC-15 Semantic cache poisoning (seed 002). Diagnoses the cache hit rate (above the configured
 * share is anomalous), the cache key count, the similarity threshold, a known query's answer and the
 * cached entries that would be served for it. Wrong answers found → tighten the similarity threshold
 * to 0.98 (auto: it only makes matching stricter) and flush the cache keys by pattern in bounded
 * batches (approve). Verify: the known query gets its correct answer and no wrong entry remains.
 */
import { patched } from '@temporalio/workflow';
import { acts, buildSteps, longActs, runIncident, type Check, type Plan, type Runbook, type RunbookContext } from './kernel';
import type { IncidentInput, IncidentRecord } from './contracts';
import type { ProbeAnswer, SuspiciousEntries } from '../activities/redis/semantic-cache';
import { readsTargetApiSettings } from './target-api';
import { defineRunbook, type Decision, type StepIdOf } from './shape';

/** What this runbook is: the catalog, routes, the client script and the README's table read it. */
export const meta = defineRunbook({
  name: 'cachePoisoning',
  scenario: 'INC-15',
  title: 'Semantic cache poisoning',
  severity: 2,
  source: 'seed 002',
  alerts: ['AlfredCachePoisoning'],
  diagnostics: [
    'cache hit rate from the SLA metrics (> 80 % is anomalous)',
    'cache key count (SCAN by pattern)',
    'similarity threshold from the governance settings',
    'a known query asked through the gateway',
    'cached entries that would answer it wrongly (redacted, truncated)',
  ],
  steps: [
    { id: 'tighten-threshold', title: 'Tighten the cache similarity threshold to 0.98', risk: 'auto' },
    { id: 'flush-cache', title: 'Flush cache keys by pattern (SCAN + UNLINK, bounded batches)', risk: 'approve' },
  ],
  verify: 'the known query returns its correct answer and no wrong entry remains',
});

/** seed 002 INC-15: "Increase minimum similarity score for cache hits", `{"cache_similarity_threshold":0.98}`. */
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
  /** Requests in the SLA window the hit rate is over, and why the hit rate or the threshold could not be read. */
  requests?: number;
  hitRateUnreadable?: string;
  thresholdUnreadable?: string;
  /** Only observed signals count (absent in facts of incidents begun before this rule). */
  evidenceRule?: boolean;
}

/** A signal that could not be observed, and why (naming the setting that points at it). */
export interface Unobserved {
  check: string;
  why: string;
}

/** Pure: the known query was asked and answered with a text (right or wrong). */
const probeAnswered = (p: ProbeAnswer): boolean => p.status === 200 && p.answer !== '';

/**
 * Pure: the signals these facts could not observe. A hit rate over no requests, a threshold the
 * target does not report, a scan that found no entry (not even the known query's own answer) or
 * entries it could not read are not health. Facts of incidents begun before this rule have none.
 */
export function unobservedCache(f: PoisoningFacts): Unobserved[] {
  if (!f.evidenceRule) return [];
  const out: Unobserved[] = [];
  const also = f.hitRateUnreadable ? `: ${f.hitRateUnreadable}` : '';
  if (f.hitRatePct === undefined) out.push({ check: 'cache hit rate', why: `the SLA metrics report no metrics.cache_hit_rate_pct${also}` });
  else if (f.requests === undefined) out.push({ check: 'cache hit rate', why: `the SLA metrics report no request count${also}` });
  else if (f.requests === 0) out.push({ check: 'cache hit rate', why: 'no request in the SLA window, not even the known query' });
  if (f.threshold === undefined) out.push({ check: 'similarity threshold', why: f.thresholdUnreadable || 'the governance settings report no cache similarity threshold' });
  if (f.probe.status !== 200) {
    out.push({ check: 'known query', why: `"${f.probePrompt}" could not be asked: ${f.probe.status === 0 ? (f.probe.error ?? 'no answer') : `HTTP ${f.probe.status}`}` });
  } else if (!probeAnswered(f.probe)) {
    out.push({ check: 'known query', why: `the answer to "${f.probePrompt}" has no text in choices[0].message.content` });
  }
  if (f.suspicious.scanned === 0) {
    out.push({ check: 'cache entries', why: `no key matches ${f.keyPattern}, not even the known query's answer (setting cache.keyPattern)` });
  } else if (f.suspicious.unreadable) {
    out.push({ check: 'cache entries', why: f.suspicious.unreadableDetail ?? `${f.suspicious.unreadable} entries could not be read (setting cache.entry)` });
  }
  return out;
}

export type PoisoningStep = StepIdOf<typeof meta>;

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
  // The known query first: its request is then in the SLA window and its answer in the cache, so a
  // window or a scan that shows neither could not be read. (Incidents begun before this rule asked it
  // alongside the others, and replay so.)
  const evidence = patched('evidence-before-conclusions');
  const asked = evidence ? await acts.probeKnownQuery({ target: t }) : undefined;
  const [sla, keys, reading, probe] = await Promise.all([
    hitRateReading(t),
    acts.countKeys({ target: t, pattern: cache.keyPattern }),
    thresholdReading(t),
    asked ?? acts.probeKnownQuery({ target: t }),
  ]);
  const threshold = reading.threshold;
  // The probe's own answer may have just been cached; scanning after it sees what users would get.
  const suspicious = await acts.findSuspiciousCacheEntries({ target: t, threshold: threshold ?? SAFE_SIMILARITY });
  const { hitRatePct, requests } = sla;
  const also = sla.unreadable ? ` (${sla.unreadable})` : '';
  const facts: PoisoningFacts = {
    keyPattern: cache.keyPattern,
    ...(hitRatePct !== undefined ? { hitRatePct } : {}),
    hitRateAnomalyPct: cache.hitRateAnomalyPct,
    keyCount: keys.count,
    keyCountCapped: keys.capped,
    ...(threshold !== undefined ? { threshold } : {}),
    probePrompt: cache.probePrompt,
    probe,
    suspicious,
    ...(evidence
      ? {
          evidenceRule: true,
          ...(requests !== undefined ? { requests } : {}),
          ...(sla.unreadable ? { hitRateUnreadable: sla.unreadable } : {}),
          ...(reading.unreadable ? { thresholdUnreadable: reading.unreadable } : {}),
        }
      : {}),
  };
  const unknown = new Map(unobservedCache(facts).map((u) => [u.check, u.why]));
  const record = (check: string, ok: boolean, detail: string): void => {
    const why = unknown.get(check);
    if (why !== undefined) ctx.unknown(check, why);
    else ctx.finding(check, ok, detail);
  };
  record(
    'cache hit rate',
    hitRatePct === undefined || hitRatePct <= cache.hitRateAnomalyPct,
    hitRatePct === undefined ? `not reported${also}` : `${hitRatePct}% over the last window (${requests ?? '?'} requests; above ${cache.hitRateAnomalyPct}% is anomalous)${also}`,
  );
  ctx.finding('cache key count', true, `${keys.count}${keys.capped ? '+' : ''} keys match ${cache.keyPattern}`);
  record(
    'similarity threshold',
    threshold === undefined || threshold >= SAFE_SIMILARITY,
    threshold === undefined ? `not reported${reading.unreadable ? ` (${reading.unreadable})` : ''}` : `cache_similarity_threshold ${threshold} (safe: ${SAFE_SIMILARITY})`,
  );
  record(
    'known query',
    probe.correct,
    probe.status === 0
      ? `"${cache.probePrompt}" could not be asked: ${probe.error ?? 'no answer'}`
      : `"${cache.probePrompt}" → HTTP ${probe.status}, "${probe.answer}"${probe.cached === undefined ? (probe.unreadable ? ` (from cache or not: unknown, ${probe.unreadable})` : '') : probe.cached ? ' (from cache)' : ' (from a provider)'}`,
  );
  const entries = unknown.get('cache entries');
  if (entries !== undefined) ctx.unknown('cache entries', entries);
  // Entries that could not all be read show no wrong one: only wrong ones found are a finding then.
  if (entries === undefined || suspicious.suspicious > 0) {
    ctx.finding(
      'suspicious cache entries',
      suspicious.suspicious === 0,
      suspicious.example
        ? `${suspicious.suspicious} of ${suspicious.scanned} entries would answer the known query wrongly, e.g. ${suspicious.example.key}: ` +
            `"${suspicious.example.prompt}" → "${suspicious.example.response}" (similarity ${suspicious.example.similarity})`
        : `none among ${suspicious.scanned} scanned entries`,
    );
  }
  if (suspicious.unreadable && !evidence) ctx.finding('unreadable cache entries', false, suspicious.unreadableDetail ?? `${suspicious.unreadable} entries`);
  return facts;
}

/** Pure decision over the findings. */
export function planCachePoisoning(f: PoisoningFacts): Decision<PoisoningStep> {
  const hitRate = f.hitRatePct === undefined ? 'hit rate not reported' : `hit rate ${f.hitRatePct}%`;
  if (f.evidenceRule) return planFromEvidence(f, hitRate);
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

/**
 * Pure: the decision once only observed signals count. Poison is seen in wrong cached entries, or in
 * a wrong answer the target says came from the cache; the threshold is tightened (automatically)
 * only when it was read and is loose. A wrong answer not known to come from the cache, or any signal
 * left unobserved, escalates instead of acting or of calling it a false alarm.
 */
function planFromEvidence(f: PoisoningFacts, hitRate: string): Decision<PoisoningStep> {
  const wrongAnswer = probeAnswered(f.probe) && !f.probe.correct;
  if (f.suspicious.suspicious > 0 || (wrongAnswer && f.probe.cached === true)) {
    const loose = f.threshold !== undefined && f.threshold < SAFE_SIMILARITY;
    const probe = wrongAnswer ? `"${f.probePrompt}" is answered "${f.probe.answer}"` : probeAnswered(f.probe) ? 'the known query is answered correctly' : 'the known query got no answer';
    return {
      diagnosis:
        `cache poisoned: ${probe}, ${f.suspicious.suspicious} cached entr${f.suspicious.suspicious === 1 ? 'y' : 'ies'} would answer it wrongly; ${hitRate}` +
        `${loose ? `; similarity threshold ${f.threshold} is loose` : f.threshold === undefined ? '; similarity threshold not known' : ''}`,
      rootCause: loose
        ? `wrong answers in the semantic cache, served for other prompts by a loose similarity threshold (${f.threshold})`
        : 'wrong answers stored in the semantic cache',
      steps: loose ? ['tighten-threshold', 'flush-cache'] : ['flush-cache'],
    };
  }
  if (wrongAnswer && f.probe.cached === false) {
    return {
      diagnosis: `"${f.probePrompt}" is answered "${f.probe.answer}" by a provider, not from the cache, and no wrong cache entry was found`,
      escalate: 'a provider answers the known query wrongly: not a cache problem this runbook can fix',
      steps: [],
    };
  }
  if (wrongAnswer) {
    const why = `the wrong answer to "${f.probePrompt}" does not say whether it came from the cache${f.probe.unreadable ? ` (${f.probe.unreadable})` : ''}`;
    return { diagnosis: `${why}, and no wrong cache entry was found`, escalate: `could not observe where the wrong answer came from: ${why}`, steps: [] };
  }
  const unknown = unobservedCache(f);
  if (unknown.length > 0) {
    return {
      diagnosis: `no wrong answer seen, but ${unknown.map((u) => u.check).join(', ')} could not be observed`,
      escalate: unknown.map((u) => `could not observe ${u.check}: ${u.why}`).join('; '),
      steps: [],
    };
  }
  return {
    diagnosis: `cache answers are correct: "${f.probePrompt}" → "${f.probe.answer}", no wrong entry among ${f.suspicious.scanned}; ${hitRate}`,
    falseAlarm: true,
    steps: [],
  };
}

/** Pure: recovery is the known query answered correctly and no wrong entry left among entries that could all be read. */
export function verifyCache(probe: ProbeAnswer, s: SuspiciousEntries, threshold: number | undefined): Check {
  const detail = `known query → HTTP ${probe.status} "${probe.answer}" (${probe.correct ? 'correct' : 'wrong'}), ${s.suspicious} wrong cache entries, threshold ${threshold ?? '?'}`;
  if (probe.status === 0) return { ok: false, detail, unknown: `known query: could not be asked: ${probe.error ?? 'no answer'}` };
  if (probe.status === 200 && !probeAnswered(probe)) return { ok: false, detail, unknown: 'known query: the answer has no text in choices[0].message.content' };
  if (probe.correct && s.suspicious === 0 && s.unreadable) {
    return { ok: false, detail, unknown: `cache entries: ${s.unreadableDetail ?? `${s.unreadable} entries could not be read (setting cache.entry)`}` };
  }
  return { ok: probe.correct && s.suspicious === 0, detail };
}

const runbook: Runbook<PoisoningFacts> = {
  meta,
  diagnose,
  plan(f, ctx): Plan {
    const t = ctx.target;
    const p = planCachePoisoning(f);
    const steps = buildSteps(meta, p.steps, {
      'tighten-threshold': () => ({
        resource: 'api',
        describe: `set cache_similarity_threshold from ${f.threshold ?? '?'} to ${SAFE_SIMILARITY} through the governance API`,
        precondition: async () => {
          const now = await currentThreshold(t);
          // An automatic step rests on what was read: a threshold the target no longer reports is not loose.
          const loose = now === undefined ? !f.evidenceRule : now < SAFE_SIMILARITY;
          return { ok: loose, detail: `cache_similarity_threshold ${now ?? 'not reported'}` };
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
      }),
      'flush-cache': () => ({
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
      }),
    });
    return { ...p, steps };
  },
  async verify(ctx, f): Promise<Check> {
    const t = ctx.target;
    const probe = await acts.probeKnownQuery({ target: t });
    const threshold = await currentThreshold(t);
    const s = await acts.findSuspiciousCacheEntries({ target: t, threshold: threshold ?? SAFE_SIMILARITY });
    if (f.evidenceRule) return verifyCache(probe, s, threshold);
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
