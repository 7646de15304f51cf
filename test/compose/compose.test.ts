/**
 * docker-compose.yml, the Dockerfiles and config/engine.compose.yaml checked against the code that
 * reads them, statically: there is no Docker engine here, and nothing in this file calls docker
 * (compose-config.test.ts has Docker Compose itself read the compose file).
 *
 * The compose file is interpolated the way compose does it (variables from .env.example, secrets
 * filled with placeholders), then the engine's own loaders (`loadConfig`, `loadReceiverConfig`)
 * read the configs with each container's environment, and every address, port, mount and secret
 * they name must exist in the compose model.
 */
import { spawnSync } from 'node:child_process';
import { builtinModules } from 'node:module';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import ts from 'typescript';
import { parse as parseYaml } from 'yaml';
import { loadCodecServerConfig } from '../../src/codec-server/config';
import { loadConfig, readSecret, type EngineConfig } from '../../src/config';
import { loadReceiverConfig } from '../../src/receiver/config';
import * as contracts from '../../src/workflows/contracts';
import {
  MissingVariableError,
  REPO,
  copySources,
  dependsOn,
  dockerIgnored,
  dockerignoreRules,
  execForm,
  keyValues,
  loadCompose,
  loadComposeRaw,
  ofKind,
  parseDockerfile,
  parseEnvFile,
  publishedContainerPorts,
  read,
  serviceSecrets,
  serviceVolumes,
  stage,
  variablesIn,
  type Service,
} from './helpers';

/** Where the engine image puts the repository (WORKDIR of the runtime stage). */
const APP_DIR = '/app';
const ENGINE_CONFIG_FILE = 'config/engine.compose.yaml';
const SECRET_KEY = /PASSWORD|PWD|SECRET|TOKEN|(^|_)KEY$|DATABASE_URL/;
const DRILL_ROLES = ['api', 'worker', 'proxy'] as const;
/** The roles the replica's entry point (`python3 -m app <role>`) accepts, from its usage line. */
const ALFRED_ROLES = /python3 -m app <([a-z|]+)>/.exec(read('drill/alfred/app/__main__.py'))![1]!.split('|');

const envExample = parseEnvFile(read('.env.example'));
const secretVars = Object.keys(envExample).filter((k) => SECRET_KEY.test(k));
/** .env.example with every secret given a placeholder, as a user's .env would have them. */
const ENV: Record<string, string> = {
  ...envExample,
  ...Object.fromEntries(secretVars.map((k) => [k, `placeholder-${k.toLowerCase()}`])),
};
const raw = loadComposeRaw();
const compose = loadCompose(ENV);
const services = compose.services;

function svc(name: string): Service {
  const s = services[name];
  if (!s) throw new Error(`docker-compose.yml has no service "${name}"`);
  return s;
}
const env = (name: string): Record<string, string> => svc(name).environment ?? {};
const drillServices = Object.entries(services).filter(([, s]) => s.labels?.['remediation.component']);
const oneShots = Object.entries(services).filter(([, s]) => s.restart === 'no' && !s.labels?.['remediation.component']);

/** The compose-side path of a file inside the engine image, e.g. /app/config/x.yaml → <repo>/config/x.yaml. */
function repoPathOf(containerPath: string): string {
  expect(containerPath.startsWith(`${APP_DIR}/`)).toBe(true);
  return path.join(REPO, path.relative(APP_DIR, containerPath));
}

/** Variables that set the port a process listens on: the receiver's, and each drill role's. */
const LISTEN_PORT_VARIABLE: Record<string, string> = {
  receiver: 'RECEIVER_PORT',
  api: 'PORT',
  worker: 'WORKER_PORT',
  proxy: 'TLS_PORT',
};

/** Ports a service's container listens on: published container ports, its listen-port variable, `0.0.0.0:port` bind addresses, image defaults. */
function containerPorts(name: string): Set<number> {
  const s = svc(name);
  const ports = new Set(publishedContainerPorts(s));
  const role = drillServices.some(([n]) => n === name) ? ([] as string[]).concat(s.command ?? [])[0] : name;
  const listenVar = LISTEN_PORT_VARIABLE[role ?? ''];
  for (const [k, v] of Object.entries(s.environment ?? {})) {
    if (k === listenVar && /^\d+$/.test(v)) ports.add(Number(v));
    const bind = /^(?:0\.0\.0\.0|\[::\]):(\d+)$/.exec(v);
    if (bind) ports.add(Number(bind[1]));
  }
  const image = s.image ?? '';
  if (/^postgres:/.test(image)) ports.add(5432);
  if (/^redis:/.test(image)) ports.add(6379);
  if (/^prom\/prometheus:/.test(image)) ports.add(9090);
  if (/^prom\/alertmanager:/.test(image)) ports.add(9093);
  return ports;
}

/** `host:port` names a compose service listening on that port. */
function expectServiceAddress(hostPort: string): string {
  const m = /^([\w.-]+):(\d+)$/.exec(hostPort);
  if (!m) throw new Error(`"${hostPort}" is not host:port`);
  const [, host, port] = m;
  expect(Object.keys(services)).toContain(host);
  expect([...containerPorts(host!)]).toContain(Number(port));
  return host!;
}

function isUnder(file: string, dir: string): boolean {
  const rel = path.posix.relative(dir, file);
  return rel !== '' && !rel.startsWith('..') && !path.posix.isAbsolute(rel);
}

