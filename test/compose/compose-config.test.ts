/**
 * docker-compose.yml read by Docker Compose itself: `docker compose config` (Compose v2, the CLI
 * plugin scripts/install.sh builds) parses, validates, interpolates and normalises the file, with the
 * variables of .env.example and placeholders for its secrets, as a user's .env would give them. The
 * assertions are on what Compose makes of it; a broken copy of the file must be refused.
 * test/compose/compose.test.ts checks the same file against the code that reads it.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseDocument } from 'yaml';
import { REPO, dependsOn, loadCompose, parseEnvFile, publishedContainerPorts, read } from './helpers';

const SECRET_KEY = /PASSWORD|PWD|SECRET|TOKEN|(^|_)KEY$/;

interface ConfigService {
  image?: string;
  build?: { context: string; dockerfile: string; args?: Record<string, string> };
  ports?: { host_ip?: string; published: string; target: number; protocol: string }[];
  healthcheck?: { test: string[]; interval?: string; timeout?: string; retries?: number; start_period?: string };
  volumes?: { type: 'bind' | 'volume'; source: string; target: string; read_only?: boolean }[];
  depends_on?: Record<string, { condition: string; required: boolean }>;
  secrets?: { source: string; target?: string }[];
  environment?: Record<string, string | null>;
  restart?: string;
}
interface ConfigModel {
  name: string;
  services: Record<string, ConfigService>;
  volumes: Record<string, { name: string }>;
  secrets: Record<string, { name: string; environment?: string; file?: string }>;
}

let dir: string;
let envFile: string;
let codecFile: string;
let model: ConfigModel;

/** .env.example with every secret filled in, and the codec's secrets file, as the file's header asks. */
function envFileText(drop: string[] = []): string {
  const vars = parseEnvFile(read('.env.example'));
  const filled = Object.entries(vars)
    .filter(([k]) => !drop.includes(k))
    .map(([k, v]) => [k, k === 'CODEC_SECRETS_FILE' ? codecFile : SECRET_KEY.test(k) && v === '' ? `placeholder-${k.toLowerCase()}` : v]);
  return filled.map(([k, v]) => `${k}=${v}`).join('\n') + '\n';
}

/**
 * `docker compose -f <file> --env-file <env> config --format json`, in an environment of PATH and
 * HOME only: variables of the test's own environment would take precedence over the env file.
 */
function composeConfig(file: string, env = envFile): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync('docker', ['compose', '-f', file, '--env-file', env, 'config', '--format', 'json'], {
    encoding: 'utf8',
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: process.env.HOME ?? '/root',
      ...(process.env.DOCKER_CONFIG ? { DOCKER_CONFIG: process.env.DOCKER_CONFIG } : {}),
    },
    timeout: 60_000,
  });
  if (r.error) throw new Error(`docker compose could not run (scripts/install.sh installs it): ${r.error.message}`);
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'compose-config-'));
  codecFile = path.join(dir, 'codec.yaml');
  writeFileSync(codecFile, 'placeholder: true\n', { mode: 0o600 });
  envFile = path.join(dir, '.env');
  writeFileSync(envFile, envFileText());
  const r = composeConfig(path.join(REPO, 'docker-compose.yml'));
  if (r.status !== 0) throw new Error(`docker compose config refused docker-compose.yml (exit ${r.status}):\n${r.stderr}`);
  model = JSON.parse(r.stdout) as ConfigModel;
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const svc = (name: string): ConfigService => {
  const s = model.services[name];
  if (!s) throw new Error(`compose's model has no service "${name}"`);
  return s;
};

test('docker compose is Compose v2', () => {
  const r = spawnSync('docker', ['compose', 'version'], { encoding: 'utf8' });
  expect(r.status).toBe(0);
  expect(r.stdout).toMatch(/^Docker Compose version /);
});

test('the project and its services', () => {
  expect(model.name).toBe('remediation-engine');
  expect(Object.keys(model.services).sort()).toEqual([
    'alertmanager',
    'alfred-api',
    'alfred-db',
    'alfred-db-backup',
    'alfred-proxy',
    'alfred-redis',
    'alfred-tls',
    'alfred-worker',
    'codec-server',
    'prometheus',
    'receiver',
    'temporal',
    'temporal-db',
    'temporal-setup',
    'temporal-ui',
    'worker',
  ]);
});

