/**
 * Upstream provider activities (INC-02, INC-03): the SLA monitor's error rates, traffic counters
 * from /metrics, egress and DNS probes run from inside the api container (where the gateway's own
 * traffic leaves), the governance switches (disable a provider, cache-only mode) and a live test
 * completion. Provider URLs, models and owners come from the target's configuration.
 */
import { randomInt } from 'node:crypto';
import type { ActivityDeps } from './deps';
import { adminKey, targetConfig } from './deps';
import { createDockerActivities } from './docker';
import { ErrorType, describeError, permanent } from './errors';
import { createHttpActivities, parsePrometheusText } from './http';
import type { TargetConfig } from '../config';
import { HTTP_REQUESTS_DEFAULTS, PROVIDER_REQUESTS_DEFAULTS } from '../lib/target-signals';

export interface ProviderInfo {
  name: string;
  model: string;
  owners: string[];
}

export interface GovernanceState {
  cacheOnly: boolean;
  disabledProviders: string[];
}

export interface SlaMetrics {
  available: boolean;
  error?: string;
  providerErrorRates: Record<string, number>;
  errorRatePct: number;
  requestCount: number;
  windowSeconds: number;
}

/** Cumulative counters at one instant; two of them give the rates in between. */
export interface TrafficCounters {
  available: boolean;
  error?: string;
  providers: Record<string, { ok: number; error: number }>;
  chat: { total: number; errors: number };
}

export interface ProviderProbe {
  name: string;
  host: string;
  dnsOk: boolean;
  addresses: string[];
  dnsError?: string;
  /** HTTP status the provider answered with; 0 if the connection failed. */
  status: number;
  egressError?: string;
}

export interface LiveCompletion {
  ok: boolean;
  status: number;
  provider?: string;
  cached?: boolean;
  correct: boolean;
  error?: string;
}

const CHAT_PATH = '/v1/chat/completions';
const LABELS = /(\w+)="((?:[^"\\]|\\.)*)"/g;

function labelsOf(series: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of series.matchAll(LABELS)) out[m[1] as string] = m[2] as string;
  return out;
}

/** The counters trafficFromPrometheus reads: the target's `metrics.providerRequests` and `metrics.httpRequests`. */
export type TrafficMetrics = Pick<TargetConfig['metrics'], 'providerRequests' | 'httpRequests'>;

const REPLICA_TRAFFIC_METRICS: TrafficMetrics = { providerRequests: PROVIDER_REQUESTS_DEFAULTS, httpRequests: HTTP_REQUESTS_DEFAULTS };