describe('docker-compose.yml: structure', () => {
  test('every service has a healthcheck', () => {
    for (const [name, s] of Object.entries(services)) {
      const t = s.healthcheck?.test;
      expect({ name, test: Array.isArray(t) ? t.length > 1 : Boolean(t) }).toEqual({ name, test: true });
    }
  });

  test('every depends_on has a condition: healthy for services, completed for one-shots', () => {
    const oneShotNames = new Set(oneShots.map(([n]) => n));
    for (const [name, s] of Object.entries(services)) {
      for (const [dep, spec] of Object.entries(dependsOn(s))) {
        expect(Object.keys(services)).toContain(dep);
        const wanted = oneShotNames.has(dep) ? 'service_completed_successfully' : 'service_healthy';
        expect({ service: name, dependency: dep, condition: spec.condition }).toEqual({
          service: name,
          dependency: dep,
          condition: wanted,
        });
      }
    }
  });

  test('one-shots run once and something waits for each of them', () => {
    expect(oneShots.map(([n]) => n).sort()).toEqual(['alfred-db-backup', 'alfred-tls', 'temporal-setup']);
    for (const [name, s] of oneShots) {
      expect(s.ports ?? []).toEqual([]);
      if (name !== 'alfred-db-backup') {
        const waiters = Object.values(services).filter(
          (x) => dependsOn(x)[name]?.condition === 'service_completed_successfully',
        );
        expect(waiters.length).toBeGreaterThan(0);
      }
    }
  });

  test('named volumes are declared and used; bind mounts exist in the repository', () => {
    const declared = Object.keys(compose.volumes ?? {});
    const used = new Set<string>();
    for (const s of Object.values(services)) {
      for (const v of serviceVolumes(s)) {
        if (v.type === 'volume') {
          expect(declared).toContain(v.source);
          used.add(v.source);
        } else if (v.source.startsWith('./')) {
          expect(existsSync(path.join(REPO, v.source))).toBe(true);
        }
      }
    }
    expect([...used].sort()).toEqual([...declared].sort());
  });

  test('stateful services keep their data on named volumes', () => {
    const mountedAt = (name: string, target: string) =>
      serviceVolumes(svc(name)).find((v) => v.target === target && v.type === 'volume');
    expect(mountedAt('temporal-db', '/var/lib/postgresql/data')).toBeDefined();
    expect(mountedAt('alfred-db', '/var/lib/postgresql/data')).toBeDefined();
    expect(mountedAt('prometheus', '/prometheus')).toBeDefined();
    expect(mountedAt('alertmanager', '/alertmanager')).toBeDefined();
  });
});

describe('docker-compose.yml: secrets', () => {
  test('no secret is written in the compose file: secret-like settings come from required variables or secret files', () => {
    for (const [name, s] of Object.entries(raw.services)) {
      for (const [key, value] of Object.entries(s.environment ?? {})) {
        if (!SECRET_KEY.test(key)) continue;
        const text = String(value);
        if (key.endsWith('_FILE')) {
          expect({ name, key, value: text.startsWith('/run/secrets/') }).toEqual({ name, key, value: true });
          continue;
        }
        const vars = variablesIn(text);
        // A required variable, or an optional one whose default is empty: never a value in the file.
        const ok = vars.length > 0 && vars.every((v) => v.op === '?' || (v.op === '-' && v.arg === ''));
        expect({ name, key, fromVariable: ok }).toEqual({ name, key, fromVariable: true });
        const literal = text.replace(/\$\{[^}]*\}/g, '');
        expect(literal).not.toMatch(/:[^/@:]+@/); // no password left in a URL
      }
    }
  });

  test('.env.example holds no secret values, and names every secret the compose file needs', () => {
    for (const k of secretVars) expect({ [k]: envExample[k] }).toEqual({ [k]: '' });
    const required = new Set<string>();
    for (const v of variablesIn(JSON.stringify(raw))) if (v.op === '?') required.add(v.name);
    for (const s of Object.values(compose.secrets ?? {})) if (s.environment) required.add(s.environment);
    for (const name of required) expect(Object.keys(envExample)).toContain(name);
  });

  test('compose refuses to start while a required secret is missing', () => {
    const requiredVars = variablesIn(JSON.stringify(raw)).filter((v) => v.op === '?');
    expect(requiredVars.length).toBeGreaterThan(0);
    for (const name of secretVars.filter((k) => requiredVars.some((v) => v.name === k))) {
      let err: unknown;
      try {
        loadCompose({ ...ENV, [name]: '' });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(MissingVariableError);
      expect((err as MissingVariableError).variable).toBe(name);
    }
  });

  test('every secret a service mounts is declared, from a variable of .env', () => {
    for (const s of Object.values(services)) {
      for (const sec of serviceSecrets(s)) {
        const decl = compose.secrets?.[sec.source];
        expect(decl).toBeDefined();
        expect(decl?.environment ?? decl?.file).toBeTruthy();
      }
    }
  });
});

describe('docker-compose.yml: Temporal', () => {
  test('auto-setup server on its own PostgreSQL, gRPC published on 7233', () => {
    const t = svc('temporal');
    expect(t.image).toMatch(/^temporalio\/auto-setup:/);
    expect(env('temporal').DB).toBe('postgres12');
    const dbService = env('temporal').POSTGRES_SEEDS!;
    expect(svc(dbService).image).toMatch(/^postgres:/);
    expect(env('temporal').POSTGRES_USER).toBe(env(dbService).POSTGRES_USER);
    expect(env('temporal').POSTGRES_PWD).toBe(env(dbService).POSTGRES_PASSWORD);
    expect(dependsOn(t)[dbService]?.condition).toBe('service_healthy');
    expect(publishedContainerPorts(t)).toContain(7233);
    expect(t.ports).toContain('127.0.0.1:7233:7233');
    // The dynamic config file it names is the one mounted.
    const dyn = path.posix.join('/etc/temporal', env('temporal').DYNAMIC_CONFIG_FILE_PATH!);
    const mount = serviceVolumes(t).find((v) => v.target === dyn);
    expect(mount).toBeDefined();
    expect(parseYaml(read(mount!.source))).toHaveProperty(['system.forceSearchAttributesCacheRefreshOnRead']);
  });

  test('UI on host port 8233 (8080 inside), pointed at the server', () => {
    const ui = svc('temporal-ui');
    expect(ui.image).toMatch(/^temporalio\/ui:/);
    expect(ui.ports).toContain('127.0.0.1:8233:8080');
    expectServiceAddress(env('temporal-ui').TEMPORAL_ADDRESS!);
    expect(env('temporal-ui').TEMPORAL_ADDRESS).toBe('temporal:7233');
  });

  test('admin-tools one-shot registers exactly the search attributes the engine upserts', () => {
    const setup = svc('temporal-setup');
    expect(setup.image).toMatch(/^temporalio\/admin-tools:/);
    expect(dependsOn(setup).temporal?.condition).toBe('service_healthy');
    const listed = env('temporal-setup').SEARCH_ATTRIBUTES!.split(/\s+/).sort();
    const wanted = [
      'IncidentScenario=Keyword',
      'IncidentSeverity=Int',
      'IncidentTarget=Keyword',
      'IncidentPhase=Keyword',
      'IncidentRunbook=Keyword',
    ].sort();
    expect(listed).toEqual(wanted);
    // Same list as the local stack registers (scripts/lib.sh) ...
    const lib = /SEARCH_ATTRIBUTES=\(([^)]*)\)/.exec(read('scripts/lib.sh'));
    expect(lib?.[1]?.trim().split(/\s+/).sort()).toEqual(wanted);
    // ... and as the workflows' search attribute keys (src/workflows/contracts.ts).
    const typeName: Record<string, string> = { KEYWORD: 'Keyword', INT: 'Int' };
    const keys = (Object.values(contracts) as unknown[])
      .filter(
        (v): v is { name: string; type: string } => typeof v === 'object' && v !== null && 'name' in v && 'type' in v,
      )
      .filter((k) => /^Incident/.test(k.name))
      .map((k) => `${k.name}=${typeName[k.type] ?? k.type}`)
      .sort();
    expect(keys).toEqual(wanted);
    const script = ([] as string[]).concat(setup.command ?? []).join('\n');
    expect(script).toContain('for sa in $SEARCH_ATTRIBUTES');
    expect(script).toContain('temporal operator search-attribute create');
    expect(env('temporal-setup').TEMPORAL_ADDRESS).toBe('temporal:7233');
  });

  test('one namespace everywhere', () => {
    const ns = ENV.TEMPORAL_NAMESPACE ?? 'default';
    expect(env('temporal').DEFAULT_NAMESPACE).toBe(ns);
    expect(env('temporal-setup').TEMPORAL_NAMESPACE).toBe(ns);
    expect(env('temporal-ui').TEMPORAL_DEFAULT_NAMESPACE).toBe(ns);
    expect(env('worker').TEMPORAL_NAMESPACE).toBe(ns);
    expect(env('receiver').TEMPORAL_NAMESPACE).toBe(ns);
  });
});

