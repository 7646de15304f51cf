/**
 * Upstream provider activities (INC-02, INC-03): the SLA monitor's error rates, traffic counters
 * from /metrics, egress and DNS probes run from inside the api container (where the gateway's own
 * traffic leaves), the governance switches (disable a provider, cache-only mode) and a live test
 * completion. Provider URLs, models and owners come from the target's configuration.
 */
import { randomInt } from 'node:crypto';
import type { ActivityDeps } from '../engine/deps';
import { adminKey, targetConfig } from '../engine/deps';
import { createDockerActivities } from '../containers/docker';
import { ErrorType, describeError, permanent } from '../engine/errors';
import { answerReader, apiSettings } from './api-fields';
import { createAdminClient, createHttpActivities, parsePrometheusText } from './http';
import { statusPageOf, type TargetConfig } from '../../config';
import { HTTP_REQUESTS_DEFAULTS, PROVIDER_REQUESTS_DEFAULTS } from '../../lib/target-signals';

export interface ProviderInfo {
  name: string;
  model: string;
  owners: string[];
}

export interface GovernanceState {
  cacheOnly: boolean;
  disabledProviders: string[];
}

/** The governance switches as the target reports them; a switch it does not report is undefined and named in `unreadable`. */
export interface GovernanceSettings {
  cacheOnlyMode?: boolean;
  disabledProviders?: string[];
  cacheSimilarityThreshold?: number;
  maintenanceMode?: boolean;
  /** One message per field the answer lacks, naming the setting (`api.fields.governanceSettings.*`). */
  unreadable: string[];
}