test('images, and what is built from the repository', () => {
  const images = Object.fromEntries(Object.entries(model.services).map(([n, s]) => [n, s.image]));
  expect(images).toEqual({
    'temporal-db': 'postgres:16',
    temporal: 'temporalio/auto-setup:1.29.1',
    'temporal-setup': 'temporalio/admin-tools:1.29.1-tctl-1.18.4-cli-1.5.0',
    'temporal-ui': 'temporalio/ui:2.34.0',
    'alfred-db': 'postgres:15',
    'alfred-redis': 'redis:7',
    'alfred-tls': 'localhost/alfred-api:1.1.0',
    'alfred-api': 'localhost/alfred-api:1.1.0',
    'alfred-worker': 'localhost/alfred-worker:1.1.0',
    'alfred-proxy': 'localhost/alfred-api:1.1.0',
    'alfred-db-backup': 'postgres:15',
    worker: 'remediation-engine:local',
    receiver: 'remediation-engine:local',
    'codec-server': 'remediation-engine:local',
    alertmanager: 'prom/alertmanager:v0.27.0',
    prometheus: 'prom/prometheus:v2.53.0',
  });
  const builds = Object.fromEntries(Object.entries(model.services).flatMap(([n, s]) => (s.build ? [[n, s.build]] : [])));
  const engine = { context: REPO, dockerfile: 'Dockerfile' };
  const drill = (role: string) => ({ context: REPO, dockerfile: 'drill/Dockerfile', args: { APP_VERSION: '1.1.0', ALEMBIC_HEAD: '0003', APP_ROLE: role } });
  expect(builds).toEqual({
    worker: engine,
    receiver: engine,
    'codec-server': engine,
    'alfred-tls': drill('api'),
    'alfred-api': drill('api'),
    'alfred-proxy': drill('api'),
    'alfred-worker': drill('worker'),
  });
  for (const b of Object.values(builds)) expect(existsSync(path.join(b.context, b.dockerfile))).toBe(true);
});

test('published ports: on PUBLISH_IP only, host port to container port', () => {
  const ports = Object.fromEntries(
    Object.entries(model.services).flatMap(([n, s]) => (s.ports ? [[n, s.ports.map((p) => `${p.host_ip}:${p.published}->${p.target}/${p.protocol}`)]] : [])),
  );
  expect(ports).toEqual({
    temporal: ['127.0.0.1:7233->7233/tcp'],
    'temporal-ui': ['127.0.0.1:8233->8080/tcp'],
    'alfred-db': ['127.0.0.1:55432->5432/tcp'],
    'alfred-redis': ['127.0.0.1:6379->6379/tcp'],
    'alfred-api': ['127.0.0.1:58000->58000/tcp'],
    'alfred-worker': ['127.0.0.1:58001->58001/tcp'],
    'alfred-proxy': ['127.0.0.1:58443->58443/tcp'],
    receiver: ['127.0.0.1:8095->8095/tcp'],
    'codec-server': ['127.0.0.1:8234->8234/tcp'],
    alertmanager: ['127.0.0.1:59093->9093/tcp'],
    prometheus: ['127.0.0.1:59090->9090/tcp'],
  });
});

test('every service has a healthcheck, with the shared timings (Temporal waits longer)', () => {
  for (const [name, s] of Object.entries(model.services)) {
    expect([name, s.healthcheck?.test[0]]).toEqual([name, expect.stringMatching(/^CMD(-SHELL)?$/)]);
    expect([name, s.healthcheck!.test.length > 1]).toEqual([name, true]);
    const { interval, timeout, retries, start_period } = s.healthcheck!;
    expect([name, interval, timeout]).toEqual([name, '5s', '5s']);
    expect([name, retries, start_period]).toEqual(name === 'temporal' ? [name, 30, '30s'] : [name, 12, '10s']);
  }
});

test('depends_on: each dependency with the condition that makes the start order safe', () => {
  const conditions = Object.fromEntries(
    Object.entries(model.services).flatMap(([n, s]) =>
      s.depends_on ? [[n, Object.fromEntries(Object.entries(s.depends_on).map(([d, c]) => [d, c.condition]))]] : [],
    ),
  );
  const healthy = 'service_healthy';
  const done = 'service_completed_successfully';
  expect(conditions).toEqual({
    temporal: { 'temporal-db': healthy },
    'temporal-setup': { temporal: healthy },
    'temporal-ui': { temporal: healthy },
    'alfred-api': { 'alfred-db': healthy, 'alfred-redis': healthy },
    'alfred-worker': { 'alfred-api': healthy },
    'alfred-proxy': { 'alfred-tls': done, 'alfred-api': healthy },
    'alfred-db-backup': { 'alfred-api': healthy },
    worker: { temporal: healthy, 'temporal-setup': done },
    receiver: { temporal: healthy, 'temporal-setup': done },
    alertmanager: { receiver: healthy },
    prometheus: { alertmanager: healthy },
  });
  for (const s of Object.values(model.services)) for (const d of Object.values(s.depends_on ?? {})) expect(d.required).toBe(true);
});