describe('docker-compose.yml: drill target', () => {
  const components = ['api', 'worker', 'db', 'redis', 'proxy'];

  test('one container per component, labelled for the engine, named as drill/README.md says', () => {
    const byComponent = Object.fromEntries(drillServices.map(([n, s]) => [s.labels!['remediation.component'], n]));
    expect(Object.keys(byComponent).sort()).toEqual([...components].sort());
    for (const [name, s] of drillServices) {
      expect(s.labels?.['remediation.target']).toBe('alfred');
      expect(name).toBe(`alfred-${s.labels!['remediation.component']}`);
      // The engine recreates a container under the same name; the others reach it by that name.
      expect(s.container_name).toBe(name);
      // The engine restarts what a drill breaks, not Docker.
      expect(s.restart).toBe('no');
    }
  });

  test('postgres:15 and redis:7 with 64 MB, noeviction', () => {
    expect(svc('alfred-db').image).toBe('postgres:15');
    const redis = svc('alfred-redis');
    expect(redis.image).toBe('redis:7');
    const cmd = ([] as string[]).concat(redis.command ?? []);
    expect(cmd[cmd.indexOf('--maxmemory') + 1]).toBe('64mb');
    expect(cmd[cmd.indexOf('--maxmemory-policy') + 1]).toBe('noeviction');
  });

  test('api, worker and proxy are built from drill/Dockerfile, the role is the command', () => {
    for (const role of DRILL_ROLES) {
      const s = svc(`alfred-${role}`);
      expect(s.build?.dockerfile).toBe('drill/Dockerfile');
      expect(s.command).toEqual([role]);
      expect(ALFRED_ROLES).toContain(role);
      // Release identity comes from the image only, so a recreate on another tag changes it.
      expect(Object.keys(s.environment ?? {})).not.toContain('APP_VERSION');
      expect(Object.keys(s.environment ?? {})).not.toContain('DRILL_BAD_RELEASE');
      expect(s.image).toMatch(/^localhost\/alfred-(api|worker):1\.1\.0$/);
      expect(s.build?.args?.APP_VERSION).toBe(s.image!.split(':').pop());
    }
  });

  test('the drill environment points at the compose services', () => {
    for (const role of DRILL_ROLES) {
      const e = env(`alfred-${role}`);
      const db = new URL(e.DATABASE_URL!);
      expectServiceAddress(`${db.hostname}:${db.port}`);
      expect(db.hostname).toBe('alfred-db');
      const redis = new URL(e.REDIS_URL!);
      expect(redis.hostname).toBe('alfred-redis');
      expectServiceAddress(`${redis.hostname}:${redis.port}`);
      expect(e.PORT).toBe('58000');
      expect(e.WORKER_PORT).toBe('58001');
      expect(e.TLS_PORT).toBe('58443');
      expect(e.API_HOST).toBe('alfred-api');
    }
    // The app's database password is the one the init script gives the role.
    expect(raw.services['alfred-api']!.environment!.DATABASE_URL).toContain('${ALFRED_DB_PASSWORD:?');
    expect(compose.secrets?.['alfred-db-password']?.environment).toBe('ALFRED_DB_PASSWORD');
    expect(serviceSecrets(svc('alfred-db')).map((s) => s.target)).toContain('/run/secrets/alfred-db-password');
    expect(read('config/compose/alfred-db-init.sh')).toContain('/run/secrets/alfred-db-password');
    const init = serviceVolumes(svc('alfred-db')).find((v) => v.target.startsWith('/docker-entrypoint-initdb.d/'));
    expect(init?.source).toBe('./config/compose/alfred-db-init.sh');
    expect(statSync(path.join(REPO, init!.source)).mode & 0o111).not.toBe(0);
  });

  test("host ports are the local stack's (scripts/lib.sh)", () => {
    const lib = read('scripts/lib.sh');
    const port = (v: string) => /:-(\d+)\}/.exec(new RegExp(`${v}="\\$\\{${v}:-\\d+\\}"`).exec(lib)?.[0] ?? '')?.[1];
    expect(svc('alfred-api').ports).toContain(`127.0.0.1:${port('DRILL_API_PORT')}:58000`);
    expect(svc('alfred-worker').ports).toContain(`127.0.0.1:${port('DRILL_WORKER_PORT')}:58001`);
    expect(svc('alfred-proxy').ports).toContain(`127.0.0.1:${port('DRILL_TLS_PORT')}:58443`);
    expect(svc('alfred-db').ports).toContain(`127.0.0.1:${port('DRILL_DB_PORT')}:5432`);
    expect(svc('alfred-redis').ports).toContain(`127.0.0.1:${port('DRILL_REDIS_PORT')}:6379`);
    expect(svc('temporal-ui').ports).toContain(`127.0.0.1:${port('TEMPORAL_UI_PORT')}:8080`);
  });

  test('the proxy gets its certificate from the alfred-tls one-shot (scripts/drill-tls.sh)', () => {
    const tls = svc('alfred-tls');
    expect(tls.entrypoint).toEqual(['bash', '/app/drill-tls.sh', env('alfred-proxy').TLS_DIR]);
    const shared = serviceVolumes(tls).find((v) => v.target === env('alfred-proxy').TLS_DIR);
    expect(serviceVolumes(svc('alfred-proxy')).find((v) => v.target === env('alfred-proxy').TLS_DIR)?.source).toBe(
      shared?.source,
    );
    expect(dependsOn(svc('alfred-proxy'))['alfred-tls']?.condition).toBe('service_completed_successfully');
  });

  test('the backup one-shot writes where the restore runbooks read it', () => {
    const cfg = engineConfig();
    const backup = cfg.targets.alfred!.postgres!.backupPath;
    const dbMount = serviceVolumes(svc('alfred-db')).find((v) => isUnder(backup, v.target));
    expect(dbMount?.type).toBe('volume');
    const oneShotMount = serviceVolumes(svc('alfred-db-backup')).find((v) => v.source === dbMount!.source);
    expect(oneShotMount?.target).toBe(dbMount!.target);
    expect(([] as string[]).concat(svc('alfred-db-backup').command ?? []).join('\n')).toContain(backup);
  });
});

