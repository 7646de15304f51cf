/**
 * INC-03 LLM providers down, multiple or all (seed 002). The SLA monitor shows errors above 90 % on
 * every provider; an egress probe and a DNS lookup of each provider, run from the api container,
 * tell an upstream outage (providers answer with errors) from a network problem on our side (no
 * connection, no DNS: escalated). For an upstream outage: cache-only mode on (auto) with the status
 * page update, then durable timers until a provider answers again (bounded by a deadline), then
 * leaving cache-only needs approval. Verified by a live test completion.
 */
import { patched, sleep } from '@temporalio/workflow';
import { acts, buildSteps, runIncident, type Check, type Plan, type Runbook, type RunbookContext, type StepBuilders } from './kernel';
import type { IncidentInput, IncidentRecord } from './contracts';
import type { ProviderInfo, ProviderProbe, ProviderStatusPage } from '../activities/target-api/providers';
import { ALL_DOWN_PCT } from './provider-down';
import { recordStatusPages, statusPagesSummary, withStatusPages } from './status-pages';
import { defineRunbook, type Decision, type StepIdOf, type StepRef } from './shape';

/** What this runbook is: the catalog, routes, the client script and the README's table read it. */
export const meta = defineRunbook({
  name: 'allProvidersDown',
  scenario: 'INC-03',
  title: 'LLM providers down (multiple / all)',
  severity: 1,
  source: 'seed 002',
  alerts: ['AlfredAllProvidersDown'],
  diagnostics: [
    'per-provider error rates from the SLA metrics endpoint (> 90 % on every provider)',
    'egress probe to each provider URL from the api container',
    'DNS resolution of each provider host from the api container',
    'governance settings (cache-only mode, disabled providers)',
  ],
  steps: [
    { id: 'enable-cache-only', title: 'Enable cache_only_mode and post the status update', risk: 'auto' },
    { id: 'await-providers', title: 'Wait for the providers to recover (durable timers, bounded)', risk: 'auto' },
    { id: 'leave-cache-only', title: 'Providers recovered: leave cache-only mode', risk: 'approve' },
  ],
  verify: 'a live test completion succeeds through a provider',
});

export type AllProvidersDownStep = StepIdOf<typeof meta>;

export interface AllProvidersDownParams {
  /** How long the runbook waits for a provider to recover before escalating (cache-only stays on). */
  recoveryDeadlineSeconds: number;
  /** Time between two rounds of probes while waiting. */
  pollSeconds: number;
}

export const DEFAULT_ALL_DOWN_PARAMS: AllProvidersDownParams = { recoveryDeadlineSeconds: 3600, pollSeconds: 30 };

export interface AllProvidersDownFacts {
  providers: ProviderInfo[];
  disabled: string[];
  cacheOnly: boolean;
  slaAvailable: boolean;
  slaRates: Record<string, number>;
  probes: ProviderProbe[];
  params: AllProvidersDownParams;
  /** A probe the provider refused (4xx) is neither up nor down (absent in facts of incidents started before this rule). */
  evidenceRule?: boolean;
  /**
   * What each provider's status page said (seed 002: "Check ALL provider status pages"); evidence for
   * people, never a trigger. Absent in incidents started before the runbook read them.
   */
  statusPages?: ProviderStatusPage[];
}

/** Seed 002's status page template ("Identified"), worded for an outage of every provider. */
export function identifiedStatusText(providers: string[]): string {
  return (
    `We have identified the root cause as an outage with our upstream providers (${providers.join(', ')}). ` +
    'Alfred is experiencing degraded AI service due to upstream provider outages. Cached responses remain available. ' +
    'We are monitoring the situation.'
  );
}

export function allProvidersDownParams(input: IncidentInput): AllProvidersDownParams {
  const p = input.params ?? {};
  const num = (v: unknown, d: number) => (typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : d);
  return {
    recoveryDeadlineSeconds: num(p.recoveryDeadlineSeconds, DEFAULT_ALL_DOWN_PARAMS.recoveryDeadlineSeconds),
    pollSeconds: num(p.pollSeconds, DEFAULT_ALL_DOWN_PARAMS.pollSeconds),
  };
}

const answering = (p: ProviderProbe): boolean => p.status >= 200 && p.status < 400;

function describeProbe(p: ProviderProbe): string {
  const dns = p.dnsOk ? `DNS ${p.host} → ${p.addresses.join(', ') || '?'}` : `DNS ${p.host} failed: ${p.dnsError ?? '?'}`;
  const egress = p.status ? `HTTP ${p.status}` : `no connection: ${p.egressError ?? '?'}`;
  return `${dns}; ${egress}`;
}