/** Provider call counters and chat completion outcomes from Prometheus text. */
export function trafficFromPrometheus(text: string, metrics: TrafficMetrics = REPLICA_TRAFFIC_METRICS): Omit<TrafficCounters, 'available'> {
  const pr = metrics.providerRequests;
  const hr = metrics.httpRequests;
  const providers: TrafficCounters['providers'] = {};
  const chat = { total: 0, errors: 0 };
  for (const [series, value] of parsePrometheusText(text)) {
    const name = series.replace(/\{.*$/, '');
    const l = labelsOf(series);
    const provider = l[pr.providerLabel];
    if (name === pr.name && provider) {
      const p = (providers[provider] ??= { ok: 0, error: 0 });
      if (l[pr.resultLabel] === pr.errorResult) p.error += value;
      else p.ok += value;
    } else if (name === hr.name && l[hr.pathLabel] === CHAT_PATH) {
      chat.total += value;
      if (Number(l[hr.statusLabel]) >= 500) chat.errors += value;
    }
  }
  return { providers, chat };
}

/**
 * The probe run inside the api container with its own Python (seed 002 runs `docker compose exec api
 * python -c ...` there, and checks egress and DNS from it: `curl -s https://api.openai.com/v1/models`,
 * `nslookup api.openai.com`): a DNS lookup and one GET per provider URL, printed as one JSON line.
 * URLs arrive as an argument, never spliced into code.
 */
const PROBE_SCRIPT = `
import json, socket, sys, urllib.error, urllib.parse, urllib.request
from concurrent.futures import ThreadPoolExecutor
def probe(t):
    host = urllib.parse.urlsplit(t["url"]).hostname or ""
    r = {"name": t["name"], "host": host, "dnsOk": False, "addresses": [], "status": 0}
    try:
        r["addresses"] = sorted({a[4][0] for a in socket.getaddrinfo(host, None)})
        r["dnsOk"] = True
    except OSError as e:
        r["dnsError"] = type(e).__name__ + ": " + str(e)
    try:
        with urllib.request.urlopen(t["url"], timeout=4) as res:
            r["status"] = res.status
    except urllib.error.HTTPError as e:
        r["status"] = e.code
    except Exception as e:
        reason = getattr(e, "reason", e)
        r["egressError"] = type(reason).__name__ + ": " + str(reason)
    return r
targets = json.loads(sys.argv[1])
with ThreadPoolExecutor(max_workers=max(1, len(targets))) as pool:
    print(json.dumps(list(pool.map(probe, targets))))
`;

export function createProviderActivities(deps: ActivityDeps) {
  const http = createHttpActivities(deps);
  const docker = createDockerActivities(deps);
  const doFetch = deps.fetch ?? fetch;

  function providersOf(target: string) {
    return targetConfig(deps, target).providers;
  }

  /** The configured providers (name, a model each serves, owners) and the governance switches. */
  async function providerSetup(input: { target: string }): Promise<{ providers: ProviderInfo[]; governance: GovernanceState }> {
    const providers = Object.entries(providersOf(input.target)).map(([name, p]) => ({ name, model: p.model, owners: p.owners }));
    const res = await http.adminRequest({ target: input.target, method: 'GET', path: '/v1/governance/settings' });
    const s = res.body as { cache_only_mode?: boolean; disabled_providers?: string[]; settings?: unknown };
    const settings = (s.settings && typeof s.settings === 'object' ? s.settings : s) as { cache_only_mode?: boolean; disabled_providers?: string[] };
    return {
      providers,
      governance: { cacheOnly: settings.cache_only_mode === true, disabledProviders: settings.disabled_providers ?? [] },
    };
  }

  /** The SLA monitor's 300 s window (seed 002: `/v1/notifications/sla/metrics`). */
  async function slaMetrics(input: { target: string }): Promise<SlaMetrics> {
    try {
      const res = await http.adminRequest({ target: input.target, method: 'GET', path: '/v1/notifications/sla/metrics' });
      const m = (res.body as { metrics?: Record<string, unknown> }).metrics ?? {};
      return {
        available: true,
        providerErrorRates: (m.provider_error_rates as Record<string, number> | undefined) ?? {},
        errorRatePct: Number(m.error_rate_pct ?? 0),
        requestCount: Number(m.request_count ?? 0),
        windowSeconds: Number(m.window_seconds ?? 0),
      };
    } catch (err) {
      return { available: false, error: describeError(err), providerErrorRates: {}, errorRatePct: 0, requestCount: 0, windowSeconds: 0 };
    }
  }

  async function trafficCounters(input: { target: string }): Promise<TrafficCounters> {
    try {
      const res = await doFetch(new URL('/metrics', targetConfig(deps, input.target).baseUrl).toString(), {
        signal: AbortSignal.timeout(3000),
      });
      if (!res.ok) return { available: false, error: `HTTP ${res.status}`, providers: {}, chat: { total: 0, errors: 0 } };
      return { available: true, ...trafficFromPrometheus(await res.text(), targetConfig(deps, input.target).metrics) };
    } catch (err) {
      return { available: false, error: describeError(err), providers: {}, chat: { total: 0, errors: 0 } };
    }
  }

  /** DNS and egress to every configured provider, from inside the component's container. */
  async function probeProviders(input: { target: string; component: string }): Promise<ProviderProbe[]> {
    const targets = Object.entries(providersOf(input.target)).map(([name, p]) => ({ name, url: p.url }));
    if (targets.length === 0) return [];
    const python = targetConfig(deps, input.target).python;
    const r = await docker.execInContainer({
      target: input.target,
      component: input.component,
      cmd: [python, '-c', PROBE_SCRIPT, JSON.stringify(targets)],
    });
    if (r.exitCode === 126 || r.exitCode === 127) {
      throw permanent(
        ErrorType.NotConfigured,
        `"${python}" could not run in the ${input.component} container of ${input.target} (exit ${r.exitCode}): set targets.${input.target}.python to its Python interpreter`,
      );
    }
    const line = r.output.trim().split('\n').pop() ?? '';
    try {
      return JSON.parse(line) as ProviderProbe[];
    } catch {
      throw new Error(`provider probe in ${input.component} failed (exit ${r.exitCode}): ${r.output.slice(0, 200)}`);
    }
  }

  async function setProviderEnabled(input: { target: string; provider: string; enabled: boolean; reason: string }): Promise<{ changed: boolean; detail: string }> {
    if (!Object.hasOwn(providersOf(input.target), input.provider)) {
      throw permanent(ErrorType.BadInput, `provider "${input.provider}" is not configured for ${input.target}`);
    }
    const res = await http.adminRequest({
      target: input.target,
      method: 'POST',
      path: `/v1/governance/providers/${input.enabled ? 'enable' : 'disable'}`,
      body: { provider: input.provider, reason: input.reason },
    });
    const changed = (res.body as { changed?: boolean }).changed === true;
    const verb = input.enabled ? 'enabled' : 'disabled';
    return { changed, detail: changed ? `${input.provider} ${verb} in the governance API` : `${input.provider} was already ${verb}` };
  }

  async function setCacheOnly(input: { target: string; on: boolean; reason: string }): Promise<{ detail: string }> {
    await http.adminRequest({
      target: input.target,
      method: 'POST',
      path: '/v1/governance/settings',
      body: { cache_only_mode: input.on, reason: input.reason },
    });
    return { detail: `cache_only_mode ${input.on ? 'on' : 'off'}` };
  }

  /**
   * One real chat completion with a prompt no cache can hold (fresh numbers), so it must reach a
   * provider; the arithmetic answer is checked. Sent with the admin identity, which is charged for it.
   */
  async function liveCompletion(input: { target: string; model: string }): Promise<LiveCompletion> {
    const key = adminKey(deps, input.target);
    if (!key) throw permanent(ErrorType.NotConfigured, `target "${input.target}" has no admin key configured`);
    const a = randomInt(1000, 1_000_000);
    const b = randomInt(1000, 1_000_000);
    try {
      const res = await doFetch(new URL(CHAT_PATH, targetConfig(deps, input.target).baseUrl).toString(), {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: input.model, messages: [{ role: 'user', content: `What is ${a}+${b}?` }] }),
        signal: AbortSignal.timeout(10_000),
      });
      const body = (await res.json().catch(() => ({}))) as {
        provider?: string;
        cached?: boolean;
        error?: string;
        choices?: { message?: { content?: string } }[];
      };
      const answer = body.choices?.[0]?.message?.content;
      return {
        ok: res.ok,
        status: res.status,
        ...(body.provider ? { provider: body.provider } : {}),
        ...(body.cached !== undefined ? { cached: body.cached } : {}),
        correct: answer === String(a + b),
        ...(res.ok ? {} : { error: String(body.error ?? `HTTP ${res.status}`).slice(0, 200) }),
      };
    } catch (err) {
      return { ok: false, status: 0, correct: false, error: describeError(err) };
    }
  }

  return { providerSetup, slaMetrics, trafficCounters, probeProviders, setProviderEnabled, setCacheOnly, liveCompletion };
}