/** The engine config as the worker container loads it. */
function engineConfig(service = 'worker'): EngineConfig {
  const e = env(service);
  return loadConfig(repoPathOf(e.ENGINE_CONFIG!), e);
}

describe('config/engine.compose.yaml', () => {
  test('worker and receiver load it with the real loadConfig (zod ConfigSchema)', () => {
    expect(env('worker').ENGINE_CONFIG).toBe(`${APP_DIR}/${ENGINE_CONFIG_FILE}`);
    expect(env('receiver').ENGINE_CONFIG).toBe(`${APP_DIR}/${ENGINE_CONFIG_FILE}`);
    expect(() => engineConfig('worker')).not.toThrow();
    expect(() => engineConfig('receiver')).not.toThrow();
    // Also with no variable set at all: the defaults are the compose values.
    expect(loadConfig(path.join(REPO, ENGINE_CONFIG_FILE), {})).toEqual(
      loadConfig(path.join(REPO, ENGINE_CONFIG_FILE), { STACK_DIR: '/var/lib/remediation' }),
    );
  });

  test('every ${VAR} it reads is set by the worker or defaults to a compose value', () => {
    const text = read(ENGINE_CONFIG_FILE);
    const workerEnv = env('worker');
    const mounts = [
      ...serviceVolumes(svc('worker')).map((v) => v.target),
      ...serviceSecrets(svc('worker')).map((s) => s.target),
    ];
    for (const v of variablesIn(text)) {
      if (v.name in workerEnv) continue;
      expect({ variable: v.name, hasDefault: v.op === '-' && v.arg !== '' }).toEqual({
        variable: v.name,
        hasDefault: true,
      });
      const def = v.arg!;
      const url = /^\w+:\/\/([^/]+)/.exec(def);
      if (url) expectServiceAddress(url[1]!);
      else if (def.startsWith('/'))
        expect(mounts.some((m) => m === def || isUnder(m, def) || isUnder(def, m))).toBe(true);
      else if (/^[\w.-]+:\d+$/.test(def)) expectServiceAddress(def);
    }
    // The same variables reach the receiver (it loads the same file).
    for (const v of ['TEMPORAL_ADDRESS', 'TEMPORAL_NAMESPACE', 'TEMPORAL_TASK_QUEUE', 'STACK_DIR']) {
      expect(env('receiver')[v]).toBe(workerEnv[v]);
    }
  });

  test("temporal.address is the temporal service's gRPC port", () => {
    const cfg = engineConfig();
    expect(expectServiceAddress(cfg.temporal.address)).toBe('temporal');
    expect(cfg.temporal.address).toBe('temporal:7233');
    expect(svc('temporal').image).toMatch(/^temporalio\/auto-setup:/);
    expect(dependsOn(svc('worker')).temporal?.condition).toBe('service_healthy');
    expect(dependsOn(svc('worker'))['temporal-setup']?.condition).toBe('service_completed_successfully');
  });

  test('the worker mounts the Docker socket where docker.socketPath says', () => {
    const cfg = engineConfig();
    const sock = serviceVolumes(svc('worker')).find((v) => v.target === cfg.docker.socketPath);
    expect(sock?.type).toBe('bind');
    expect(sock?.source).toBe('/var/run/docker.sock');
    expect(svc('worker').group_add?.length).toBeGreaterThan(0);
  });

  test('the target alfred: addresses, labels and components are the compose ones', () => {
    const cfg = engineConfig();
    const t = cfg.targets.alfred!;
    const base = new URL(t.baseUrl);
    expect(expectServiceAddress(`${base.hostname}:${base.port}`)).toBe('alfred-api');
    expect(expectServiceAddress(t.tlsEndpoint!)).toBe('alfred-proxy');
    expect(expectServiceAddress(`${t.postgres!.host}:${t.postgres!.port}`)).toBe('alfred-db');
    expect(expectServiceAddress(`${t.redis!.host}:${t.redis!.port}`)).toBe('alfred-redis');
    const db = new URL(env('alfred-api').DATABASE_URL!);
    expect(db.pathname.slice(1)).toBe(t.postgres!.database);
    // Containers are found by compose's project and service labels: this file's project, and each
    // component's service as the engine's config maps it.
    expect(t.containers.project).toBe(compose.name);
    const byComponent = Object.fromEntries(drillServices.map(([n, s]) => [s.labels!['remediation.component'], n]));
    expect(Object.keys(byComponent).sort()).toEqual([...t.components].sort());
    for (const c of t.components) expect(t.containers.services[c]).toBe(byComponent[c]);
    for (const c of t.rollbackOrder) expect(t.components).toContain(c);
  });

  test('its secrets are the files compose mounts, holding the values the drill target uses', () => {
    const cfg = engineConfig();
    const t = cfg.targets.alfred!;
    const mounted = new Map(serviceSecrets(svc('worker')).map((s) => [s.target, s.source]));
    const adminSecret = mounted.get(t.adminKey!.file!);
    expect(adminSecret).toBeDefined();
    // The engine's admin key is the one the api was started with.
    const adminVar = compose.secrets![adminSecret!]!.environment!;
    expect(variablesIn(raw.services['alfred-api']!.environment!.ADMIN_KEY!).map((v) => v.name)).toEqual([adminVar]);
    // The engine's PostgreSQL password is the superuser password alfred-db was initialised with.
    const pgSecret = mounted.get(t.postgres!.password!.file!);
    expect(pgSecret).toBeDefined();
    const dbPasswordFile = env('alfred-db').POSTGRES_PASSWORD_FILE!;
    expect(serviceSecrets(svc('alfred-db')).find((s) => s.target === dbPasswordFile)?.source).toBe(pgSecret);
    expect(t.postgres!.user).toBe('postgres');
  });

  test('secrets it reads from the environment are passed to the worker, empty unless set', () => {
    const cfg = engineConfig();
    const envRefs = [cfg.temporal.apiKey, cfg.targets.alfred?.adminKey, cfg.targets.alfred?.postgres?.password]
      .map((r) => r?.env)
      .filter((e): e is string => Boolean(e));
    expect(envRefs).toContain('TEMPORAL_API_KEY');
    for (const name of envRefs) {
      expect(Object.keys(raw.services.worker!.environment!)).toContain(name);
      expect(variablesIn(raw.services.worker!.environment![name]!)).toEqual([{ name, op: '-', arg: '' }]);
    }
    // As .env.example leaves them, the compose server is reached without TLS and without a key.
    const unset = loadCompose({ ...ENV, TEMPORAL_API_KEY: '' }).services.worker!.environment!;
    const plain = loadConfig(repoPathOf(unset.ENGINE_CONFIG!), unset);
    expect(plain.temporal.tls).toBe(false);
    expect(readSecret(plain.temporal.apiKey, unset) || undefined).toBeUndefined();
  });

  test('mTLS to an existing cluster: the TEMPORAL_TLS_* paths of .env reach the worker as they reach config/engine.yaml', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'compose-tls-'));
    try {
      const files = { ca: path.join(dir, 'ca.crt'), cert: path.join(dir, 'engine.crt'), key: path.join(dir, 'engine.key') };
      const tlsEnv = {
        TEMPORAL_ADDRESS: 'temporal.example.internal:7233',
        TEMPORAL_TLS_SERVER_NAME: 'temporal-frontend',
        TEMPORAL_TLS_SERVER_CA_CERT_PATH: files.ca,
        TEMPORAL_TLS_CLIENT_CERT_PATH: files.cert,
        TEMPORAL_TLS_CLIENT_KEY_PATH: files.key,
      };
      const worker = loadCompose({ ...ENV, ...tlsEnv }).services.worker!.environment!;
      for (const [name, value] of Object.entries(tlsEnv)) expect(worker[name]).toBe(value);
      const inCompose = loadConfig(repoPathOf(worker.ENGINE_CONFIG!), worker).temporal.tls;
      const onHost = loadConfig(path.join(REPO, 'config/engine.yaml'), { ...tlsEnv }).temporal.tls;
      expect(inCompose).toEqual(onHost);
      expect(inCompose).toMatchObject({ serverName: 'temporal-frontend', serverCaCert: { file: files.ca }, clientCert: { file: files.cert } });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('notifications go to a named volume shared by every worker replica', () => {
    const cfg = engineConfig();
    const vol = serviceVolumes(svc('worker')).find((v) => isUnder(cfg.notify.file!, v.target));
    expect(vol?.type).toBe('volume');
  });

  test('worker metrics listen on all interfaces, where Prometheus and the healthcheck look', () => {
    const cfg = engineConfig();
    const [host, port] = cfg.worker.metricsAddress.split(':');
    expect(host).toBe('0.0.0.0');
    const prom = parseYaml(read('config/compose/prometheus.yml'));
    const job = prom.scrape_configs.find((j: { job_name: string }) => j.job_name === 'remediation-worker');
    expect(job.dns_sd_configs[0]).toEqual({ names: ['worker'], type: 'A', port: Number(port) });
    expect(JSON.stringify(svc('worker').healthcheck?.test)).toContain(`127.0.0.1:${port}/metrics`);
  });

  test('workers scale: no fixed name, no published port', () => {
    expect(svc('worker').container_name).toBeUndefined();
    expect(svc('worker').ports ?? []).toEqual([]);
  });
});

