/**
 * INC-02 LLM provider down, single (seed 002). The SLA monitor and the api logs name the failing
 * provider; the gateway's circuit breaker should fail over by itself, so the runbook first gives it
 * a grace period (a durable timer) and re-measures. Recovered → nothing to do. Failing but traffic
 * fails over → nothing to do but tell the owners. Failover not effective → disable the provider in
 * the governance API (approve) and notify its owners. Every provider failing is INC-03, escalated.
 */
import { patched, sleep } from '@temporalio/workflow';
import { acts, buildSteps, runIncident, type Check, type Plan, type Runbook, type RunbookContext, type StepWork } from './kernel';
import type { IncidentInput, IncidentRecord } from './contracts';
import type { ProviderInfo, ProviderStatusPage } from '../activities/target-api/providers';
import { describeRate, measureTraffic, type Rate, type TrafficWindow } from './provider-traffic';
import { usesLogMetricSettings } from './log-metric-settings';
import { recordStatusPages, withStatusPages } from './status-pages';
import { defineRunbook, type Decision, type StepIdOf } from './shape';

/** What this runbook is: the catalog, routes, the client script and the README's table read it. */
export const meta = defineRunbook({
  name: 'providerDown',
  scenario: 'INC-02',
  title: 'LLM provider down (single)',
  severity: 2,
  source: 'seed 002',
  alerts: ['AlfredProviderDown'],
  diagnostics: [
    'per-provider error rates from the SLA metrics endpoint',
    'provider errors / 502 / timeouts in the recent api logs',
    'after a grace period (durable timer): provider and gateway error rates re-measured from /metrics counters',
  ],
  steps: [{ id: 'disable-provider-<name>', title: 'Failover not effective: disable the provider via the governance API, notify its owners', risk: 'approve' }],
  verify: "the provider's error rate < 5 %, or the gateway's chat error rate < 5 % (failover)",
});

export type ProviderDownStep = StepIdOf<typeof meta>;

/** Seed 002: a provider above 5 % errors is failing; above 90 % on every provider is INC-03. */
// seed 002 INC-02: "Provider-specific error rate spikes above 5%", "Expected: < 5.0"
export const PROVIDER_ERROR_PCT = 5;
// seed 002 INC-03: "Provider error rate > 90%"
export const ALL_DOWN_PCT = 90;
// seed 002 INC-02: "docker compose logs api --since 5m | grep -i "provider.*"
const LOG_WINDOW_SECONDS = 300;

export interface ProviderDownParams {
  /** How long failover gets to take effect before the runbook re-measures. */
  graceSeconds: number;
  /** Length of each measuring window (after the grace period, and in verification). */
  sampleSeconds: number;
}

export const DEFAULT_PROVIDER_DOWN_PARAMS: ProviderDownParams = { graceSeconds: 60, sampleSeconds: 30 };

export interface ProviderDownFacts {
  providers: ProviderInfo[];
  disabled: string[];
  slaAvailable: boolean;
  /** The SLA monitor's per-provider error rates over its 300 s window. */
  slaRates: Record<string, number>;
  /** Provider error log lines (`logs.providerError`) per provider (`logs.provider`) in the last 5 minutes. */
  logErrors: Record<string, number>;
  failoverLines: number;
  /** Enabled providers the SLA monitor or the logs show failing. */
  suspects: string[];
  params: ProviderDownParams;
  /** The window measured after the grace period; absent if no suspect or /metrics was unreachable. */
  after?: TrafficWindow;
  /** Calls that were not made are no evidence (absent in facts of incidents started before this rule). */
  evidenceRule?: boolean;
  /**
   * What each provider's status page said (seed 002, triage step 1); evidence for people, never a
   * trigger. Absent in incidents started before the runbook read them.
   */
  statusPages?: ProviderStatusPage[];
}

export function providerDownParams(input: IncidentInput): ProviderDownParams {
  const p = input.params ?? {};
  const num = (v: unknown, d: number) => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : d);
  return {
    graceSeconds: num(p.graceSeconds, DEFAULT_PROVIDER_DOWN_PARAMS.graceSeconds),
    sampleSeconds: Math.max(1, num(p.sampleSeconds, DEFAULT_PROVIDER_DOWN_PARAMS.sampleSeconds)),
  };
}

