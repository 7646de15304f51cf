/** Connections a fault needs (Docker API, the api's admin endpoints, PostgreSQL as superuser, Redis), opened lazily. */
import { Client } from 'pg';
import Redis from 'ioredis';
import { DrillContainers } from './containers';
import { loadDrillEnv, type DrillEnv } from './env';

export interface ApiResponse {
  status: number;
  body: unknown;
  text: string;
}

export class ApiClient {
  constructor(
    readonly baseUrl: string,
    private readonly adminKey: string,
  ) {}

  async request(
    method: string,
    path: string,
    opts: { body?: unknown; key?: string | null; headers?: Record<string, string>; timeoutMs?: number } = {},
  ): Promise<ApiResponse> {
    const headers: Record<string, string> = { ...(opts.headers ?? {}) };
    const key = opts.key === undefined ? this.adminKey : opts.key;
    if (key) headers.authorization = `Bearer ${key}`;
    if (opts.body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(this.baseUrl + path, {
      method,
      headers,
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
      signal: AbortSignal.timeout(opts.timeoutMs ?? 15000),
    });
    const text = await res.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // Not JSON (metrics text): the raw text is the body.
    }
    return { status: res.status, body, text };
  }

  /** Admin call that must succeed (2xx); otherwise throws with the api's error message. */
  async admin<T = Record<string, unknown>>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.request(method, path, { body });
    if (res.status < 200 || res.status >= 300) {
      const msg = (res.body as { error?: string } | null)?.error ?? res.text.slice(0, 200);
      throw new Error(`${method} ${path} answered ${res.status}: ${msg}`);
    }
    return res.body as T;
  }

  async hook(fault: string, on: boolean, params: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    return this.admin('POST', '/v1/drill/faults', { fault, on, ...params });
  }
}

export class FaultContext {
  readonly env: DrillEnv;
  readonly containers: DrillContainers;
  readonly api: ApiClient;
  private pgClient: Client | undefined;
  private redisClient: Redis | undefined;

  constructor(env: DrillEnv = loadDrillEnv()) {
    this.env = env;
    this.containers = new DrillContainers(env.dockerSocket);
    this.api = new ApiClient(env.apiUrl, env.adminKey);
  }

  /** A superuser connection to the drill's database (the fault injector edits data the api would refuse to). */
  async pg(): Promise<Client> {
    if (!this.pgClient) {
      const client = new Client({ ...this.env.pg, application_name: 'drill-fault', connectionTimeoutMillis: 5000 });
      client.on('error', () => undefined);
      await client.connect();
      this.pgClient = client;
    }
    return this.pgClient;
  }

  redis(): Redis {
    if (!this.redisClient) {
      this.redisClient = new Redis({
        host: this.env.redis.host,
        port: this.env.redis.port,
        connectionName: 'drill-fault',
        maxRetriesPerRequest: 2,
        connectTimeout: 3000,
        retryStrategy: (times) => (times > 5 ? null : 200 * times),
      });
      this.redisClient.on('error', () => undefined);
    }
    return this.redisClient;
  }

  async close(): Promise<void> {
    await this.pgClient?.end().catch(() => undefined);
    this.pgClient = undefined;
    this.redisClient?.disconnect();
    this.redisClient = undefined;
  }
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls `check` until it returns true or the deadline passes. */
export async function waitFor(check: () => Promise<boolean>, timeoutMs: number, intervalMs = 300): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return true;
    } catch {
      // Not ready yet.
    }
    if (Date.now() >= deadline) return false;
    await sleep(intervalMs);
  }
}