describe('receiver in compose', () => {
  const receiverEnv = () => env('receiver');
  const receiverConfig = () => loadReceiverConfig(repoPathOf(receiverEnv().RECEIVER_CONFIG!), receiverEnv());

  test('config/receiver.yaml loads with the container environment and listens where compose publishes', () => {
    const cfg = receiverConfig();
    expect(cfg.listen.host).toBe('0.0.0.0');
    expect(publishedContainerPorts(svc('receiver'))).toContain(cfg.listen.port);
    expect(JSON.stringify(svc('receiver').healthcheck?.test)).toContain(`127.0.0.1:${cfg.listen.port}/healthz`);
    expect(existsSync(path.join(REPO, cfg.routesFile))).toBe(true);
  });

  test('its state directory is a named volume and its token files are compose secrets', () => {
    const cfg = receiverConfig();
    const vol = serviceVolumes(svc('receiver')).find(
      (v) => v.target === cfg.stateDir || isUnder(cfg.stateDir, v.target),
    );
    expect(vol?.type).toBe('volume');
    const mounted = new Map(serviceSecrets(svc('receiver')).map((s) => [s.target, s.source]));
    for (const source of ['alertmanager', 'generic'] as const) {
      for (const ref of cfg.sources[source]?.bearerTokens ?? []) {
        if (ref.file) expect(mounted.has(ref.file)).toBe(true);
      }
    }
  });

  test('Alertmanager sends to the receiver with the token the receiver accepts', () => {
    const cfg = receiverConfig();
    const am = parseYaml(read('config/compose/alertmanager.yml'));
    const hook = am.receivers[0].webhook_configs[0];
    const url = new URL(hook.url);
    expect(expectServiceAddress(`${url.hostname}:${url.port}`)).toBe('receiver');
    expect(Number(url.port)).toBe(cfg.listen.port);
    expect(url.pathname).toBe('/alerts/alertmanager');
    const amSecret = serviceSecrets(svc('alertmanager')).find(
      (s) => s.target === hook.http_config.authorization.credentials_file,
    );
    expect(amSecret).toBeDefined();
    const receiverTokenFile = cfg.sources.alertmanager!.bearerTokens[0]!.file!;
    expect(serviceSecrets(svc('receiver')).find((s) => s.target === receiverTokenFile)?.source).toBe(amSecret!.source);
  });
});

