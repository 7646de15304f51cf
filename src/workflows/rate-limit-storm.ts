/**
 * INC-10 API rate limit storm (seed 002). The api's own log lines say who is refused with 429 (client
 * address and key id); key ids are matched to their owners by hash prefix, never by key. One client
 * with most of the 429s → block its address at the gateway (approve). Many clients whose keys belong
 * to one tenant → a legitimate spike: raise the limit and recreate the api with it (approve).
 * Anything else is a distributed attack: escalated (CDN / WAF level, no safe remedy here).
 */
import { patched } from '@temporalio/workflow';
import { acts, buildSteps, longActs, runIncident, type Check, type Plan, type Runbook, type RunbookContext, type StepWork } from './kernel';
import type { IncidentInput, IncidentRecord } from './contracts';
import type { KeyOwner, RateLimitSummary } from '../activities/target-api/rate-limits';
import { setting } from './threshold-settings';
import { defineRunbook, type Decision, type StepIdOf } from './shape';

/** What this runbook is: the catalog, routes, the client script and the README's table read it. */
export const meta = defineRunbook({
  name: 'rateLimitStorm',
  scenario: 'INC-10',
  title: 'API rate limit storm',
  severity: 2,
  source: 'seed 002',
  alerts: ['AlfredRateLimitStorm'],
  diagnostics: [
    'top client addresses and key ids among the 429s in the api logs',
    'owners (tenants) of those keys, by key-hash prefix',
    'rate-limit counter keys in Redis',
    'the limit the api runs with (RATE_LIMIT_PER_MINUTE)',
  ],
  steps: [
    { id: 'block-client', title: 'Single abuser: block its address at the gateway', risk: 'approve' },
    { id: 'raise-rate-limit', title: 'Legitimate spike: raise RATE_LIMIT_PER_MINUTE and recreate the api', risk: 'approve' },
  ],
  verify: '429s back to baseline (seed 002: fewer than 10 in 2 minutes)',
});

export type RateLimitStep = StepIdOf<typeof meta>;

/** The decision, with what its step acts on: the client address to block, or the raised limit. */
export interface RateLimitDecision extends Decision<RateLimitStep> {
  ip?: string;
  limit?: number;
}

/**
 * A key-owned share of the 429s at least this large means known customers, not an attack: the default
 * of `rateLimit.knownKeySharePct`, and its value in incidents begun before it was a setting.
 */
export const KNOWN_KEY_SHARE_PCT = 80;
/** seed 002 INC-10: "export RATE_LIMIT_PER_MINUTE=120 # Default is 60" (the api's limit when the variable is unset). */
const DEFAULT_LIMIT_PER_MINUTE = 60;

export interface RateLimitPolicy {
  envVar: string;
  keyPattern: string;
  baseline429: number;
  windowSeconds: number;
  singleClientSharePct: number;
  raiseFactor: number;
  maxPerMinute: number;
  /** Absent in the policy of incidents begun before it was a setting. */
  knownKeySharePct?: number;
}

export interface RateLimitFacts {
  summary: RateLimitSummary;
  owners: KeyOwner[];
  counterKeys: number;
  limitPerMinute: number | null;
  blocked: string[];
  policy: RateLimitPolicy;
  /** When the mitigation took effect (workflow clock): verification counts 429s from then on. */
  mitigatedAt?: number;
  /** 429s count only among log lines the settings recognise (absent in facts of incidents begun before this rule). */
  evidenceRule?: boolean;
}

/** A signal that could not be observed, and why (naming the setting that points at it). */
export interface Unobserved {
  check: string;
  why: string;
}

/** The check under which the 429 count is recorded. */
export const count429Check = (s: RateLimitSummary): string => `429s in the api logs (${s.sinceSeconds} s)`;

/**
 * Pure: whether a window of api log lines can say how many requests were refused with 429. No
 * request line recognised (not even the engine's own GET /health) shows nothing; neither do requests
 * answered 429 that the rate-limit pattern does not recognise.
 */
