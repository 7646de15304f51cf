/** Settings of the drill target, read once from the environment the containers are given. */

export type Role = 'api' | 'worker' | 'proxy';

export interface DrillConfig {
  role: Role;
  version: string;
  badRelease: boolean;
  /** A release whose key verification is broken: every user key is refused (INC-06 bad deploy). */
  authBug: boolean;
  databaseUrl: string;
  redisUrl: string;
  adminKey: string;
  jwtSecret: string;
  port: number;
  /** Where the proxy finds the api (another container under compose). */
  apiHost: string;
  workerPort: number;
  tlsPort: number;
  tlsDir: string;
  rateLimitPerMinute: number;
  ssoRequired: boolean;
  poolMax: number;
}

function int(value: string | undefined, fallback: number): number {
  const n = Number.parseInt(value ?? '', 10);
  return Number.isFinite(n) && n > 0 ? n : fallback;
}

export function parseRole(value: string | undefined): Role | undefined {
  return value === 'api' || value === 'worker' || value === 'proxy' ? value : undefined;
}

export function loadConfig(role: Role, env: NodeJS.ProcessEnv = process.env): DrillConfig {
  return {
    role,
    version: env.APP_VERSION ?? '0.0.0-dev',
    badRelease: env.DRILL_BAD_RELEASE === '1',
    authBug: env.DRILL_AUTH_BUG === '1',
    databaseUrl: env.DATABASE_URL ?? 'postgres://alfred@127.0.0.1:55432/alfred',
    redisUrl: env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    adminKey: env.ADMIN_KEY ?? '',
    jwtSecret: env.JWT_SECRET ?? '',
    port: int(env.PORT, 58000),
    apiHost: env.API_HOST ?? '127.0.0.1',
    workerPort: int(env.WORKER_PORT, 58001),
    tlsPort: int(env.TLS_PORT, 58443),
    tlsDir: env.TLS_DIR ?? '/tls',
    rateLimitPerMinute: int(env.RATE_LIMIT_PER_MINUTE, 60),
    ssoRequired: env.SSO_REQUIRED === 'true',
    poolMax: int(env.DB_POOL_MAX, 10),
  };
}
