/**
 * `jwt-drift`: alfred-worker recreated with a JWT_SECRET of its own, so it no longer matches the
 * api's (seed 004: "ensure JWT_SECRET matches across API and web apps"). Undo recreates the worker
 * with the stack's secret again. Neither direction prints a value.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { FaultDef } from './catalog';
import type { FaultContext } from './context';
import { waitFor } from './context';

const ENV = 'JWT_SECRET';

async function envOf(ctx: FaultContext, component: 'api' | 'worker'): Promise<string | undefined> {
  const c = await ctx.containers.find(component);
  const entry = (c.info.Config.Env ?? []).find((kv) => kv.startsWith(`${ENV}=`));
  return entry?.slice(ENV.length + 1);
}

async function workerHealthy(ctx: FaultContext): Promise<boolean> {
  return waitFor(async () => (await fetch(`${ctx.env.workerUrl}/health`, { signal: AbortSignal.timeout(2000) })).ok, 30_000, 500);
}

export const jwtDrift: FaultDef = {
  name: 'jwt-drift',
  summary: `recreate alfred-worker with a ${ENV} different from alfred-api's (config drift, seed 004)`,
  options: {},
  async apply(ctx) {
    const [api, worker] = await Promise.all([envOf(ctx, 'api'), envOf(ctx, 'worker')]);
    if (worker !== undefined && worker !== api) return { messages: [`alfred-worker's ${ENV} already differs from alfred-api's`] };
    const msg = await ctx.containers.recreate('worker', { env: { [ENV]: `drifted-${randomBytes(16).toString('hex')}` } });
    return { messages: [msg, (await workerHealthy(ctx)) ? 'alfred-worker healthy' : 'alfred-worker not healthy after 30 s'] };
  },
  async undo(ctx) {
    const secret = readFileSync(path.join(ctx.env.stackDir, 'secrets', 'alfred-jwt-secret'), 'utf8').trim();
    if ((await envOf(ctx, 'worker')) === secret) return { messages: [`alfred-worker's ${ENV} already matches the stack's`] };
    const msg = await ctx.containers.recreate('worker', { env: { [ENV]: secret } });
    return { messages: [msg, (await workerHealthy(ctx)) ? 'alfred-worker healthy' : 'alfred-worker not healthy after 30 s'] };
  },
};