describe('codec in compose', () => {
  /** config/codec-server.yaml as the codec-server container loads it. */
  const codecConfig = () => loadCodecServerConfig(path.join(REPO, 'config/codec-server.yaml'), env('codec-server'));

  test('worker, receiver and codec server mount the codec secrets file where their configs read it', () => {
    const file = engineConfig('worker').codec.secretsFile;
    expect(file).toBe('/var/lib/remediation/secrets/codec.yaml');
    expect(engineConfig('receiver').codec.secretsFile).toBe(file);
    expect(codecConfig().secretsFile).toBe(file);
    for (const name of ['worker', 'receiver', 'codec-server']) {
      const mounted = serviceSecrets(svc(name)).find((s) => s.target === file);
      expect({ name, source: mounted?.source }).toEqual({ name, source: 'codec-secrets' });
    }
    // A file on the host named in .env, required: compose stops without it.
    expect(raw.secrets?.['codec-secrets']?.file).toBe('${CODEC_SECRETS_FILE:?set CODEC_SECRETS_FILE in .env (see .env.example)}');
    expect(envExample.CODEC_SECRETS_FILE).toBe('');
  });

  test('the codec server listens where compose publishes it and its healthcheck looks', () => {
    const cfg = codecConfig();
    expect(cfg.listen.host).toBe('0.0.0.0');
    expect(publishedContainerPorts(svc('codec-server'))).toContain(cfg.listen.port);
    expect(svc('codec-server').ports).toContain(`127.0.0.1:8234:${cfg.listen.port}`);
    expect(JSON.stringify(svc('codec-server').healthcheck?.test)).toContain(`127.0.0.1:${cfg.listen.port}/healthz`);
    // The engine's clients in compose reach it by its service name (codec.serverUrl).
    const url = new URL(engineConfig().codec.serverUrl);
    expect(expectServiceAddress(`${url.hostname}:${url.port}`)).toBe('codec-server');
  });

  test('the UI decodes through it with credentials, from an origin it allows', () => {
    const ui = env('temporal-ui');
    expect(ui.TEMPORAL_CODEC_INCLUDE_CREDENTIALS).toBe('true');
    // The browser calls the published port; the codec server lets the UI's published origins in.
    const endpoint = new URL(ui.TEMPORAL_CODEC_ENDPOINT!);
    expect(svc('codec-server').ports).toContain(`${endpoint.hostname}:${endpoint.port}:${codecConfig().listen.port}`);
    const uiPort = /:(\d+):8080$/.exec(svc('temporal-ui').ports!.find((p) => p.endsWith(':8080'))!)![1];
    expect(codecConfig().uiOrigins.sort()).toEqual([`http://127.0.0.1:${uiPort}`, `http://localhost:${uiPort}`].sort());
  });
});

describe('Prometheus and Alertmanager compose copies', () => {
  /** Compose address of each local-stack address in the shipped configs. */
  const ADDRESS: Record<string, string> = {
    '127.0.0.1:58000': 'alfred-api:58000',
    '127.0.0.1:8095': 'receiver:8095',
    '127.0.0.1:9464': 'worker:9464',
    '127.0.0.1:7239': 'temporal:8000',
    '127.0.0.1:59090': 'prometheus:9090',
    '127.0.0.1:59093': 'alertmanager:9093',
  };
  const mapAddress = (a: string) => {
    const to = ADDRESS[a];
    if (!to)
      throw new Error(
        `no compose address for ${a}: add it to docker-compose.yml, config/compose/prometheus.yml and this table`,
      );
    return to;
  };

  type Job = {
    job_name: string;
    static_configs?: { targets: string[]; labels?: object }[];
    dns_sd_configs?: unknown[];
  };

  /** config/prometheus/prometheus.yml with compose addresses; the worker by DNS so each replica is scraped. */
  function expectedPrometheus() {
    const p = parseYaml(read('config/prometheus/prometheus.yml'));
    for (const am of p.alerting.alertmanagers)
      for (const sc of am.static_configs) sc.targets = sc.targets.map(mapAddress);
    p.scrape_configs = p.scrape_configs.map((job: Job) => {
      const out: Job = { ...job };
      out.static_configs = job.static_configs?.map((sc) => ({ ...sc, targets: sc.targets.map(mapAddress) }));
      const worker = out.static_configs?.find((sc) => sc.targets.some((t) => t.startsWith('worker:')));
      if (worker) {
        const port = Number(worker.targets[0]!.split(':')[1]);
        delete out.static_configs;
        out.dns_sd_configs = [{ names: ['worker'], type: 'A', port }];
      }
      return out;
    });
    return p;
  }

  test('config/compose/prometheus.yml is the shipped file with compose addresses only', () => {
    expect(parseYaml(read('config/compose/prometheus.yml'))).toEqual(expectedPrometheus());
  });

  test('config/compose/alertmanager.yml is the shipped file with the compose receiver and secret only', () => {
    const shipped = parseYaml(read('config/alertmanager/alertmanager.yml'));
    const hook = shipped.receivers[0].webhook_configs[0];
    hook.url = hook.url.replace(/^http:\/\/([^/]+)/, (_m: string, a: string) => `http://${mapAddress(a)}`);
    hook.http_config.authorization.credentials_file = '/run/secrets/receiver-alertmanager-token';
    expect(parseYaml(read('config/compose/alertmanager.yml'))).toEqual(shipped);
  });

  test('every scrape and alerting address is a compose service listening on that port', () => {
    const p = parseYaml(read('config/compose/prometheus.yml'));
    for (const am of p.alerting.alertmanagers)
      for (const sc of am.static_configs) sc.targets.forEach(expectServiceAddress);
    for (const job of p.scrape_configs as Job[]) {
      for (const sc of job.static_configs ?? []) sc.targets.forEach(expectServiceAddress);
    }
    expect(env('temporal').PROMETHEUS_ENDPOINT).toBe('0.0.0.0:8000');
  });

  test('each is mounted where its process reads it, with the shipped alert rules beside prometheus.yml', () => {
    const prom = svc('prometheus');
    const conf = /--config\.file=(\S+)/.exec(([] as string[]).concat(prom.command ?? []).join(' '))![1]!;
    const mounts = serviceVolumes(prom);
    expect(mounts.find((v) => v.target === conf)?.source).toBe('./config/compose/prometheus.yml');
    const rules: string[] = parseYaml(read('config/compose/prometheus.yml')).rule_files;
    expect(mounts.find((v) => v.target === path.posix.join(path.posix.dirname(conf), rules[0]!))?.source).toBe(
      './config/prometheus/alert-rules.yml',
    );
    const am = svc('alertmanager');
    const amConf = /--config\.file=(\S+)/.exec(([] as string[]).concat(am.command ?? []).join(' '))![1]!;
    expect(serviceVolumes(am).find((v) => v.target === amConf)?.source).toBe('./config/compose/alertmanager.yml');
  });

  const which = (bin: string) =>
    spawnSync('sh', ['-c', `command -v ${bin}`], { encoding: 'utf8' }).stdout.trim() || undefined;
  const promtool = which('promtool');
  const amtool = which('amtool');
  (promtool ? test : test.skip)('promtool accepts the compose prometheus.yml with the shipped rules', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'compose-prom-'));
    try {
      copyFileSync(path.join(REPO, 'config/compose/prometheus.yml'), path.join(dir, 'prometheus.yml'));
      copyFileSync(path.join(REPO, 'config/prometheus/alert-rules.yml'), path.join(dir, 'alert-rules.yml'));
      const r = spawnSync(promtool!, ['check', 'config', path.join(dir, 'prometheus.yml')], { encoding: 'utf8' });
      expect(`${r.stdout}${r.stderr}`).toContain('SUCCESS');
      expect(r.status).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  (amtool ? test : test.skip)('amtool accepts the compose alertmanager.yml', () => {
    const r = spawnSync(amtool!, ['check-config', path.join(REPO, 'config/compose/alertmanager.yml')], {
      encoding: 'utf8',
    });
    expect(`${r.stdout}${r.stderr}`).toContain('SUCCESS');
    expect(r.status).toBe(0);
  });
});