test('volumes: named ones declared at the top, bind mounts of repository files read-only', () => {
  const named = Object.values(model.services).flatMap((s) => (s.volumes ?? []).filter((v) => v.type === 'volume').map((v) => v.source));
  expect([...new Set(named)].sort()).toEqual(Object.keys(model.volumes).sort());
  expect(Object.values(model.volumes).map((v) => v.name)).toEqual(Object.keys(model.volumes).map((k) => `remediation-engine_${k}`));
  const binds = Object.entries(model.services).flatMap(([n, s]) => (s.volumes ?? []).filter((v) => v.type === 'bind').map((v) => ({ service: n, ...v })));
  for (const b of binds.filter((v) => v.source.startsWith(REPO))) {
    expect([b.service, b.source, existsSync(b.source), b.read_only]).toEqual([b.service, b.source, true, true]);
  }
  // The one bind mount from outside the repository: the Docker socket the worker manages containers through.
  expect(binds.filter((v) => !v.source.startsWith(REPO))).toEqual([
    expect.objectContaining({ service: 'worker', source: '/var/run/docker.sock', target: '/var/run/docker.sock' }),
  ]);
  expect(svc('worker').environment?.DOCKER_SOCKET).toBe('/var/run/docker.sock');
});

test('secrets come from the env file and the codec file, none written into the model', () => {
  expect(model.secrets).toEqual({
    'alfred-admin-key': { name: 'remediation-engine_alfred-admin-key', environment: 'ALFRED_ADMIN_KEY' },
    'postgres-password': { name: 'remediation-engine_postgres-password', environment: 'ALFRED_POSTGRES_PASSWORD' },
    'alfred-db-password': { name: 'remediation-engine_alfred-db-password', environment: 'ALFRED_DB_PASSWORD' },
    'receiver-alertmanager-token': { name: 'remediation-engine_receiver-alertmanager-token', environment: 'RECEIVER_ALERTMANAGER_TOKEN' },
    'receiver-generic-token': { name: 'remediation-engine_receiver-generic-token', environment: 'RECEIVER_GENERIC_TOKEN' },
    'codec-secrets': { name: 'remediation-engine_codec-secrets', file: codecFile },
  });
});

test('the static reader of compose.test.ts agrees with Compose on dependencies and ports', () => {
  // The same variables as the env file: what compose.test.ts interpolates by hand.
  const own = loadCompose(parseEnvFile(envFileText()));
  for (const [name, s] of Object.entries(model.services)) {
    const mine = own.services[name]!;
    const cond = Object.fromEntries(Object.entries(dependsOn(mine)).map(([d, c]) => [d, c.condition]));
    expect([name, cond]).toEqual([name, Object.fromEntries(Object.entries(s.depends_on ?? {}).map(([d, c]) => [d, c.condition]))]);
    expect([name, publishedContainerPorts(mine)]).toEqual([name, (s.ports ?? []).map((p) => p.target)]);
  }
});

test('a missing secret stops compose with the message the file gives', () => {
  const env = path.join(dir, 'missing.env');
  writeFileSync(env, envFileText(['ALFRED_ADMIN_KEY']));
  const r = composeConfig(path.join(REPO, 'docker-compose.yml'), env);
  expect(r.status).not.toBe(0);
  expect(r.stderr).toMatch(/ALFRED_ADMIN_KEY.*set ALFRED_ADMIN_KEY in \.env \(see \.env\.example\)/);
});

describe('a broken copy of the file is refused', () => {
  /** Writes the file, changed by `edit`, into a directory of its own and runs compose config on it. */
  function configOfCopy(name: string, edit?: (doc: ReturnType<typeof parseDocument>) => void) {
    const copyDir = mkdtempSync(path.join(dir, `${name}-`));
    const doc = parseDocument(read('docker-compose.yml'));
    edit?.(doc);
    const file = path.join(copyDir, 'docker-compose.yml');
    writeFileSync(file, doc.toString());
    return composeConfig(file);
  }

  test('the unchanged copy is accepted (so each refusal below is the edit’s)', () => {
    const r = configOfCopy('unchanged');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  test.each<[string, (doc: ReturnType<typeof parseDocument>) => void, RegExp]>([
    ['a dependency on a service that does not exist', (d) => d.setIn(['services', 'worker', 'depends_on', 'temporall'], { condition: 'service_healthy' }), /depends on undefined service "?temporall"?/],
    ['an unknown depends_on condition', (d) => d.setIn(['services', 'worker', 'depends_on', 'temporal', 'condition'], 'service_ready'), /services\.worker\.depends_on\.temporal\.condition must be one of the following: "service_started", "service_healthy", "service_completed_successfully"/],
    ['a secret no one defined', (d) => d.deleteIn(['secrets', 'codec-secrets']), /undefined secret "?codec-secrets"?/],
    ['a key Compose does not know', (d) => d.setIn(['services', 'worker', 'portz'], ['8080:8080']), /services\.worker Additional property portz is not allowed/],
    ['a healthcheck interval that is no duration', (d) => d.setIn(['services', 'worker', 'healthcheck', 'interval'], 'often'), /services\[worker\]\.healthcheck\.interval': time: invalid duration "often"/],
    ['a named volume not declared', (d) => d.deleteIn(['volumes', 'engine-state']), /undefined volume "?engine-state"?/],
  ])('%s', (_what, edit, message) => {
    const r = configOfCopy('broken', edit);
    expect(r.status).not.toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(message);
  });
});
