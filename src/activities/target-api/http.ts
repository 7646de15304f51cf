/**
 * HTTP activities against a target's API: health, Prometheus metrics, and admin calls with the
 * admin key (read from configuration here, never passed through workflow history).
 */
import type { ActivityDeps } from '../engine/deps';
import { adminKey, targetConfig } from '../engine/deps';
import { answerReader } from './api-fields';
import { ErrorType, describeError, permanent } from '../engine/errors';
import type { MetricGauge } from '../../lib/target-signals';

/** The api's own view of a dependency in its /health answer. */
export interface DependencyView {
  /** `unknown`: no JSON answer, or the answer lacks the configured field (`detail` names the setting). */
  state: 'healthy' | 'unhealthy' | 'unknown';
  detail: string;
}

export interface HealthResult {
  ok: boolean;
  status: number;
  body: Record<string, unknown> | null;
  error?: string;
  latencyMs: number;
  /** Redis as the api sees it (`api.fields.health.redis`); absent from results recorded before it was read here. */
  apiRedis?: DependencyView;
}

/** seed 002: `jq '.database'`, `Expected: "healthy"`: the value a healthy dependency reports. */
const HEALTHY = 'healthy';

/** Parses Prometheus text format into `name{labels}` → value. */
export function parsePrometheusText(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (m) out.set(`${m[1]}${m[2] ?? ''}`, Number(m[3]));
  }
  return out;
}

const ALLOWED_ADMIN_PATH = /^\/v1\/[\w\-/.:]+$/;
/** Paths from the target's settings (`api.paths.*`), already validated by the schema. */
const SAFE_PATH = /^\/[\w\-/.:]*$/;

export interface AdminCall {
  target: string;
  method: 'GET' | 'POST' | 'DELETE';
  path: string;
  body?: Record<string, unknown>;
  timeoutMs?: number;
}

/**
 * An admin API call on any path of the target, for activities that resolve paths from the target's
 * settings. 4xx answers are permanent (bad request, refused); 5xx and network errors are retried. The
 * key is attached here and never returned.
 */
export function createAdminClient(deps: ActivityDeps) {
  const doFetch = deps.fetch ?? fetch;
  return async function adminCall(input: AdminCall): Promise<{ status: number; body: unknown }> {
    if (!SAFE_PATH.test(input.path)) throw permanent(ErrorType.BadInput, `not an API path: ${input.path}`);
    const t = targetConfig(deps, input.target);
    const key = adminKey(deps, input.target);
    if (!key) throw permanent(ErrorType.NotConfigured, `target "${input.target}" has no admin key configured`);
    const res = await doFetch(new URL(input.path, t.baseUrl).toString(), {
      method: input.method,
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      ...(input.body ? { body: JSON.stringify(input.body) } : {}),
      signal: AbortSignal.timeout(input.timeoutMs ?? 10_000),
    });
    const text = await res.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      /* not JSON: keep the text */
    }
    if (res.status >= 400 && res.status < 500) {
      throw permanent(ErrorType.HttpClientError, `${input.method} ${input.path} answered ${res.status}: ${text.slice(0, 200)}`);
    }
    if (res.status >= 500) throw new Error(`${input.method} ${input.path} answered ${res.status}`);
    return { status: res.status, body };
  };
}

/** The api's view of Redis in a /health answer, read by the configured field. */
export function redisView(deps: ActivityDeps, target: string, body: Record<string, unknown> | null): DependencyView {
  if (!body) return { state: 'unknown', detail: 'no JSON answer from /health' };
  const r = answerReader(deps, target, 'health', 'GET /health', body);
  const value = r.string('redis');
  if (value === undefined) return { state: 'unknown', detail: r.problems.join('; ') };
  return { state: value === HEALTHY ? 'healthy' : 'unhealthy', detail: value };
}

export function createHttpActivities(deps: ActivityDeps) {
  const doFetch = deps.fetch ?? fetch;
  const adminCall = createAdminClient(deps);

  async function get(url: string, headers: Record<string, string>, timeoutMs: number) {
    return doFetch(url, { headers, signal: AbortSignal.timeout(timeoutMs) });
  }

  /** GET /health; a refused connection or a 5xx is a finding, not a failure. */
  async function httpHealth(input: { target: string; path?: string; timeoutMs?: number }): Promise<HealthResult> {
    const t = targetConfig(deps, input.target);
    const t0 = Date.now();
    try {
      const res = await get(new URL(input.path ?? '/health', t.baseUrl).toString(), {}, input.timeoutMs ?? 3000);
      const text = await res.text();
      let body: Record<string, unknown> | null = null;
      try {
        body = JSON.parse(text) as Record<string, unknown>;
      } catch {
        body = null;
      }
      return { ok: res.ok, status: res.status, body, latencyMs: Date.now() - t0, apiRedis: redisView(deps, input.target, body) };
    } catch (err) {
      return { ok: false, status: 0, body: null, error: describeError(err), latencyMs: Date.now() - t0, apiRedis: { state: 'unknown', detail: 'no answer from /health' } };
    }
  }

  /**
   * Selected series from /metrics (name prefixes), or `available: false` if unreachable. `gauges` are
   * read by role under the names the target's `metrics.*` settings give (each summed over its label
   * sets; absent when the target does not expose it, and then listed in `missing` with the series
   * looked for and the setting that names it).
   */
  async function httpMetrics(input: {
    target: string;
    prefixes: string[];
    gauges?: MetricGauge[];
  }): Promise<{
    available: boolean;
    values: Record<string, number>;
    gauges?: Partial<Record<MetricGauge, number>>;
    missing?: string[];
    error?: string;
  }> {
    const t = targetConfig(deps, input.target);
    const wanted = new Map((input.gauges ?? []).map((g) => [t.metrics[g], g]));
    try {
      const res = await get(new URL('/metrics', t.baseUrl).toString(), {}, 3000);
      if (!res.ok) return { available: false, values: {}, error: `HTTP ${res.status}` };
      const values: Record<string, number> = {};
      const gauges: Partial<Record<MetricGauge, number>> = {};
      for (const [k, v] of parsePrometheusText(await res.text())) {
        if (input.prefixes.some((p) => k.startsWith(p))) values[k] = v;
        const g = wanted.get(k.replace(/\{.*$/, ''));
        if (g) gauges[g] = (gauges[g] ?? 0) + v;
      }
      const missing = (input.gauges ?? [])
        .filter((g) => gauges[g] === undefined)
        .map((g) => `metric ${t.metrics[g]} not in /metrics (setting metrics.${g})`);
      return { available: true, values, ...(input.gauges ? { gauges } : {}), ...(missing.length ? { missing } : {}) };
    } catch (err) {
      return { available: false, values: {}, error: describeError(err) };
    }
  }

  /** An admin API call on a `/v1/` path named by a runbook (see createAdminClient). */
  async function adminRequest(input: AdminCall): Promise<{ status: number; body: unknown }> {
    if (!ALLOWED_ADMIN_PATH.test(input.path)) throw permanent(ErrorType.BadInput, `not an API path: ${input.path}`);
    return adminCall(input);
  }

  return { httpHealth, httpMetrics, adminRequest };
}