describe('Dockerfile (engine)', () => {
  const { stages } = parseDockerfile(read('Dockerfile'));
  const pkg = JSON.parse(read('package.json')) as {
    scripts: Record<string, string>;
    dependencies: Record<string, string>;
  };

  /** tsconfig.build.json as tsc reads it. */
  function buildConfig() {
    const file = path.join(REPO, 'tsconfig.build.json');
    const json = ts.readConfigFile(file, ts.sys.readFile);
    return ts.parseJsonConfigFileContent(json.config, ts.sys, REPO, undefined, file);
  }
  /** What tsc -p tsconfig.build.json emits for a source file, relative to the repository. */
  function emitted(src: string): string {
    const { options } = buildConfig();
    const rel = path.relative(options.rootDir ?? REPO, path.join(REPO, src)).replace(/\.ts$/, '.js');
    return path.relative(REPO, path.join(options.outDir!, rel));
  }

  test('deps stage installs the lockfile with npm ci; build stage runs the build script', () => {
    expect(ofKind(stage(stages, 'deps'), 'RUN').map((r) => r.args)).toContainEqual(expect.stringMatching(/^npm ci\b/));
    expect(copySources(stage(stages, 'deps'))).toEqual(expect.arrayContaining(['package.json', 'package-lock.json']));
    expect(stage(stages, 'build').from).toBe('deps');
    expect(pkg.scripts.build).toMatch(/tsc -p tsconfig\.build\.json/);
    expect(pkg.scripts.build).toContain('scripts/bundle-workflows.ts');
    expect(ofKind(stage(stages, 'build'), 'RUN').map((r) => r.args)).toContain('npm run build');
  });

  test('the build stage has every file tsc compiles (including what src and scripts import)', () => {
    const { options, fileNames } = buildConfig();
    const program = ts.createProgram(fileNames, options);
    const sources = program
      .getSourceFiles()
      .map((f) => path.relative(REPO, f.fileName))
      .filter((f) => !f.startsWith('node_modules') && !f.startsWith('..'));
    expect(sources.length).toBeGreaterThan(10);
    const copied = [...copySources(stage(stages, 'deps')), ...copySources(stage(stages, 'build'))];
    for (const f of sources)
      expect({ file: f, copied: copied.some((c) => f === c || isUnder(f, c)) }).toEqual({ file: f, copied: true });
    for (const f of ['tsconfig.json', 'tsconfig.build.json']) expect(copied).toContain(f);
  });

  test('runtime: node:20-bookworm-slim, production dependencies only, NODE_ENV=production, non-root', () => {
    const runtime = stage(stages, 'runtime');
    expect(runtime.from).toBe('node:20-bookworm-slim');
    expect(stage(stages, 'prod-deps').from).toBe('node:20-bookworm-slim');
    expect(ofKind(stage(stages, 'prod-deps'), 'RUN').map((r) => r.args)).toContainEqual(
      expect.stringMatching(/^npm ci --omit=dev\b/),
    );
    const copiesFrom = ofKind(runtime, 'COPY').map((c) => c.args);
    expect(copiesFrom).toContainEqual(expect.stringMatching(/^--from=prod-deps \/app\/node_modules /));
    expect(copiesFrom).toContainEqual(expect.stringMatching(/^--from=build \/app\/dist /));
    expect(copiesFrom).not.toContainEqual(expect.stringMatching(/^--from=(deps|build) \/app\/node_modules/));
    const envs = Object.assign({}, ...ofKind(runtime, 'ENV').map((e) => keyValues(e.args)));
    expect(envs.NODE_ENV).toBe('production');
    const user = ofKind(runtime, 'USER').pop()?.args;
    expect(user).toBeDefined();
    expect(['root', '0']).not.toContain(user);
    expect(ofKind(runtime, 'WORKDIR').pop()?.args).toBe(APP_DIR);
    // config/ is in the image, so ENGINE_CONFIG and RECEIVER_CONFIG name files that exist.
    expect(copySources(runtime)).toContain('config');
  });

  test('worker, receiver and codec server entry points are the files tsc emits for the package.json entries', () => {
    const runtime = stage(stages, 'runtime');
    const script = ofKind(runtime, 'COPY').find((c) => c.heredocs.length > 0)!;
    const scriptPath = script.args.split(/\s+/).pop()!;
    expect(execForm(ofKind(runtime, 'ENTRYPOINT').pop()!.args)).toEqual([path.posix.basename(scriptPath)]);
    expect(execForm(ofKind(runtime, 'CMD').pop()!.args)).toEqual(['worker']);
    const body = script.heredocs[0]!;
    for (const [cmd, src] of [
      ['worker', 'src/workers/main.ts'],
      ['receiver', 'src/receiver/main.ts'],
      ['codec-server', 'src/codec-server/main.ts'],
    ] as const) {
      // The worker runs with its memory settings (BENCHMARKS.md, concurrency) wherever it is started.
      const flags = cmd === 'worker' ? ' --optimize-for-size' : '';
      expect(pkg.scripts[cmd]).toBe(cmd === 'worker' ? `MALLOC_ARENA_MAX=2 node${flags} --import tsx ${src}` : `tsx ${src}`);
      expect(buildConfig().fileNames.map((f) => path.relative(REPO, f))).toContain(src);
      expect(emitted(src)).toBe(`dist/${src.replace(/\.ts$/, '.js')}`);
      expect(body).toMatch(
        new RegExp(`^\\s*${cmd}\\)[^\\n]*exec node${flags} ${APP_DIR}/${emitted(src).replace(/\./g, '\\.')} "\\$@"`, 'm'),
      );
      // Compose runs each with that command.
      expect(svc(cmd).command).toEqual([cmd]);
      expect(svc(cmd).build?.dockerfile).toBe('Dockerfile');
    }
    const envs = Object.assign({}, ...ofKind(runtime, 'ENV').map((e) => keyValues(e.args)));
    expect(envs.MALLOC_ARENA_MAX).toBe('2');
    expect(read('scripts/up.sh')).toContain('env MALLOC_ARENA_MAX=2 node --optimize-for-size --import tsx src/workers/main.ts');
  });

  test('the worker uses the pre-bundled workflow code that npm run build writes', () => {
    const runtime = stage(stages, 'runtime');
    const envs = Object.assign({}, ...ofKind(runtime, 'ENV').map((e) => keyValues(e.args)));
    const bundleDefault = /\?\? '([^']+workflow-bundle\.js)'/.exec(read('scripts/bundle-workflows.ts'))?.[1];
    expect(bundleDefault).toBe('dist/workflow-bundle.js');
    expect(envs.WORKFLOW_BUNDLE).toBe(`${APP_DIR}/${bundleDefault}`);
    expect(read('src/workers/main.ts')).toContain('WORKFLOW_BUNDLE');
  });

  test('everything src/ imports at run time is a production dependency', () => {
    const builtins = new Set(builtinModules);
    const files: string[] = [];
    const walk = (dir: string) => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        const p = path.join(dir, e.name);
        if (e.isDirectory()) walk(p);
        else if (e.name.endsWith('.ts')) files.push(p);
      }
    };
    walk(path.join(REPO, 'src'));
    for (const f of files) {
      const sf = ts.createSourceFile(f, ts.sys.readFile(f)!, ts.ScriptTarget.ES2022);
      for (const st of sf.statements) {
        if (!ts.isImportDeclaration(st) && !ts.isExportDeclaration(st)) continue;
        if (ts.isImportDeclaration(st) && st.importClause?.isTypeOnly) continue;
        if (ts.isExportDeclaration(st) && st.isTypeOnly) continue;
        const spec = st.moduleSpecifier && ts.isStringLiteral(st.moduleSpecifier) ? st.moduleSpecifier.text : undefined;
        if (!spec || spec.startsWith('.') || spec.startsWith('node:') || builtins.has(spec)) continue;
        const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!;
        expect({ file: path.relative(REPO, f), module: name, dependency: name in pkg.dependencies }).toEqual({
          file: path.relative(REPO, f),
          module: name,
          dependency: true,
        });
      }
    }
  });
});