export function unobserved429s(s: RateLimitSummary, baseline: number): Unobserved | undefined {
  const check = count429Check(s);
  if ((s.requests ?? 0) === 0) {
    const why = s.lines
      ? `no request line recognised among ${s.lines} api log lines in the last ${s.sinceSeconds} s (setting logs.status)`
      : `no api log line in the last ${s.sinceSeconds} s, not even the engine's own GET /health`;
    return { check, why };
  }
  if ((s.status429 ?? 0) > baseline && s.total429 <= baseline) {
    return { check, why: `${s.status429} requests answered 429 in the last ${s.sinceSeconds} s, but ${s.total429} lines recognised as rate-limit refusals (setting logs.rateLimited)` };
  }
  return undefined;
}

/**
 * Pure: the signals the decision over these facts rests on that could not be observed. Facts of
 * incidents begun before this rule have none.
 */
export function unobservedRateLimits(f: RateLimitFacts): Unobserved[] {
  if (!f.evidenceRule) return [];
  const s = f.summary;
  const count = unobserved429s(s, f.policy.baseline429);
  if (count) return [count];
  if (s.total429 <= f.policy.baseline429) return [];
  // Refusals whose line names no client could be one client's or many: single or distributed is not known.
  const top = s.clients[0];
  const single = top !== undefined && top.count * 100 >= s.total429 * f.policy.singleClientSharePct;
  const unattributed = s.withoutClient ?? 0;
  if (!single && unattributed * 100 > s.total429 * (100 - f.policy.singleClientSharePct)) {
    return [{ check: 'clients among the 429s', why: `${unattributed} of ${s.total429} rate-limit refusals name no client address (setting logs.clientIp)` }];
  }
  return [];
}

/** Pure: raising the limit needs the current one; a limit the api's environment does not hold is not 60. */
function unobservedLimit(f: RateLimitFacts): Unobserved | undefined {
  if (!f.evidenceRule || f.limitPerMinute !== null) return undefined;
  return { check: `${f.policy.envVar} of the api`, why: `no number under ${f.policy.envVar} in the api container's environment (setting rateLimit.envVar)` };
}

export function rateLimitWindow(input: IncidentInput, policy: RateLimitPolicy): number {
  const w = input.params?.windowSeconds;
  return typeof w === 'number' && Number.isFinite(w) && w > 0 ? w : policy.windowSeconds;
}

async function diagnose(ctx: RunbookContext): Promise<RateLimitFacts> {
  const t = ctx.target;
  const policy = await acts.rateLimitPolicy({ target: t });
  const window = rateLimitWindow(ctx.input, policy);
  // A request of the engine's own first: a log read in the format the settings describe then shows
  // at least its line. (Incidents begun before this rule did not, and replay so.)
  const evidence = patched('evidence-before-conclusions');
  if (evidence) await acts.httpHealth({ target: t });
  const [summary, counters, env, blocks] = await Promise.all([
    acts.rateLimitSummary({ target: t, component: 'api', sinceSeconds: window }),
    acts.countKeys({ target: t, pattern: policy.keyPattern }),
    acts.containerEnvValue({ target: t, component: 'api', name: policy.envVar }),
    acts.blockedIps({ target: t }),
  ]);
  const owners = summary.keys.length ? await acts.keyOwners({ target: t, keyIds: summary.keys.map((k) => k.id) }) : [];
  const limit = env.value !== null && /^\d+$/.test(env.value) ? Number(env.value) : null;
  const topClients = summary.clients.slice(0, 5).map((c) => `${c.id} ×${c.count}`).join(', ') || 'none';
  const facts: RateLimitFacts = { summary, owners, counterKeys: counters.count, limitPerMinute: limit, blocked: blocks.ips, policy, ...(evidence ? { evidenceRule: true } : {}) };
  const unknown = unobservedRateLimits(facts);
  const countUnknown = unknown.find((u) => u.check === count429Check(summary));
  if (countUnknown) ctx.unknown(countUnknown.check, countUnknown.why);
  else ctx.finding(count429Check(summary), summary.total429 <= policy.baseline429, `${summary.total429} (baseline ≤ ${policy.baseline429}) from ${summary.distinctClients} clients${summary.withoutClient ? ` and ${summary.withoutClient} without a client address` : ''}; top: ${topClients}`);
  for (const u of unknown) if (u !== countUnknown) ctx.unknown(u.check, u.why);
  const keyDetail = summary.keys
    .slice(0, 5)
    .map((k) => {
      const o = owners.find((x) => x.keyId === k.id);
      return `${k.id} ×${k.count}${o ? ` (user ${o.userId}, ${o.tenant})` : ' (unknown key)'}`;
    })
    .join(', ');
  ctx.finding('keys among the 429s', true, `${keyDetail || 'none'}${summary.withoutKey ? `; ${summary.withoutKey} without a key` : ''}`);
  ctx.finding('rate-limit counters in Redis', true, `${counters.count}${counters.capped ? '+' : ''} keys matching ${policy.keyPattern}`);
  ctx.finding(`${policy.envVar} of the api`, limit !== null, limit !== null ? `${limit} per minute per client` : 'not set (image default)');
  return facts;
}