/** Incidents begun before `logs.providerError` and `logs.providerFailover`: the replica's logfmt lines, read here. */
export function providerLogCounts(lines: string[]): { errors: Record<string, number>; failovers: number } {
  const errors: Record<string, number> = {};
  let failovers = 0;
  for (const line of lines) {
    if (/msg="?provider failover/.test(line)) failovers++;
    if (!/msg="?provider error/.test(line)) continue;
    const p = /\bprovider=(\w+)/.exec(line)?.[1];
    if (p) errors[p] = (errors[p] ?? 0) + 1;
  }
  return { errors, failovers };
}

async function diagnose(ctx: RunbookContext): Promise<ProviderDownFacts> {
  const t = ctx.target;
  const params = providerDownParams(ctx.input);
  const useSettings = usesLogMetricSettings();
  // Seed 002's first triage step, the providers' status pages. (Incidents recorded before it did not
  // read them, and replay so.)
  const pagesRead = patched('seed-steps') ? acts.providerStatusPages({ target: t }) : undefined;
  const [setup, sla, logs] = await Promise.all([
    acts.providerSetup({ target: t }),
    acts.slaMetrics({ target: t }),
    useSettings
      ? acts.containerLogs({
          target: t,
          component: 'api',
          sinceSeconds: LOG_WINDOW_SECONDS,
          count: { errors: { pattern: 'providerError', by: 'provider' }, failovers: { pattern: 'providerFailover' } },
          limit: 20,
        })
      : acts.containerLogs({ target: t, component: 'api', sinceSeconds: LOG_WINDOW_SECONDS, grep: 'provider error|provider failover|status=502|timeout', limit: 20000 }),
  ]);
  const statusPages = pagesRead ? await pagesRead : undefined;
  if (statusPages) recordStatusPages(ctx, statusPages);
  const counts =
    useSettings && logs.counts
      ? { errors: logs.counts.errors?.by ?? {}, failovers: logs.counts.failovers?.matched ?? 0 }
      : providerLogCounts(logs.lines);
  const disabled = setup.governance.disabledProviders;
  // A rate the SLA monitor does not report is not a rate of 0%. (Incidents recorded before this rule
  // read it as 0%, and replay so.)
  const evidence = patched('evidence-before-conclusions');
  for (const p of setup.providers) {
    const off = disabled.includes(p.name) ? ' (disabled in governance)' : '';
    const reported = sla.providerErrorRates[p.name];
    if (evidence && reported === undefined) {
      ctx.unknown(`SLA error rate ${p.name}`, sla.available ? `no rate for ${p.name} in the SLA metrics${off}` : `SLA metrics unavailable: ${sla.error ?? ''}`);
      continue;
    }
    const r = reported ?? 0;
    ctx.finding(`SLA error rate ${p.name}`, r <= PROVIDER_ERROR_PCT, `${r}% over the last ${sla.windowSeconds || 300} s${off}`);
  }
  if (!sla.available && !evidence) ctx.finding('SLA metrics', false, `unavailable: ${sla.error ?? ''}`);
  const logDetail = Object.entries(counts.errors).map(([p, n]) => `${p} ${n}`).join(', ') || 'none';
  ctx.finding('provider errors in api logs (5 min)', Object.keys(counts.errors).length === 0, `${logDetail}; ${counts.failovers} failovers`);

  const suspects = setup.providers
    .map((p) => p.name)
    .filter((p) => !disabled.includes(p) && (sla.providerErrorRates[p] ?? 0) > PROVIDER_ERROR_PCT);
  const facts: ProviderDownFacts = {
    providers: setup.providers,
    disabled,
    slaAvailable: sla.available,
    slaRates: sla.providerErrorRates,
    logErrors: counts.errors,
    failoverLines: counts.failovers,
    suspects,
    params,
    ...(evidence ? { evidenceRule: true } : {}),
    ...(statusPages ? { statusPages } : {}),
  };
  if (suspects.length === 0 || allDown(facts)) return facts;

  // Failover should handle it within 500 ms (seed 002): give it the grace period, then look again.
  ctx.note(`grace period: ${params.graceSeconds} s for failover away from ${suspects.join(', ')}, then re-measure`);
  await sleep(params.graceSeconds * 1000);
  const after = await measureTraffic(t, params.sampleSeconds);
  if (after) {
    facts.after = after;
    for (const p of suspects) {
      const r = after.providers[p];
      if (evidence && !(r && r.calls > 0)) ctx.unknown(`${p} after the grace period`, `no calls to ${p} in ${after.seconds} s`);
      else ctx.finding(`${p} after the grace period`, !r || r.pct < PROVIDER_ERROR_PCT, `${describeRate(r)} in ${after.seconds} s`);
    }
    ctx.finding('gateway chat errors after the grace period', after.chat.pct < PROVIDER_ERROR_PCT, `${describeRate(after.chat)} in ${after.seconds} s`);
  } else if (evidence) {
    ctx.unknown('re-measure after the grace period', 'the gateway counters could not be read: /metrics unreachable');
  } else {
    ctx.finding('re-measure after the grace period', false, '/metrics unreachable');
  }
  return facts;
}

function allDown(f: ProviderDownFacts): boolean {
  const enabled = f.providers.filter((p) => !f.disabled.includes(p.name));
  return enabled.length > 0 && enabled.every((p) => (f.slaRates[p.name] ?? 0) > ALL_DOWN_PCT);
}

/** Suspects whose calls still fail after the grace period. */
export function stillFailing(f: ProviderDownFacts): string[] {
  return f.suspects.filter((p) => (f.after?.providers[p]?.pct ?? 0) >= PROVIDER_ERROR_PCT);
}

/**
 * Pure decision over the findings: which providers to disable (one step each), or none. The status
 * pages are told in the diagnosis and any escalation; they decide nothing.
 */
export function planProviderDown(f: ProviderDownFacts, target: string): Decision<ProviderDownStep> {
  return withStatusPages(decide(f, target), f.statusPages);
}

function decide(f: ProviderDownFacts, target: string): Decision<ProviderDownStep> {
  if (f.suspects.length === 0) {
    const off = f.disabled.length ? ` (${f.disabled.join(', ')} disabled)` : '';
    return { diagnosis: `every enabled provider is under ${PROVIDER_ERROR_PCT}% errors${off}: no provider outage`, falseAlarm: true, steps: [] };
  }
  if (allDown(f)) {
    return {
      diagnosis: `every enabled provider is above ${ALL_DOWN_PCT}% errors: not a single provider outage`,
      rootCause: 'all upstream providers failing (INC-03)',
      escalate: `all providers of ${target} are failing: run allProvidersDown (INC-03, cache-only mode) instead of disabling one`,
      steps: [],
    };
  }
  const names = f.suspects.join(', ');
  if (!f.after) {
    return {
      diagnosis: `${names} failing, but the gateway's counters could not be re-measured after the grace period`,
      escalate: `cannot tell whether failover away from ${names} works on ${target}: /metrics unreachable`,
      steps: [],
    };
  }
  const failing = stillFailing(f);
  const unseen = f.suspects.filter((p) => !((f.after?.providers[p]?.calls ?? 0) > 0));
  if (f.evidenceRule && failing.length === 0 && unseen.length > 0) {
    return {
      diagnosis: `${names} failing in the SLA window; no calls to ${unseen.join(', ')} in the ${f.after.seconds} s after the grace period`,
      escalate: `cannot tell whether ${unseen.join(', ')} recovered on ${target}: could not observe calls to it after the grace period (provider counters in /metrics, settings metrics.providerRequests)`,
      steps: [],
    };
  }
  if (failing.length === 0) {
    return { diagnosis: `${names} recovered during the ${f.params.graceSeconds} s grace period: no action`, rootCause: `transient ${names} outage`, steps: [] };
  }
  if (f.after.chat.calls === 0) {
    return {
      diagnosis: `${failing.join(', ')} failing, but no chat traffic during the ${f.after.seconds} s window`,
      escalate: `cannot tell whether failover away from ${failing.join(', ')} works on ${target}: no traffic to measure`,
      steps: [],
    };
  }
  if (f.after.chat.pct < PROVIDER_ERROR_PCT) {
    return {
      diagnosis: `${failing.join(', ')} still failing, but failover is effective (gateway chat errors ${f.after.chat.pct}%): no action`,
      rootCause: `${failing.join(', ')} outage, absorbed by failover`,
      steps: [],
    };
  }
  return {
    diagnosis: `${failing.join(', ')} still failing after the ${f.params.graceSeconds} s grace period and failover is not effective (gateway chat errors ${f.after.chat.pct}%)`,
    rootCause: `${failing.join(', ')} outage; failover to the other providers not working`,
    steps: failing.map((name) => ({ id: 'disable-provider-<name>' as const, args: { name } })),
  };
}

function disableWork(ctx: RunbookContext, provider: ProviderInfo, reason: string): StepWork<'disable-provider-<name>'> {
  return {
    title: `Disable provider ${provider.name} via the governance API`,
    resource: 'governance',
    describe: `disable ${provider.name} (POST /v1/governance/providers/disable) so its traffic goes to the other providers, and notify its owners`,
    precondition: async () => {
      const s = await acts.providerSetup({ target: ctx.target });
      const off = s.governance.disabledProviders.includes(provider.name);
      return { ok: !off, detail: `${provider.name} is ${off ? 'already' : 'not yet'} disabled` };
    },
    run: async () => {
      const r = await acts.setProviderEnabled({ target: ctx.target, provider: provider.name, enabled: false, reason });
      ctx.notify({
        title: `${provider.name} disabled on ${ctx.target}`,
        // Results recorded before the activity named the undo call carry none: the replica's path then.
        text: `${reason}. Re-enable with ${r.undo ?? 'POST /v1/governance/providers/enable'} once the provider has recovered.`,
        contacts: provider.owners,
      });
      return r.detail;
    },
  };
}

const runbook: Runbook<ProviderDownFacts> = {
  meta,
  diagnose,
  plan(f, ctx): Plan {
    const p = planProviderDown(f, ctx.target);
    const byName = new Map(f.providers.map((x) => [x.name, x]));
    const reason = `INC-02 ${ctx.incidentId}: provider outage`;
    // Owners hear about an outage that is still on, even when failover absorbs it.
    if (!p.falseAlarm && !p.escalate && p.steps.length === 0) {
      for (const name of stillFailing(f)) {
        ctx.notify({ title: `${name} failing on ${ctx.target}`, text: p.diagnosis, contacts: byName.get(name)?.owners ?? [] });
      }
    }
    const steps = buildSteps(meta, p.steps, {
      'disable-provider-<name>': ({ args }) => {
        const provider = byName.get(args.name);
        if (!provider) throw new Error(`no provider ${args.name} configured on ${ctx.target}`);
        return disableWork(ctx, provider, reason);
      },
    });
    return { ...p, steps };
  },
  async verify(ctx, f): Promise<Check> {
    const w = await measureTraffic(ctx.target, f.params.sampleSeconds);
    if (!w) return { ok: false, detail: '/metrics unreachable', unknown: 'provider and chat counters: /metrics unreachable' };
    const detail = `${f.suspects.map((p) => `${p} ${describeRate(w.providers[p])}`).join(', ')}; gateway chat ${describeRate(w.chat)} (${w.seconds} s)`;
    // Incidents recorded before this rule read a window without calls as recovered, and replay so.
    if (patched('evidence-before-conclusions')) return verifyFromWindow(f.suspects, w, detail);
    const providersOk = f.suspects.every((p) => (w.providers[p]?.pct ?? 0) < PROVIDER_ERROR_PCT);
    const failoverOk = w.chat.pct < PROVIDER_ERROR_PCT;
    return { ok: providersOk || failoverOk, detail };
  },
};

/**
 * Pure: recovery as a window of traffic shows it. Only calls that were made count as evidence: the
 * suspects answering below the error threshold, or the gateway's chat completions succeeding through
 * failover. A window without such calls shows nothing, and says so.
 */
export function verifyFromWindow(suspects: string[], w: TrafficWindow, detail: string): Check {
  const observed = (r: Rate | undefined): r is Rate => r !== undefined && r.calls > 0;
  const providersOk = suspects.length > 0 && suspects.every((p) => observed(w.providers[p]) && (w.providers[p] as Rate).pct < PROVIDER_ERROR_PCT);
  const failoverOk = observed(w.chat) && w.chat.pct < PROVIDER_ERROR_PCT;
  if (providersOk || failoverOk) return { ok: true, detail };
  const unseen = [...suspects.filter((p) => !observed(w.providers[p])), ...(observed(w.chat) ? [] : ['gateway chat completions'])];
  const anyFailing = suspects.some((p) => observed(w.providers[p])) || observed(w.chat);
  if (anyFailing) return { ok: false, detail };
  return { ok: false, detail, unknown: `${unseen.join(', ')}: no calls in the ${w.seconds} s window (provider and chat counters in /metrics)` };
}

/** INC-02: LLM provider down (single). */
export async function providerDown(input: IncidentInput): Promise<IncidentRecord> {
  return runIncident(runbook, input);
}
