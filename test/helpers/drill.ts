/** Small helpers to break and inspect the real drill target in tests. */
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import Redis from 'ioredis';
import { Client as PgClient } from 'pg';
import { runFault, type FaultOptions, type FaultResult } from '../../drill/src/faults/catalog';
import { loadDrillEnv } from '../../drill/src/faults/env';
import { MockActivityEnvironment } from '@temporalio/testing';
import { drillContainer, STACK_DIR, waitUntil, type Engine } from './engine';

export const API = 'http://127.0.0.1:58000';

export function adminKey(): string {
  return readFileSync(path.join(STACK_DIR, 'secrets/alfred-admin-key'), 'utf8').trim();
}

/**
 * Injects a drill fault (drill/src/faults/catalog.ts) and returns once it has taken effect. Named
 * wrappers: runFault's second argument means "undo", which is easy to pass the wrong way round.
 */
export function injectFault(name: string, opts: FaultOptions = {}): Promise<FaultResult> {
  return runFault(name, false, opts);
}

/** Undoes a drill fault (a no-op when it is not active). */
export function undoFault(name: string, opts: FaultOptions = {}): Promise<FaultResult> {
  return runFault(name, true, opts);
}

/** Turns an in-process drill fault on or off (POST /v1/drill/faults). */
export async function processFault(fault: string, on: boolean, params: Record<string, unknown> = {}): Promise<unknown> {
  const res = await fetch(`${API}/v1/drill/faults`, {
    method: 'POST',
    headers: { authorization: `Bearer ${adminKey()}`, 'content-type': 'application/json' },
    body: JSON.stringify({ fault, on, ...params }),
  });
  if (!res.ok) throw new Error(`fault ${fault} ${on ? 'on' : 'off'}: HTTP ${res.status} ${await res.text()}`);
  return res.json();
}

/**
 * How often Podman started the container `name` since `since` (ms), from Podman's own events log:
 * what happened to the drill, not what the engine says it did.
 */
export function podmanStartsSince(since: number, name: string): number {
  const events = path.join(STACK_DIR, 'podman/events.log');
  if (!existsSync(events)) return 0;
  return readFileSync(events, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { Name: string; Status: string; Time: string })
    .filter((e) => e.Name === name && e.Status === 'start' && Date.parse(e.Time) >= since).length;
}

export async function health(): Promise<Record<string, unknown> | null> {
  try {
    const res = await fetch(`${API}/health`, { signal: AbortSignal.timeout(3000) });
    return (await res.json()) as Record<string, unknown>;
  } catch {
    return null;
  }
}

/** Does the drill's Redis answer PING? (A fresh connection that fails fast.) */
export async function redisUp(port = 6379): Promise<boolean> {
  const r = new Redis({ port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  r.on('error', () => undefined);
  try {
    await r.connect();
    return (await r.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    r.disconnect();
  }
}

/** A TCP port free on loopback right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/** Fills the drill's Redis to maxmemory with 64 KiB cache keys under `prefix` (writes then fail with OOM). */
export async function fillRedis(prefix: string): Promise<void> {
  const r = new Redis({ port: 6379 });
  const blob = 'x'.repeat(64 * 1024);
  try {
    for (let i = 0; i < 2000; i++) {
      try {
        await r.set(`${prefix}${i}`, blob);
      } catch {
        break;
      }
    }
  } finally {
    r.disconnect();
  }
}

/** Deletes the keys under `prefix` again. */
export async function unfillRedis(prefix: string): Promise<void> {
  const r = new Redis({ port: 6379 });
  try {
    let cursor = '0';
    do {
      const [next, keys] = await r.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
      cursor = next;
      if (keys.length) await r.unlink(...keys);
    } while (cursor !== '0');
  } finally {
    r.disconnect();
  }
}

/** A client (not yet connected) for the drill's PostgreSQL as the engine's configuration names it. */
/**
 * The tests' own connection to the drill's PostgreSQL, as its superuser over the published port
 * (the engine itself goes through psql in the db container).
 */
export function drillPg(database?: string, role: 'postgres' | 'alfred' = 'postgres'): PgClient {
  const { pg, stackDir } = loadDrillEnv();
  // alfred is the application's role (the api's own sessions); postgres the superuser.
  const password = role === 'alfred' ? readFileSync(path.join(stackDir, 'secrets', 'alfred-db-password'), 'utf8').trim() : pg.password;
  return new PgClient({ host: pg.host, port: pg.port, user: role, password, database: database ?? pg.database });
}

/** Leaves the drill api as a test found it: recreated without a memory limit if one was set, and healthy. */
export async function apiWithoutMemoryLimit(engine: Engine): Promise<void> {
  const api = await (await drillContainer(engine.docker, 'api')).inspect();
  if ((api.HostConfig.Memory ?? 0) !== 0) {
    await new MockActivityEnvironment().run(engine.activities.recreateContainer, { target: 'alfred', component: 'api', memoryLimitMb: 0 });
  }
  await waitUntil('api healthy', async () => (await health())?.status === 'ok', 60_000);
}