/** Share of the 429s carried by keys of known users, and the tenants they belong to. */
export function keyedShare(f: RateLimitFacts): { pct: number; tenants: string[] } {
  const byKey = new Map(f.owners.map((o) => [o.keyId, o]));
  let known = 0;
  const tenants = new Set<string>();
  for (const k of f.summary.keys) {
    const o = byKey.get(k.id);
    if (!o) continue;
    known += k.count;
    tenants.add(o.tenant);
  }
  const pct = f.summary.total429 > 0 ? Math.round((known / f.summary.total429) * 100) : 0;
  return { pct, tenants: [...tenants].sort() };
}

/** The raised limit, or null if it cannot go higher. */
export function raisedLimit(f: RateLimitFacts): number | null {
  const current = f.limitPerMinute ?? DEFAULT_LIMIT_PER_MINUTE;
  const next = Math.min(f.policy.maxPerMinute, Math.ceil(current * f.policy.raiseFactor));
  return next > current ? next : null;
}

/** Pure decision over the findings. */
export function planRateLimitStorm(f: RateLimitFacts, target: string): RateLimitDecision {
  const s = f.summary;
  const [unseen] = unobservedRateLimits(f);
  if (unseen) return { diagnosis: `${unseen.check} could not be observed: ${unseen.why}`, escalate: `could not observe ${unseen.check}: ${unseen.why}`, steps: [] };
  if (s.total429 <= f.policy.baseline429) {
    return { diagnosis: `${s.total429} 429s in ${s.sinceSeconds} s, within the baseline of ${f.policy.baseline429}: no storm`, falseAlarm: true, steps: [] };
  }
  const top = s.clients[0];
  const topPct = top ? Math.round((top.count / s.total429) * 100) : 0;
  if (top && topPct >= f.policy.singleClientSharePct) {
    if (f.blocked.includes(top.id)) {
      return { diagnosis: `${top.id} caused ${topPct}% of ${s.total429} 429s and is already blocked`, steps: [] };
    }
    return {
      diagnosis: `single abusive client: ${top.id} caused ${topPct}% of ${s.total429} 429s in ${s.sinceSeconds} s`,
      rootCause: `one client (${top.id}) far above the rate limit`,
      steps: ['block-client'],
      ip: top.id,
    };
  }
  const keyed = keyedShare(f);
  if (keyed.pct >= setting(f.policy.knownKeySharePct, KNOWN_KEY_SHARE_PCT) && keyed.tenants.length === 1) {
    const spread = `${s.distinctClients} clients, ${keyed.pct}% with keys of tenant ${keyed.tenants[0]}`;
    const current = unobservedLimit(f);
    if (current) return { diagnosis: `legitimate spike (${spread}); the limit the api runs with is not known`, escalate: `could not observe ${current.check}: ${current.why}`, steps: [] };
    const limit = raisedLimit(f);
    if (limit === null) {
      return {
        diagnosis: `legitimate spike (${spread}), but the limit is already at its maximum of ${f.policy.maxPerMinute}`,
        escalate: `legitimate traffic of ${keyed.tenants[0]} is rate-limited on ${target} and the limit cannot be raised further: capacity decision needed`,
        steps: [],
      };
    }
    return {
      diagnosis: `legitimate traffic spike: ${s.total429} 429s from ${spread}`,
      rootCause: `traffic of tenant ${keyed.tenants[0]} grew past ${f.limitPerMinute ?? DEFAULT_LIMIT_PER_MINUTE} requests per minute per client`,
      steps: ['raise-rate-limit'],
      limit,
    };
  }
  return {
    diagnosis: `distributed: ${s.total429} 429s from ${s.distinctClients} clients, top ${topPct}%, ${keyed.pct}% with known keys (${keyed.tenants.length} tenants)`,
    rootCause: 'distributed traffic storm (possible DDoS)',
    escalate: `distributed rate-limit storm on ${target}: enable DDoS protection / block at the CDN (no single client to block, not one tenant's traffic)`,
    steps: [],
  };
}