async function probe(target: string): Promise<ProviderProbe[]> {
  return acts.probeProviders({ target, component: 'api' });
}

async function diagnose(ctx: RunbookContext): Promise<AllProvidersDownFacts> {
  const t = ctx.target;
  // Seed 002's first triage step, every provider's status page. (Incidents recorded before it did not
  // read them, and replay so.)
  const pagesRead = patched('seed-steps') ? acts.providerStatusPages({ target: t }) : undefined;
  const [setup, sla, probes] = await Promise.all([acts.providerSetup({ target: t }), acts.slaMetrics({ target: t }), probe(t)]);
  const statusPages = pagesRead ? await pagesRead : undefined;
  if (statusPages) recordStatusPages(ctx, statusPages);
  for (const p of setup.providers) {
    const r = sla.providerErrorRates[p.name] ?? 0;
    ctx.finding(`SLA error rate ${p.name}`, r <= ALL_DOWN_PCT, `${r}% over the last ${sla.windowSeconds || 300} s`);
  }
  if (!sla.available) ctx.finding('SLA metrics', false, `unavailable: ${sla.error ?? ''}`);
  for (const p of probes) ctx.finding(`egress + DNS ${p.name}`, answering(p), describeProbe(p));
  ctx.finding('cache_only_mode', !setup.governance.cacheOnly, setup.governance.cacheOnly ? 'on' : 'off');
  return {
    providers: setup.providers,
    disabled: setup.governance.disabledProviders,
    cacheOnly: setup.governance.cacheOnly,
    slaAvailable: sla.available,
    slaRates: sla.providerErrorRates,
    probes,
    params: allProvidersDownParams(ctx.input),
    ...(patched('evidence-before-conclusions') ? { evidenceRule: true } : {}),
    ...(statusPages ? { statusPages } : {}),
  };
}

/** The provider answered but refused the probe (a key, a rate limit): it is reachable, and no more is known. */
const refused = (p: ProviderProbe): boolean => p.status >= 400 && p.status < 500;

/** Pure decision over the findings; the status pages are told in the diagnosis and any escalation, and decide nothing. */
export function planAllProvidersDown(f: AllProvidersDownFacts, target: string): Decision<AllProvidersDownStep> {
  return withStatusPages(decide(f, target), f.statusPages);
}

function decide(f: AllProvidersDownFacts, target: string): Decision<AllProvidersDownStep> {
  const enabled = f.providers.filter((p) => !f.disabled.includes(p.name)).map((p) => p.name);
  const slaAllDown = enabled.length > 0 && enabled.every((p) => (f.slaRates[p] ?? 0) > ALL_DOWN_PCT);
  const probed = f.probes.filter((p) => enabled.includes(p.name));
  const probesAllFail = probed.length > 0 && probed.every((p) => !answering(p));
  const leave: StepRef<AllProvidersDownStep>[] = f.cacheOnly ? ['leave-cache-only'] : [];
  if (!probesAllFail) {
    const up = probed.filter(answering).map((p) => p.name).join(', ') || 'none probed';
    const past = slaAllDown ? ' (the SLA window still shows a past outage)' : '';
    if (f.cacheOnly) {
      return { diagnosis: `providers answer again (${up})${past}, but cache-only mode is still on`, steps: leave };
    }
    return { diagnosis: `providers answer (${up})${past}: no outage of every provider`, falseAlarm: true, steps: [] };
  }
  const ambiguous = f.evidenceRule ? probed.filter(refused) : [];
  if (ambiguous.length > 0) {
    const list = ambiguous.map((p) => `${p.name} HTTP ${p.status}`).join(', ');
    return {
      diagnosis: `no provider answered the probe normally; ${list} refused it: reachable, but up or down is not known`,
      escalate: `cannot tell whether every provider of ${target} is down: ${list} answered the probe with a refusal (key, rate limit or probe URL); check the providers' status pages and the probe URLs (providers.<name>.url) before switching to cache-only mode`,
      steps: [],
    };
  }
  if (probed.every((p) => p.status === 0)) {
    const dns = probed.every((p) => !p.dnsOk) ? 'DNS resolution fails for every provider' : 'no connection to any provider';
    return {
      diagnosis: `${dns} from the api container: an egress problem on our side, not an upstream outage`,
      rootCause: 'egress network failure (VPC / firewall / DNS)',
      escalate: `${target} cannot reach any provider (${dns}): check VPC, firewall rules and DNS; cache-only mode would not fix this`,
      severity: 1,
      steps: [],
    };
  }
  return {
    diagnosis: `every provider fails (${probed.map((p) => `${p.name} HTTP ${p.status}`).join(', ')}): upstream outage`,
    rootCause: 'outage of every upstream LLM provider',
    severity: 1,
    steps: ['enable-cache-only', 'await-providers', 'leave-cache-only'],
  };
}

