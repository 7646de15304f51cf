/**
 * The cluster profile (scripts/cluster.sh): the Temporal server on its own PostgreSQL, its frontend
 * behind mTLS. Tests bring it up themselves (idempotent: a second or two when it runs; the first
 * time on a machine it builds the server, minutes) and point the engine at it through the variables
 * the script writes, read by the engine's own config/engine.yaml.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { loadConfig, type EngineConfig } from '../../src/config';
import { REPO, STACK_DIR } from './engine';

const exec = promisify(execFile);

export const CLUSTER_DIR = path.join(STACK_DIR, 'cluster');
export const CLUSTER_TLS = path.join(CLUSTER_DIR, 'tls');
/** The server's pid file, as scripts/cluster.sh writes it. */
export const CLUSTER_PID_FILE = path.join(STACK_DIR, 'started/temporal-cluster.pid');

/** The cluster's Web UI (scripts/lib.sh CLUSTER_UI_PORT). */
export const CLUSTER_UI_URL = `http://127.0.0.1:${process.env.CLUSTER_UI_PORT ?? 8333}`;

/** How long a first start may take: it builds the server with go install. */
export const CLUSTER_UP_TIMEOUT_MS = 20 * 60_000;

/** `scripts/cluster.sh up`: starts what is not running, and returns how long it took. */
export async function clusterUp(): Promise<number> {
  const t0 = Date.now();
  await exec('bash', [path.join(REPO, 'scripts/cluster.sh'), 'up'], {
    env: { ...process.env, STACK_DIR },
    timeout: CLUSTER_UP_TIMEOUT_MS,
    maxBuffer: 16 * 1024 * 1024,
  });
  return Date.now() - t0;
}

/** The variables scripts/cluster.sh writes for the engine (.stack/cluster/engine.env). */
export function clusterEnv(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of readFileSync(path.join(CLUSTER_DIR, 'engine.env'), 'utf8').split('\n')) {
    const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line);
    if (m) out[m[1] as string] = m[2] as string;
  }
  return out;
}

/** `temporal:` of config/engine.yaml read with the cluster's variables: address, namespace, mTLS files. */
export function clusterTemporal(): EngineConfig['temporal'] {
  return loadConfig(path.join(REPO, 'config/engine.yaml'), { ...process.env, STACK_DIR, ...clusterEnv() }).temporal;
}

/** Points a test configuration at the cluster (keeping its task queue). */
export function onCluster(cfg: EngineConfig): void {
  const { address, namespace, tls } = clusterTemporal();
  cfg.temporal = { ...cfg.temporal, address, namespace, tls };
}

/** The running server's pid (scripts/cluster.sh started it). */
export function clusterServerPid(): number {
  return Number(readFileSync(CLUSTER_PID_FILE, 'utf8').trim());
}
