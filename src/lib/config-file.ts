/**
 * One way to read a configuration file, shared by the engine, the receiver and the codec server:
 *
 * - YAML (JSON is YAML), parsed first; then `${VAR}` and `${VAR:-default}` are substituted in the
 *   *values*, never in the text, so an environment value cannot add keys, lists or YAML syntax. A
 *   value that is exactly one `${...}` takes the scalar type of what it expands to (`port: ${PORT}`
 *   with PORT=8080 is the number 8080); anything else stays a string. `:-` follows the shell: the
 *   default applies when the variable is unset or empty.
 * - Durations are written as people write them (`15m`, `2h`, `90s`, `1500ms`, `1h30m`) or as numbers
 *   of milliseconds (`durationMs`).
 * - Keys the schema does not know are refused with their path (`unknownKeys`), as are values of the
 *   wrong kind; every problem names the file.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml, parseDocument, visit } from 'yaml';
import { z } from 'zod';

/** A configuration that cannot be used: the message names the file and what is wrong, never a secret. */
export class ConfigError extends Error {}

const REF = /\$\{(\w+)(?::-([^}]*))?\}/g;
const WHOLE_REF = /^\$\{(\w+)(?::-([^}]*))?\}$/;

function lookup(env: NodeJS.ProcessEnv, name: string, def: string | undefined): string {
  const v = env[name];
  return v === undefined || v === '' ? (def ?? '') : v;
}

/**
 * `${VAR}` substituted in a string value. A value that is exactly one reference and was written
 * unquoted takes the scalar type of what it expands to (a number, a boolean); quoted, or anything
 * else, it stays a string. What it expands to is never parsed as a map or a list.
 */
export function substituteValue(value: string, env: NodeJS.ProcessEnv, quoted = false): unknown {
  const whole = WHOLE_REF.exec(value);
  if (!whole || quoted) return value.replace(REF, (_m, name: string, def?: string) => lookup(env, name, def));
  const expanded = lookup(env, whole[1] as string, whole[2]);
  if (expanded === '') return '';
  let scalar: unknown;
  try {
    scalar = parseYaml(expanded);
  } catch {
    return expanded;
  }
  return scalar === null || typeof scalar === 'object' ? expanded : scalar;
}

/** Parses YAML text and substitutes the environment in its values (keys untouched). */
export function parseConfigText(text: string, env: NodeJS.ProcessEnv): unknown {
  const doc = parseDocument(text);
  if (doc.errors.length > 0) throw doc.errors[0];
  visit(doc, {
    Scalar(key, node) {
      if (key === 'key' || typeof node.value !== 'string' || !node.value.includes('${')) return;
      node.value = substituteValue(node.value, env, node.type === 'QUOTE_DOUBLE' || node.type === 'QUOTE_SINGLE');
    },
  });
  return doc.toJS();
}

/** Reads a YAML file and substitutes the environment in its values; errors name the file. */
export function readConfigFile(file: string, env: NodeJS.ProcessEnv = process.env, hint = ''): unknown {
  const abs = path.resolve(file);
  if (!existsSync(abs)) throw new ConfigError(`config file not found: ${abs}${hint}`);
  try {
    return parseConfigText(readFileSync(abs, 'utf8'), env);
  } catch (err) {
    throw new ConfigError(`config file ${abs} is not valid YAML: ${(err as Error).message}`);
  }
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const DURATION = /^(?:\d+(?:\.\d+)?\s*(?:ms|s|m|h|d)\s*)+$/;
const PART = /(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)/g;

/** `15m`, `2h`, `1h30m`, `90s`, `1500ms`, or a number of milliseconds; undefined if it is none of these. */
export function parseDuration(v: string | number): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) && v >= 0 ? v : undefined;
  const s = v.trim();
  if (/^\d+$/.test(s)) return Number(s);
  if (!DURATION.test(s)) return undefined;
  let ms = 0;
  for (const m of s.matchAll(PART)) ms += Number(m[1]) * (UNIT_MS[m[2] as string] as number);
  return Math.round(ms);
}

/** A duration in milliseconds, written `15m` / `2h` / `1h30m` / `90s` / `500ms` or as a number of milliseconds. */
const NOT_A_DURATION = 'is not a duration (e.g. 15m, 2h, 1h30m, 90s, 500ms, or milliseconds as a number)';

export const durationMs = z
  .union([z.number(), z.string()], {
    errorMap: (_issue, ctx) => ({
      message: ctx.data === undefined ? 'Required' : `${JSON.stringify(ctx.data)} ${NOT_A_DURATION}`,
    }),
  })
  .transform((v, ctx) => {
    const ms = parseDuration(v);
    if (ms === undefined) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: `"${String(v)}" ${NOT_A_DURATION}` });
      return z.NEVER;
    }
    return ms;
  });

/** `alerts[0].labels.alertname` from a path. */
export function formatPath(p: ReadonlyArray<string | number>): string {
  let out = '';
  for (const part of p) out += typeof part === 'number' ? `[${part}]` : out ? `.${part}` : part;
  return out || '(root)';
}

export function formatIssues(error: z.ZodError): string[] {
  return error.issues.map((i) => `${formatPath(i.path)}: ${i.message}`);
}

const isMap = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);

/**
 * Keys of the document that the schema dropped: what the file says that nothing reads (a typo, a
 * setting in the wrong section). Walks the document beside what the schema made of it; where the
 * schema turned a value into something else (a duration into a number), it stops.
 */
export function unknownKeys(raw: unknown, parsed: unknown, at: (string | number)[] = []): string[] {
  if (Array.isArray(raw) && Array.isArray(parsed)) return raw.flatMap((v, i) => unknownKeys(v, parsed[i], [...at, i]));
  if (!isMap(raw) || !isMap(parsed)) return [];
  return Object.entries(raw).flatMap(([k, v]) =>
    k in parsed
      ? unknownKeys(v, parsed[k], [...at, k])
      : [`${formatPath([...at, k])}: unknown key "${k}" (not a setting here)`],
  );
}

/** Parses a document with `schema`, refusing unknown keys; problems name the file and each path. */
export function parseConfig<S extends z.ZodTypeAny>(schema: S, raw: unknown, where: string): z.infer<S> {
  const parsed = schema.safeParse(raw ?? {});
  if (!parsed.success)
    throw new ConfigError(
      `${where} is invalid:\n${formatIssues(parsed.error)
        .map((l) => `  ${l}`)
        .join('\n')}`,
    );
  const unknown = unknownKeys(raw ?? {}, parsed.data);
  if (unknown.length > 0) throw new ConfigError(`${where} is invalid:\n${unknown.map((l) => `  ${l}`).join('\n')}`);
  return parsed.data as z.infer<S>;
}
