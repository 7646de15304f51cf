/**
 * Where the drill stack lives, read from `.stack/engine.env` and `.stack/secrets/` (written by
 * scripts/stack.sh). Ports follow scripts/lib.sh and can be overridden by the same variables.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

export interface DrillEnv {
  repoRoot: string;
  stackDir: string;
  dockerSocket: string;
  temporalAddress: string | undefined;
  apiUrl: string;
  adminKey: string;
  tlsDir: string;
  tlsPort: number;
  workerUrl: string;
  pg: { host: string; port: number; user: string; database: string; password: string };
  redis: { host: string; port: number };
}

export class DrillEnvError extends Error {}

function parseEnvFile(file: string): Record<string, string> {
  if (!existsSync(file)) return {};
  const out: Record<string, string> = {};
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^\s*([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line);
    if (m) out[m[1]!] = m[2]!.trim().replace(/^["']|["']$/g, '');
  }
  return out;
}

function readSecret(stackDir: string, name: string): string {
  const file = path.join(stackDir, 'secrets', name);
  if (!existsSync(file))
    throw new DrillEnvError(`secret ${name} not found in ${path.dirname(file)}: run scripts/stack.sh up first`);
  return readFileSync(file, 'utf8').trim();
}

const port = (v: string | undefined, fallback: number) => (v && /^\d+$/.test(v) ? Number(v) : fallback);

export function loadDrillEnv(env: NodeJS.ProcessEnv = process.env): DrillEnv {
  const repoRoot = path.resolve(__dirname, '..', '..', '..');
  let stackDir = env.STACK_DIR ?? path.join(repoRoot, '.stack');
  if (!path.isAbsolute(stackDir)) stackDir = path.join(repoRoot, stackDir);
  const file = parseEnvFile(path.join(stackDir, 'engine.env'));
  if (file.STACK_DIR) stackDir = file.STACK_DIR;
  const apiPort = port(env.DRILL_API_PORT, 58000);
  const tlsPort = port(env.DRILL_TLS_PORT, 58443);
  return {
    repoRoot,
    stackDir,
    dockerSocket: env.DOCKER_SOCKET ?? file.DOCKER_SOCKET ?? path.join(stackDir, 'podman', 'podman.sock'),
    temporalAddress: env.TEMPORAL_ADDRESS ?? file.TEMPORAL_ADDRESS,
    apiUrl: env.DRILL_API_URL ?? `http://127.0.0.1:${apiPort}`,
    adminKey: readSecret(stackDir, 'alfred-admin-key'),
    tlsDir: path.join(stackDir, 'drill', 'tls'),
    tlsPort,
    workerUrl: `http://127.0.0.1:${port(env.DRILL_WORKER_PORT, 58001)}`,
    pg: {
      host: '127.0.0.1',
      port: port(env.DRILL_DB_PORT, 55432),
      user: 'postgres',
      database: 'alfred',
      password: readSecret(stackDir, 'postgres-password'),
    },
    redis: { host: '127.0.0.1', port: port(env.DRILL_REDIS_PORT, 6379) },
  };
}
