/** In-process metrics: Prometheus text for /metrics and a 300 s sliding window for the SLA endpoint. */

export const PROVIDERS = ['openai', 'anthropic', 'google'] as const;
export type Provider = (typeof PROVIDERS)[number];

const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5, 10];
export const WINDOW_SECONDS = 300;
const WINDOW_CAP = 200_000;

interface RequestSample {
  t: number;
  ms: number;
  status: number;
}
interface ProviderSample {
  t: number;
  provider: Provider;
  ok: boolean;
}
interface CacheSample {
  t: number;
  hit: boolean;
}

function labels(obj: Record<string, string>): string {
  const parts = Object.entries(obj).map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx]!;
}

const round = (n: number, digits = 2) => Math.round(n * 10 ** digits) / 10 ** digits;

export class Metrics {
  private httpTotal = new Map<string, number>();
  private histCounts = BUCKETS.map(() => 0);
  private histSum = 0;
  private histCount = 0;
  private providerTotal = new Map<string, number>();
  cacheHits = 0;
  cacheMisses = 0;
  rateLimited = 0;
  private requests: RequestSample[] = [];
  private providerSamples: ProviderSample[] = [];
  private cacheSamples: CacheSample[] = [];

  /** `window` is false for monitoring traffic (health, metrics, drill hooks) that is not user load. */
  recordHttp(path: string, status: number, ms: number, window: boolean): void {
    const key = `${path}\u0000${status}`;
    this.httpTotal.set(key, (this.httpTotal.get(key) ?? 0) + 1);
    const seconds = ms / 1000;
    BUCKETS.forEach((b, i) => {
      if (seconds <= b) this.histCounts[i]!++;
    });
    this.histSum += seconds;
    this.histCount++;
    if (window) push(this.requests, { t: Date.now(), ms, status });
  }

  recordProvider(provider: Provider, ok: boolean): void {
    const key = `${provider}\u0000${ok ? 'success' : 'error'}`;
    this.providerTotal.set(key, (this.providerTotal.get(key) ?? 0) + 1);
    push(this.providerSamples, { t: Date.now(), provider, ok });
  }

  recordCache(hit: boolean): void {
    if (hit) this.cacheHits++;
    else this.cacheMisses++;
    push(this.cacheSamples, { t: Date.now(), hit });
  }

  sla() {
    const since = Date.now() - WINDOW_SECONDS * 1000;
    prune(this.requests, since);
    prune(this.providerSamples, since);
    prune(this.cacheSamples, since);
    const latencies = this.requests.map((r) => r.ms).sort((a, b) => a - b);
    const errors = this.requests.filter((r) => r.status >= 500).length;
    const rates: Record<string, number> = {};
    for (const p of PROVIDERS) {
      const all = this.providerSamples.filter((s) => s.provider === p);
      const failed = all.filter((s) => !s.ok).length;
      rates[p] = all.length ? round((failed / all.length) * 100) : 0;
    }
    const hits = this.cacheSamples.filter((s) => s.hit).length;
    return {
      p95_latency_ms: round(percentile(latencies, 95)),
      p99_latency_ms: round(percentile(latencies, 99)),
      error_rate_pct: this.requests.length ? round((errors / this.requests.length) * 100) : 0,
      provider_error_rates: rates,
      provider_error_rate_pct: Math.max(0, ...Object.values(rates)),
      cache_hit_rate_pct: this.cacheSamples.length ? round((hits / this.cacheSamples.length) * 100) : 0,
      request_count: this.requests.length,
      window_seconds: WINDOW_SECONDS,
    };
  }

  prometheus(extra: {
    version: string;
    pool: { total: number; idle: number; waiting: number; max: number };
    dependencies: { database: boolean; redis: boolean };
  }): string {
    const out: string[] = [];
    const gauge = (name: string, help: string, value: number, lbl: Record<string, string> = {}) => {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`, `${name}${labels(lbl)} ${value}`);
    };
    gauge('alfred_db_pool_total', 'Connections open in the database pool.', extra.pool.total);
    gauge('alfred_db_pool_idle', 'Idle connections in the database pool.', extra.pool.idle);
    gauge('alfred_db_pool_waiting', 'Requests waiting for a database connection.', extra.pool.waiting);
    gauge('alfred_db_pool_max', 'Maximum size of the database pool.', extra.pool.max);
    out.push('# HELP alfred_dependency_up Whether the api reaches a dependency (the same checks as /health).', '# TYPE alfred_dependency_up gauge');
    for (const [dependency, up] of Object.entries(extra.dependencies)) {
      out.push(`alfred_dependency_up${labels({ dependency })} ${up ? 1 : 0}`);
    }
    out.push(
      '# HELP alfred_http_requests_total HTTP requests by route and status.',
      '# TYPE alfred_http_requests_total counter',
    );
    for (const [key, n] of [...this.httpTotal.entries()].sort()) {
      const [path, status] = key.split('\u0000') as [string, string];
      out.push(`alfred_http_requests_total${labels({ path, status })} ${n}`);
    }
    out.push(
      '# HELP alfred_http_request_duration_seconds HTTP request latency.',
      '# TYPE alfred_http_request_duration_seconds histogram',
    );
    BUCKETS.forEach((b, i) => out.push(`alfred_http_request_duration_seconds_bucket{le="${b}"} ${this.histCounts[i]}`));
    out.push(`alfred_http_request_duration_seconds_bucket{le="+Inf"} ${this.histCount}`);
    out.push(`alfred_http_request_duration_seconds_sum ${round(this.histSum, 6)}`);
    out.push(`alfred_http_request_duration_seconds_count ${this.histCount}`);
    out.push(
      '# HELP alfred_provider_requests_total Upstream provider calls by result.',
      '# TYPE alfred_provider_requests_total counter',
    );
    for (const p of PROVIDERS) {
      for (const result of ['success', 'error']) {
        out.push(
          `alfred_provider_requests_total${labels({ provider: p, result })} ${this.providerTotal.get(`${p}\u0000${result}`) ?? 0}`,
        );
      }
    }
    const counter = (name: string, help: string, value: number) =>
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} counter`, `${name} ${value}`);
    counter('alfred_cache_hits_total', 'Semantic cache hits.', this.cacheHits);
    counter('alfred_cache_misses_total', 'Semantic cache misses.', this.cacheMisses);
    counter('alfred_rate_limited_total', 'Requests refused by the rate limiter.', this.rateLimited);
    gauge('process_resident_memory_bytes', 'Resident memory size in bytes.', process.memoryUsage().rss);
    gauge('alfred_build_info', 'Build information.', 1, { version: extra.version });
    return out.join('\n') + '\n';
  }
}

function push<T extends { t: number }>(arr: T[], item: T): void {
  arr.push(item);
  if (arr.length > WINDOW_CAP) arr.splice(0, arr.length - WINDOW_CAP);
}

function prune<T extends { t: number }>(arr: T[], since: number): void {
  let i = 0;
  while (i < arr.length && arr[i]!.t < since) i++;
  if (i > 0) arr.splice(0, i);
}
