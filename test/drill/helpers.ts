/** Shared helpers for the drill target's tests: they talk to the real stack started by scripts/stack.sh up. */
import { FaultContext, waitFor, type ApiResponse } from '../../drill/src/faults/context';

export { FaultContext, waitFor };

/** A request that rides out a moment when the api is being recreated by a drill in another file. */
export async function call(
  ctx: FaultContext,
  method: string,
  path: string,
  opts: { body?: unknown; key?: string | null; headers?: Record<string, string> } = {},
): Promise<ApiResponse> {
  let lastErr: unknown;
  const deadline = Date.now() + 20000;
  while (Date.now() < deadline) {
    try {
      return await ctx.api.request(method, path, { ...opts, timeoutMs: 10000 });
    } catch (err) {
      lastErr = err;
      await new Promise((r) => setTimeout(r, 300));
    }
  }
  throw lastErr;
}

/**
 * Retries until `accept(status)` holds (30 s at most): the read-only tests run beside the fault
 * drills, which briefly make the api answer 401/500/503 on purpose.
 */
export async function callUntil(
  ctx: FaultContext,
  method: string,
  path: string,
  opts: { body?: unknown; key?: string | null; headers?: Record<string, string> },
  accept: (status: number) => boolean = (status) => status < 400,
): Promise<ApiResponse> {
  const deadline = Date.now() + 30000;
  for (;;) {
    const res = await call(ctx, method, path, opts);
    if (accept(res.status) || Date.now() > deadline) return res;
    await new Promise((r) => setTimeout(r, 500));
  }
}

export interface Health {
  status: string;
  version: string;
  database: string;
  redis: string;
}

export async function health(ctx: FaultContext): Promise<{ status: number; body: Health }> {
  const res = await call(ctx, 'GET', '/health', { key: null });
  return { status: res.status, body: res.body as Health };
}

export async function waitHealthy(ctx: FaultContext, timeoutMs = 30000): Promise<void> {
  const ok = await waitFor(async () => (await health(ctx)).status === 200, timeoutMs, 300);
  if (!ok)
    throw new Error(`alfred-api not healthy after ${timeoutMs / 1000} s: ${JSON.stringify((await health(ctx)).body)}`);
}

export function chatBody(prompt: string, model = 'gpt-4o-mini') {
  return { model, messages: [{ role: 'user', content: prompt }] };
}

export async function chat(ctx: FaultContext, prompt: string, opts: { key?: string; ip: string; model?: string }) {
  const res = await call(ctx, 'POST', '/v1/chat/completions', {
    key: opts.key ?? 'test-key-2',
    headers: { 'x-forwarded-for': opts.ip },
    body: chatBody(prompt, opts.model),
  });
  const body = res.body as { choices?: Array<{ message: { content: string } }>; provider?: string };
  return { status: res.status, content: body.choices?.[0]?.message.content, provider: body.provider };
}

export interface SlaMetrics {
  p95_latency_ms: number;
  p99_latency_ms: number;
  error_rate_pct: number;
  provider_error_rates: Record<'openai' | 'anthropic' | 'google', number>;
  provider_error_rate_pct: number;
  cache_hit_rate_pct: number;
  request_count: number;
  window_seconds: number;
}

export async function sla(ctx: FaultContext): Promise<SlaMetrics> {
  const res = await call(ctx, 'GET', '/v1/notifications/sla/metrics');
  expect(res.status).toBe(200);
  return (res.body as { metrics: SlaMetrics }).metrics;
}

export async function verifyAudit(ctx: FaultContext) {
  const res = await call(ctx, 'POST', '/v1/admin/audit-logs/verify');
  expect(res.status).toBe(200);
  return res.body as { valid: boolean; checked: number; first_break_at: string | null; break_kind: string | null };
}

/** Reads one sample of a Prometheus counter or gauge from /metrics. */
export async function metric(ctx: FaultContext, sample: string): Promise<number> {
  const res = await call(ctx, 'GET', '/metrics', { key: null });
  const line = res.text.split('\n').find((l) => l.startsWith(sample + ' '));
  return line ? Number(line.slice(sample.length + 1)) : 0;
}

/** A fresh prompt, so the cache cannot answer it. */
export const uniquePrompt = (label: string) => `${label} ${Date.now()} ${Math.random().toString(36).slice(2)}`;
