/**
 * Readers for the files Docker reads, so the compose test can check them without a Docker engine:
 * compose variable interpolation, the compose model, Dockerfiles (stages, heredocs) and
 * .dockerignore matching. Each follows the documented behaviour of Docker for the subset we use.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';

export const REPO = path.resolve(__dirname, '../..');
export const read = (rel: string): string => readFileSync(path.join(REPO, rel), 'utf8');

// ---------------------------------------------------------------- compose interpolation

export class MissingVariableError extends Error {
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Compose interpolation: `$$` is a literal `$`; `${VAR}`, `$VAR`, `${VAR:-def}` / `${VAR-def}`
 * (default when unset or empty / unset), `${VAR:?msg}` / `${VAR?msg}` (error when unset or empty / unset).
 */
export function interpolate(text: string, env: Record<string, string | undefined>): string {
  return text.replace(
    /\$\$|\$\{(\w+)(?:(:?)([-?])([^}]*))?\}|\$(\w+)/g,
    (m, braced?: string, colon?: string, op?: string, arg?: string, bare?: string) => {
      if (m === '$$') return '$';
      const name = (braced ?? bare)!;
      const value = env[name];
      const missing = colon ? value === undefined || value === '' : value === undefined;
      if (op === '-') return missing ? (arg ?? '') : value!;
      if (op === '?') {
        if (missing) throw new MissingVariableError(name, `required variable ${name} is missing a value: ${arg ?? ''}`);
        return value!;
      }
      return value ?? '';
    },
  );
}

/** Every `${VAR...}` in a text, with its default (`:-` / `-`) or requirement (`:?` / `?`). */
export function variablesIn(text: string): { name: string; op?: '-' | '?'; arg?: string }[] {
  const out: { name: string; op?: '-' | '?'; arg?: string }[] = [];
  for (const m of text.replace(/\$\$/g, '').matchAll(/\$\{(\w+)(?::?([-?])([^}]*))?\}/g)) {
    out.push({ name: m[1]!, ...(m[2] ? { op: m[2] as '-' | '?', arg: m[3] ?? '' } : {}) });
  }
  return out;
}

function interpolateDeep(value: unknown, env: Record<string, string | undefined>): unknown {
  if (typeof value === 'string') return interpolate(value, env);
  if (Array.isArray(value)) return value.map((v) => interpolateDeep(v, env));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolateDeep(v, env)]));
  }
  return value;
}

/** `KEY=VALUE` lines of an env file (comments and blank lines skipped). */
export function parseEnvFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^\s*([A-Za-z_]\w*)=(.*)$/.exec(line);
    if (m) out[m[1]!] = m[2]!.trim();
  }
  return out;
}

// ---------------------------------------------------------------- compose model

export interface Healthcheck {
  test?: string | string[];
}
export interface ServiceSecret {
  source: string;
  target: string;
}
export interface Volume {
  type: 'volume' | 'bind';
  source: string;
  target: string;
}
export interface Service {
  image?: string;
  build?: { context: string; dockerfile?: string; args?: Record<string, string> };
  container_name?: string;
  command?: string[] | string;
  entrypoint?: string[] | string;
  restart?: string;
  environment?: Record<string, string>;
  labels?: Record<string, string>;
  ports?: string[];
  volumes?: string[];
  secrets?: (string | { source: string; target?: string })[];
  depends_on?: Record<string, { condition?: string }> | string[];
  healthcheck?: Healthcheck;
  group_add?: string[];
}
export interface ComposeFile {
  name?: string;
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
  secrets?: Record<string, { environment?: string; file?: string }>;
}

/** The compose file as YAML (anchors and merge keys resolved), before interpolation. */
export function loadComposeRaw(rel = 'docker-compose.yml'): ComposeFile {
  return parseYaml(read(rel), { merge: true }) as ComposeFile;
}

/** The compose file as `docker compose config` would see it with these variables. */
export function loadCompose(env: Record<string, string | undefined>, rel = 'docker-compose.yml'): ComposeFile {
  return interpolateDeep(loadComposeRaw(rel), env) as ComposeFile;
}

export function serviceSecrets(svc: Service): ServiceSecret[] {
  return (svc.secrets ?? []).map((s) =>
    typeof s === 'string'
      ? { source: s, target: `/run/secrets/${s}` }
      : { source: s.source, target: s.target?.startsWith('/') ? s.target : `/run/secrets/${s.target ?? s.source}` },
  );
}

/** Short volume syntax `source:target[:mode]`; a source starting with `.`, `/` or `~` is a bind mount. */
export function serviceVolumes(svc: Service): Volume[] {
  return (svc.volumes ?? []).map((v) => {
    const [source, target] = v.split(':');
    if (!source || !target) throw new Error(`volume "${v}" is not source:target`);
    return { type: /^[./~]/.test(source) ? 'bind' : 'volume', source, target };
  });
}

/** Container side of `ports` ("ip:host:container", "host:container" or "container"). */
export function publishedContainerPorts(svc: Service): number[] {
  return (svc.ports ?? []).map((p) => Number(p.split(':').pop()!.split('/')[0]));
}

