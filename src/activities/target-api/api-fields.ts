/**
 * Reading a target's HTTP answers by the field names its configuration gives (`targets.<name>.api`,
 * docs/targets.md "HTTP API"). Activities read through these readers and hand runbooks the engine's
 * own shapes, so no runbook knows a target's field names. A field an answer lacks is reported with
 * the setting that names it: absence of evidence is never read as false, 0 or "healthy".
 */
import type { TargetConfig } from '../../config';
import type { ActivityDeps } from '../engine/deps';
import { targetConfig } from '../engine/deps';
import { ErrorType, permanent } from '../engine/errors';

export type ApiSettings = TargetConfig['api'];
export type ApiFields = ApiSettings['fields'];
export type FieldGroup = keyof ApiFields;

export function apiSettings(deps: ActivityDeps, target: string): ApiSettings {
  return targetConfig(deps, target).api;
}

/** The value at a dotted path (`metrics.p99_latency_ms`, `blocked.0.ip`), or `found: false`. */
export function fieldAt(body: unknown, path: string): { found: true; value: unknown } | { found: false } {
  let v: unknown = body;
  for (const part of path.split('.')) {
    if (Array.isArray(v) && /^\d+$/.test(part)) {
      const i = Number(part);
      if (i >= v.length) return { found: false };
      v = v[i];
    } else if (v !== null && typeof v === 'object' && !Array.isArray(v) && Object.hasOwn(v, part)) {
      v = (v as Record<string, unknown>)[part];
    } else {
      return { found: false };
    }
  }
  return { found: true, value: v };
}

/** The setting that names one field, as a user writes it in the configuration. */
export function fieldSetting(target: string, group: FieldGroup, name: string): string {
  return `targets.${target}.api.fields.${group}.${name}`;
}

/** The setting that names one path. */
export function pathSetting(target: string, name: keyof ApiSettings['paths']): string {
  return `targets.${target}.api.paths.${name}`;
}

type Kind = 'boolean' | 'number' | 'string' | 'list' | 'id';

/**
 * Reads one answer by the configured names of one field group. Each read that finds nothing (or a
 * value of another kind) returns undefined and records a problem naming the field and its setting.
 */
export class AnswerReader<G extends FieldGroup> {
  readonly problems: string[] = [];

  constructor(
    private readonly target: string,
    private readonly group: G,
    private readonly fields: ApiFields[G],
    /** What answered, for messages: `GET /v1/governance/settings`. */
    private readonly what: string,
    private readonly body: unknown,
  ) {}

  /** The configured name of a field. */
  name(field: keyof ApiFields[G] & string): string {
    return this.fields[field] as string;
  }

  private read(field: keyof ApiFields[G] & string, kind: Kind, nullable: boolean): unknown {
    const path = this.name(field);
    const setting = fieldSetting(this.target, this.group, field);
    const at = fieldAt(this.body, path);
    if (!at.found) {
      this.problems.push(`${this.what} answered without \`${path}\` (set ${setting} to the field that holds it)`);
      return undefined;
    }
    const v = at.value;
    if (v === null && nullable) return null;
    const ok =
      kind === 'list'
        ? Array.isArray(v)
        : kind === 'id'
          ? (typeof v === 'string' && v !== '') || (typeof v === 'number' && Number.isFinite(v))
          : kind === 'number'
            ? typeof v === 'number' && Number.isFinite(v)
            : typeof v === kind;
    if (!ok) {
      this.problems.push(`${this.what}: \`${path}\` is ${v === null ? 'null' : Array.isArray(v) ? 'a list' : typeof v}, not a ${kind} (setting ${setting})`);
      return undefined;
    }
    return v;
  }

  boolean(field: keyof ApiFields[G] & string): boolean | undefined {
    return this.read(field, 'boolean', false) as boolean | undefined;
  }

  number(field: keyof ApiFields[G] & string): number | undefined {
    return this.read(field, 'number', false) as number | undefined;
  }

  string(field: keyof ApiFields[G] & string): string | undefined {
    return this.read(field, 'string', false) as string | undefined;
  }

  /** A string the target may leave null (e.g. "never reset"); undefined only when the field is absent. */
  nullableString(field: keyof ApiFields[G] & string): string | null | undefined {
    return this.read(field, 'string', true) as string | null | undefined;
  }

  list(field: keyof ApiFields[G] & string): unknown[] | undefined {
    return this.read(field, 'list', false) as unknown[] | undefined;
  }

  /** An identifier, number or string, as a string. */
  id(field: keyof ApiFields[G] & string): string | undefined {
    const v = this.read(field, 'id', false) as string | number | undefined;
    return v === undefined ? undefined : String(v);
  }

  /** Throws a permanent failure naming every field this reader missed. */
  orThrow(): void {
    if (this.problems.length > 0) throw permanent(ErrorType.NotConfigured, this.problems.join('; '));
  }
}

export function answerReader<G extends FieldGroup>(deps: ActivityDeps, target: string, group: G, what: string, body: unknown): AnswerReader<G> {
  return new AnswerReader(target, group, apiSettings(deps, target).fields[group], what, body);
}