function builders(ctx: RunbookContext, f: AllProvidersDownFacts): StepBuilders<AllProvidersDownStep> {
  const t = ctx.target;
  const names = f.providers.map((p) => p.name);
  const cacheOnlyIs = async (want: boolean): Promise<Check> => {
    const s = await acts.providerSetup({ target: t });
    return { ok: s.governance.cacheOnly === want, detail: `cache_only_mode is ${s.governance.cacheOnly ? 'on' : 'off'}` };
  };
  return {
    'enable-cache-only': () => ({
      resource: 'governance',
      describe: 'POST /v1/governance/settings {"cache_only_mode": true}: serve cached answers only instead of 502s; post "Identified" on the status page',
      precondition: () => cacheOnlyIs(false),
      run: async () => {
        const r = await acts.setCacheOnly({ target: t, on: true, reason: `INC-03 ${ctx.incidentId}: all providers down` });
        ctx.statusUpdate('identified', identifiedStatusText(names));
        return r.detail;
      },
    }),
    'await-providers': () => ({
      resource: 'upstream',
      // It only probes and waits: no action on the target to count against its budget.
      acts: false,
      describe: `probe every provider each ${f.params.pollSeconds} s (durable timers) for at most ${f.params.recoveryDeadlineSeconds} s`,
      run: async () => {
        const deadline = Date.now() + f.params.recoveryDeadlineSeconds * 1000;
        // Seed 002: "Monitor provider status pages for recovery announcements". Told on the timeline
        // when they change; the probes alone decide that a provider is back.
        let told = statusPagesSummary(f.statusPages);
        for (let round = 1; ; round++) {
          if (f.statusPages) {
            const now = statusPagesSummary(await acts.providerStatusPages({ target: t }));
            if (now && now !== told) ctx.note(now);
            told = now;
          }
          const up = (await probe(t)).filter(answering).map((p) => p.name);
          if (up.length > 0) return `${up.join(', ')} answering again after ${round} probe rounds`;
          if (Date.now() + f.params.pollSeconds * 1000 > deadline) {
            throw new Error(`no provider recovered within ${f.params.recoveryDeadlineSeconds} s; cache-only mode stays on`);
          }
          await sleep(f.params.pollSeconds * 1000);
        }
      },
    }),
    'leave-cache-only': () => ({
      resource: 'governance',
      describe: 'POST /v1/governance/settings {"cache_only_mode": false}: send uncached prompts to the providers again',
      precondition: async () => {
        const [c, probes] = await Promise.all([cacheOnlyIs(true), probe(t)]);
        const up = probes.filter(answering).map((p) => p.name);
        return { ok: c.ok && up.length > 0, detail: `${c.detail}; answering: ${up.join(', ') || 'none'}` };
      },
      run: async () => {
        const r = await acts.setCacheOnly({ target: t, on: false, reason: `INC-03 ${ctx.incidentId}: providers recovered` });
        ctx.statusUpdate('monitoring', 'Upstream providers have recovered and live responses are being served again. We are monitoring the situation.');
        return r.detail;
      },
    }),
  };
}

const runbook: Runbook<AllProvidersDownFacts> = {
  meta,
  diagnose,
  plan(f, ctx): Plan {
    const p = planAllProvidersDown(f, ctx.target);
    return { ...p, steps: buildSteps(meta, p.steps, builders(ctx, f)) };
  },
  async verify(ctx, f): Promise<Check> {
    const model = f.providers[0]?.model;
    if (!model) return { ok: false, detail: 'no provider configured for a test completion' };
    const r = await acts.liveCompletion({ target: ctx.target, model });
    const ok = r.ok && r.correct && r.cached !== true;
    const via = r.provider ? ` via ${r.provider}` : '';
    return { ok, detail: ok ? `live test completion (${model}) answered correctly${via}` : `live test completion (${model}) failed: HTTP ${r.status} ${r.error ?? ''}`.trim() };
  },
};

/** INC-03: LLM providers down (multiple / all). */
export async function allProvidersDown(input: IncidentInput): Promise<IncidentRecord> {
  return runIncident(runbook, input);
}