export function dependsOn(svc: Service): Record<string, { condition?: string }> {
  const d = svc.depends_on ?? {};
  return Array.isArray(d) ? Object.fromEntries(d.map((n) => [n, {}])) : d;
}

// ---------------------------------------------------------------- Dockerfile

export interface Instruction {
  keyword: string;
  args: string;
  /** Heredoc bodies, in order (`COPY <<EOF dest` ... `EOF`). */
  heredocs: string[];
}
export interface Stage {
  from: string;
  name?: string;
  instructions: Instruction[];
}

/** Stages of a Dockerfile: comments dropped, line continuations joined, heredocs collected, global ARGs applied to FROM. */
export function parseDockerfile(text: string): { globalArgs: Record<string, string>; stages: Stage[] } {
  const lines = text.split('\n');
  const instructions: Instruction[] = [];
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i]!;
    if (/^\s*(#.*)?$/.test(line)) continue;
    while (line.endsWith('\\')) {
      let next = lines[++i];
      // Comment lines inside a continued instruction are dropped, as Docker does.
      while (next !== undefined && /^\s*#/.test(next)) next = lines[++i];
      line = line.slice(0, -1) + ' ' + (next ?? '').trim();
    }
    const m = /^\s*(\w+)\s+(.*)$/.exec(line);
    if (!m) throw new Error(`Dockerfile line ${i + 1} is not an instruction: ${line}`);
    const heredocs: string[] = [];
    for (const h of m[2]!.matchAll(/<<-?(['"]?)(\w+)\1/g)) {
      const body: string[] = [];
      while (++i < lines.length && lines[i] !== h[2]) body.push(lines[i]!);
      heredocs.push(body.join('\n'));
    }
    instructions.push({ keyword: m[1]!.toUpperCase(), args: m[2]!.trim(), heredocs });
  }
  const globalArgs: Record<string, string> = {};
  const stages: Stage[] = [];
  for (const ins of instructions) {
    if (ins.keyword === 'FROM') {
      const [image, as, name] = ins.args.split(/\s+/);
      const from = image!.replace(/\$\{(\w+)\}|\$(\w+)/g, (_m, a?: string, b?: string) => globalArgs[(a ?? b)!] ?? '');
      stages.push({ from, ...(as?.toUpperCase() === 'AS' && name ? { name } : {}), instructions: [] });
    } else if (stages.length === 0) {
      if (ins.keyword === 'ARG') {
        const [k, v] = ins.args.split('=');
        globalArgs[k!] = v ?? '';
      }
    } else {
      stages[stages.length - 1]!.instructions.push(ins);
    }
  }
  return { globalArgs, stages };
}

export function stage(stages: Stage[], name: string): Stage {
  const s = stages.find((x) => x.name === name);
  if (!s) throw new Error(`no stage "${name}"`);
  return s;
}

export const ofKind = (s: Stage, keyword: string): Instruction[] => s.instructions.filter((i) => i.keyword === keyword);

/** An exec-form (JSON array) instruction argument. */
export function execForm(args: string): string[] {
  const v: unknown = JSON.parse(args);
  if (!Array.isArray(v)) throw new Error(`not exec form: ${args}`);
  return v as string[];
}

/** `KEY=value` pairs of ENV / ARG / LABEL (quotes removed). */
export function keyValues(args: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of args.matchAll(/([\w.-]+)=("([^"]*)"|\S*)/g)) out[m[1]!] = m[3] ?? m[2]!;
  return out;
}

/** Sources of `COPY src... dest` (not `--from` copies, not heredocs). */
export function copySources(s: Stage): string[] {
  return ofKind(s, 'COPY')
    .filter((c) => !/--from=/.test(c.args) && c.heredocs.length === 0)
    .flatMap((c) => {
      const parts = c.args.split(/\s+/).filter((p) => !p.startsWith('--'));
      return parts.slice(0, -1);
    });
}

// ---------------------------------------------------------------- .dockerignore

/** A .dockerignore pattern: `*` and `?` stay within a path segment; `**` spans segments, and before a slash also matches none. */
function globToRegExp(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*' && pattern[i + 1] === '*') {
      const slash = pattern[i + 2] === '/';
      re += slash ? '(?:.*/)?' : '.*';
      i += slash ? 2 : 1;
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/** Whether Docker leaves `file` out of the build context (last matching rule wins; a rule matching a parent directory matches its files). */
export function dockerIgnored(rules: string[], file: string): boolean {
  const parents = file.split('/').map((_, i, parts) => parts.slice(0, i + 1).join('/'));
  let ignored = false;
  for (const raw of rules) {
    const negate = raw.startsWith('!');
    const pattern = path.posix.normalize(negate ? raw.slice(1) : raw).replace(/^\/+/, '');
    const re = globToRegExp(pattern);
    if (parents.some((p) => re.test(p))) ignored = !negate;
  }
  return ignored;
}

export function dockerignoreRules(rel = '.dockerignore'): string[] {
  return read(rel)
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
}