function blockWork(ctx: RunbookContext, ip: string, done: (at: number) => void): StepWork<'block-client'> {
  return {
    resource: 'governance',
    describe: `add ${ip} to the gateway's block list (POST /v1/governance/block): every request from it is refused with 403`,
    precondition: async () => {
      const b = await acts.blockedIps({ target: ctx.target });
      return { ok: !b.ips.includes(ip), detail: `${ip} is ${b.ips.includes(ip) ? 'already' : 'not yet'} blocked` };
    },
    run: async () => {
      const r = await acts.blockClient({ target: ctx.target, ip, reason: `INC-10 ${ctx.incidentId}: rate limit abuse` });
      done(Date.now());
      return r.detail;
    },
  };
}

function raiseWork(ctx: RunbookContext, f: RateLimitFacts, limit: number, done: (at: number) => void): StepWork<'raise-rate-limit'> {
  const envVar = f.policy.envVar;
  return {
    resource: 'api',
    describe: `recreate the api container with ${envVar}=${limit} (was ${f.limitPerMinute ?? 'unset'}), everything else kept`,
    precondition: async () => {
      const v = await acts.containerEnvValue({ target: ctx.target, component: 'api', name: envVar });
      const current = v.value !== null && /^\d+$/.test(v.value) ? Number(v.value) : DEFAULT_LIMIT_PER_MINUTE;
      return { ok: current < limit, detail: `${envVar} is ${v.value ?? 'unset'}` };
    },
    run: async () => {
      const r = await longActs.recreateContainer({ target: ctx.target, component: 'api', env: { [envVar]: String(limit) } });
      done(Date.now());
      return r.detail;
    },
    gate: async () => {
      const h = await acts.httpHealth({ target: ctx.target });
      return { ok: h.ok, detail: `/health ${h.status || h.error || 'unreachable'}` };
    },
  };
}

const runbook: Runbook<RateLimitFacts> = {
  meta,
  diagnose,
  plan(f, ctx): Plan {
    const p = planRateLimitStorm(f, ctx.target);
    const mark = (at: number): void => {
      f.mitigatedAt = at;
    };
    const { ip, limit, ...plan } = p;
    const steps = buildSteps(meta, p.steps, {
      'block-client': () => {
        if (!ip) throw new Error('no client address to block');
        return blockWork(ctx, ip, mark);
      },
      'raise-rate-limit': () => {
        if (!limit) throw new Error('no raised limit to apply');
        return raiseWork(ctx, f, limit, mark);
      },
    });
    return { ...plan, steps };
  },
  async verify(ctx, f): Promise<Check> {
    const since = f.mitigatedAt;
    const window = rateLimitWindow(ctx.input, f.policy);
    const seconds = since ? Math.max(1, Math.min(window, Math.ceil((Date.now() - since) / 1000))) : window;
    // As in diagnosis: a request of the engine's own, so that a readable log shows at least one line.
    if (f.evidenceRule) await acts.httpHealth({ target: ctx.target });
    const s = await acts.rateLimitSummary({ target: ctx.target, component: 'api', sinceSeconds: seconds });
    return verifyRateLimits(f, s);
  },
};

/** Pure: 429s back to baseline, counted among request lines the settings recognise. */
export function verifyRateLimits(f: RateLimitFacts, s: RateLimitSummary): Check {
  const detail = `${s.total429} 429s in the last ${s.sinceSeconds} s (baseline ≤ ${f.policy.baseline429})`;
  const unseen = f.evidenceRule ? unobserved429s(s, f.policy.baseline429) : undefined;
  if (unseen) return { ok: false, detail, unknown: `${unseen.check}: ${unseen.why}` };
  return { ok: s.total429 <= f.policy.baseline429, detail };
}

/** INC-10: API rate limit storm. */
export async function rateLimitStorm(input: IncidentInput): Promise<IncidentRecord> {
  return runIncident(runbook, input);
}