export interface SlaMetrics {
  available: boolean;
  error?: string;
  providerErrorRates: Record<string, number>;
  /** Undefined when the answer lacks the field (`api.fields.sla.*`); `unreadable` names its setting. */
  errorRatePct?: number;
  requestCount?: number;
  windowSeconds: number;
  /** seed 002: `jq '.metrics.p95_latency_ms'`. */
  p95LatencyMs?: number;
  p99LatencyMs?: number;
  /** seed 002: `jq '.metrics.cache_hit_rate_pct'`. */
  cacheHitRatePct?: number;
  /** One message per field the answer lacks, naming its setting. */
  unreadable?: string[];
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

/**
 * What a provider's status page says (seed 002: "Check provider status page"), read as Atlassian
 * Statuspage serves it: `GET <page>/api/v2/status.json` → `status.indicator` (none, minor, major,
 * critical) and `status.description`. A page that could not be read is `available: false` with the
 * reason, never "operational"; a provider without a page (`statusPage: false`) has no `page`.
 */
export interface ProviderStatusPage {
  name: string;
  page?: string;
  available: boolean;
  indicator?: StatusIndicator;
  description?: string;
  error?: string;
}

/** Statuspage's `status.indicator` values. */
export const STATUS_INDICATORS = ['none', 'minor', 'major', 'critical'] as const;
export type StatusIndicator = (typeof STATUS_INDICATORS)[number];

/** The path every Statuspage page serves its summary at. */
export const STATUSPAGE_PATH = '/api/v2/status.json';

/** Pure: a Statuspage `status.json` answer as a ProviderStatusPage (a missing or unknown indicator is unreadable). */
export function readStatusJson(name: string, page: string, body: unknown): ProviderStatusPage {
  const status = body && typeof body === 'object' ? (body as { status?: unknown }).status : undefined;
  const s = status && typeof status === 'object' ? (status as { indicator?: unknown; description?: unknown }) : undefined;
  const indicator = s?.indicator;
  if (typeof indicator !== 'string' || !(STATUS_INDICATORS as readonly string[]).includes(indicator)) {
    return { name, page, available: false, error: `${page}${STATUSPAGE_PATH} answered without status.indicator (none|minor|major|critical)` };
  }
  return {
    name,
    page,
    available: true,
    indicator: indicator as StatusIndicator,
    ...(typeof s?.description === 'string' ? { description: s.description } : {}),
  };
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
  const adminCall = createAdminClient(deps);
  const docker = createDockerActivities(deps);
  const doFetch = deps.fetch ?? fetch;

  /** GET `api.paths.governanceSettings`, read by `api.fields.governanceSettings`. */
  async function governanceSettings(input: { target: string }): Promise<GovernanceSettings> {
    const path = apiSettings(deps, input.target).paths.governanceSettings;
    const res = await adminCall({ target: input.target, method: 'GET', path });
    const r = answerReader(deps, input.target, 'governanceSettings', `GET ${path}`, res.body);
    const cacheOnlyMode = r.boolean('cacheOnlyMode');
    const disabled = r.list('disabledProviders');
    const cacheSimilarityThreshold = r.number('cacheSimilarityThreshold');
    const maintenanceMode = r.boolean('maintenanceMode');
    return {
      ...(cacheOnlyMode !== undefined ? { cacheOnlyMode } : {}),
      ...(disabled !== undefined ? { disabledProviders: disabled.map(String) } : {}),
      ...(cacheSimilarityThreshold !== undefined ? { cacheSimilarityThreshold } : {}),
      ...(maintenanceMode !== undefined ? { maintenanceMode } : {}),
      unreadable: r.problems,
    };
  }

  function providersOf(target: string) {
    return targetConfig(deps, target).providers;
  }

  /**
   * The configured providers (name, a model each serves, owners) and the governance switches. A
   * switch the target does not report fails the activity naming its setting: an unknown switch is
   * never taken as off.
   */
  async function providerSetup(input: { target: string }): Promise<{ providers: ProviderInfo[]; governance: GovernanceState }> {
    const providers = Object.entries(providersOf(input.target)).map(([name, p]) => ({ name, model: p.model, owners: p.owners }));
    const g = await governanceSettings(input);
    if (g.cacheOnlyMode === undefined || g.disabledProviders === undefined) {
      throw permanent(ErrorType.NotConfigured, g.unreadable.join('; '));
    }
    return { providers, governance: { cacheOnly: g.cacheOnlyMode, disabledProviders: g.disabledProviders } };
  }

  /**
   * The SLA monitor's 300 s window (seed 002: `/v1/notifications/sla/metrics`, `jq '.metrics'`). The
   * seed's fields are read as it quotes them; the others by `api.fields.sla`.
   */
  async function slaMetrics(input: { target: string }): Promise<SlaMetrics> {
    const path = '/v1/notifications/sla/metrics';
    try {
      const res = await http.adminRequest({ target: input.target, method: 'GET', path });
      const body = res.body as { metrics?: Record<string, unknown> } | null;
      const m = (body && typeof body === 'object' ? body.metrics : undefined) ?? {};
      const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
      const r = answerReader(deps, input.target, 'sla', `GET ${path}`, res.body);
      const errorRatePct = r.number('errorRatePct');
      const requestCount = r.number('requestCount');
      const p99LatencyMs = r.number('p99LatencyMs');
      const p95LatencyMs = num(m.p95_latency_ms);
      const cacheHitRatePct = num(m.cache_hit_rate_pct);
      return {
        available: true,
        providerErrorRates: (m.provider_error_rates as Record<string, number> | undefined) ?? {},
        ...(errorRatePct !== undefined ? { errorRatePct } : {}),
        ...(requestCount !== undefined ? { requestCount } : {}),
        windowSeconds: Number(m.window_seconds ?? 0),
        ...(p95LatencyMs !== undefined ? { p95LatencyMs } : {}),
        ...(p99LatencyMs !== undefined ? { p99LatencyMs } : {}),
        ...(cacheHitRatePct !== undefined ? { cacheHitRatePct } : {}),
        unreadable: r.problems,
      };
    } catch (err) {
      return { available: false, error: describeError(err), providerErrorRates: {}, windowSeconds: 0 };
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

  /**
   * Disables (seed 002's path) or re-enables (`api.paths.enableProvider`) a provider. `changed` is
   * null when the answer does not say (`api.fields.providerToggle.changed`); `undo` is the call that
   * reverses a disable, for the owners' notice.
   */
  async function setProviderEnabled(input: { target: string; provider: string; enabled: boolean; reason: string }): Promise<{ changed: boolean | null; detail: string; undo?: string }> {
    if (!Object.hasOwn(providersOf(input.target), input.provider)) {
      throw permanent(ErrorType.BadInput, `provider "${input.provider}" is not configured for ${input.target}`);
    }
    const enablePath = apiSettings(deps, input.target).paths.enableProvider;
    const path = input.enabled ? enablePath : '/v1/governance/providers/disable';
    const res = await adminCall({ target: input.target, method: 'POST', path, body: { provider: input.provider, reason: input.reason } });
    const r = answerReader(deps, input.target, 'providerToggle', `POST ${path}`, res.body);
    const changed = r.boolean('changed');
    const verb = input.enabled ? 'enabled' : 'disabled';
    const undo = `POST ${input.enabled ? '/v1/governance/providers/disable' : enablePath}`;
    if (changed === undefined) return { changed: null, detail: `${input.provider} ${verb} in the governance API; whether it already was is unknown: ${r.problems.join('; ')}`, undo };
    return { changed, detail: changed ? `${input.provider} ${verb} in the governance API` : `${input.provider} was already ${verb}`, undo };
  }

  /**
   * Every configured provider's status page, read from the engine (the pages are public). Never
   * throws for a page: one that cannot be read is reported unavailable with its error.
   */
  async function providerStatusPages(input: { target: string }): Promise<ProviderStatusPage[]> {
    return Promise.all(
      Object.entries(providersOf(input.target)).map(async ([name, p]): Promise<ProviderStatusPage> => {
        const page = statusPageOf(name, p);
        if (!page) return { name, available: false, error: `no status page configured (targets.${input.target}.providers.${name}.statusPage)` };
        const url = new URL(STATUSPAGE_PATH.slice(1), page.endsWith('/') ? page : `${page}/`).toString();
        try {
          const res = await doFetch(url, { headers: { accept: 'application/json' }, signal: AbortSignal.timeout(5000) });
          if (!res.ok) return { name, page, available: false, error: `GET ${url}: HTTP ${res.status}` };
          const body: unknown = await res.json().catch(() => undefined);
          return readStatusJson(name, page, body);
        } catch (err) {
          return { name, page, available: false, error: `GET ${url}: ${describeError(err)}` };
        }
      }),
    );
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
        error?: string;
        choices?: { message?: { content?: string } }[];
      };
      const answer = body.choices?.[0]?.message?.content;
      if (!res.ok) return { ok: false, status: res.status, correct: false, error: String(body.error ?? `HTTP ${res.status}`).slice(0, 200) };
      const r = answerReader(deps, input.target, 'chatCompletion', `POST ${CHAT_PATH}`, body);
      const provider = r.string('provider');
      const cached = r.boolean('cached');
      const correct = answer === String(a + b);
      // Whether the answer came from a provider is the point of this check: not knowing it is not a pass.
      if (cached === undefined) return { ok: false, status: res.status, correct, error: r.problems.join('; ') };
      return { ok: true, status: res.status, ...(provider !== undefined ? { provider } : {}), cached, correct };
    } catch (err) {
      return { ok: false, status: 0, correct: false, error: describeError(err) };
    }
  }

  return {
    governanceSettings,
    providerSetup,
    slaMetrics,
    trafficCounters,
    probeProviders,
    providerStatusPages,
    setProviderEnabled,
    setCacheOnly,
    liveCompletion,
  };
}