describe('drill/Dockerfile', () => {
  const { stages } = parseDockerfile(read('drill/Dockerfile'));

  test("installs the replica's Python stack from the Debian packages scripts/install.sh installs", () => {
    const runtime = stage(stages, 'runtime');
    const apt = ofKind(runtime, 'RUN').find((r) => r.args.includes('apt-get install'))!.args;
    const installed = new Set(apt.split(/\s+/));
    const hostList = /APT_PACKAGES=\(([^)]*)\)/.exec(read('scripts/install.sh'))![1]!;
    const python = hostList
      .replace(/#.*$/gm, '')
      .split(/\s+/)
      .filter((p) => /^(python|alembic)/.test(p));
    expect(python).toEqual(expect.arrayContaining(['python3-fastapi', 'python3-sqlalchemy', 'alembic', 'python3-rq']));
    for (const p of python) expect({ p, installed: installed.has(p) }).toEqual({ p, installed: true });
    expect(ofKind(runtime, 'COPY').map((c) => c.args)).toContain('drill/alfred /app');
    expect(ofKind(runtime, 'WORKDIR').pop()?.args).toBe('/app');
  });

  test('roles are the command; APP_VERSION is a build argument baked into the image', () => {
    const runtime = stage(stages, 'runtime');
    expect(runtime.from).toBe('debian:bookworm-slim');
    expect(execForm(ofKind(runtime, 'ENTRYPOINT').pop()!.args)).toEqual(['python3', '-m', 'app']);
    const args = ofKind(runtime, 'ARG').map((a) => a.args.split('=')[0]);
    expect(args).toEqual(expect.arrayContaining(['APP_VERSION', 'APP_ROLE', 'DRILL_BAD_RELEASE']));
    const envs = Object.assign({}, ...ofKind(runtime, 'ENV').map((e) => keyValues(e.args)));
    expect(envs.APP_VERSION).toBe('${APP_VERSION}');
    expect(envs.DRILL_BAD_RELEASE).toBe('${DRILL_BAD_RELEASE}');
    expect(ofKind(runtime, 'USER').pop()?.args).toBe('alfred');
    // Build args compose passes are declared here.
    for (const [, s] of drillServices.concat(oneShots).filter(([, s]) => s.build)) {
      for (const a of Object.keys(s.build!.args ?? {})) expect(args).toContain(a);
    }
    expect(copySources(runtime)).toContain('scripts/drill-tls.sh');
  });
});

describe('.dockerignore', () => {
  const rules = dockerignoreRules();

  test('keeps every file the Dockerfiles copy', () => {
    const sources = [
      ...parseDockerfile(read('Dockerfile')).stages.flatMap(copySources),
      ...parseDockerfile(read('drill/Dockerfile')).stages.flatMap(copySources),
    ];
    const files: string[] = [];
    const walk = (rel: string) => {
      const abs = path.join(REPO, rel);
      // Python's bytecode caches are local build output (ignored by git and by .dockerignore alike).
      if (statSync(abs).isDirectory()) for (const e of readdirSync(abs)) if (e !== '__pycache__') walk(path.posix.join(rel, e));
      else files.push(rel);
    };
    for (const s of new Set(sources)) walk(s);
    for (const f of files.filter((x) => !x.endsWith('.log')))
      expect({ file: f, ignored: dockerIgnored(rules, f) }).toEqual({ file: f, ignored: false });
  });

  test('leaves out secrets, local state and build output', () => {
    for (const f of [
      '.env',
      '.stack/secrets/alfred-admin-key',
      'node_modules/yaml/package.json',
      'dist/workflow-bundle.js',
      '.git/HEAD',
      'test/global-setup.ts',
    ]) {
      expect({ file: f, ignored: dockerIgnored(rules, f) }).toEqual({ file: f, ignored: true });
    }
  });
});
