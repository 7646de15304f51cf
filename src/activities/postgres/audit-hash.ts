/**
 * The target's audit hash definition (setting `audit.hash`, docs/targets.md) and the check that it is
 * the target's: it must reproduce the hashes the entries before a break already hold. The seeds state
 * no formula; the default is the replica's (`drill/alfred/app/audit_chain.py`).
 */
import { createHash } from 'node:crypto';
import type { AuditHashDefinition } from '../../config';

/** The setting that holds the definition, as messages name it. */
export const AUDIT_HASH_SETTING = 'audit.hash';

export interface HashColumn {
  column: string;
  key: string;
  nullAs: unknown;
}

/** The hashed columns, each with the key it has in the content and its value when NULL. */
export function hashColumns(def: AuditHashDefinition): HashColumn[] {
  return def.columns.map((c) =>
    typeof c === 'string' ? { column: c, key: c, nullAs: null } : { column: c.column, key: c.key ?? c.column, nullAs: c.nullAs === undefined ? null : c.nullAs },
  );
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value && typeof value === 'object' && !(value instanceof Date)) {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) out[key] = sortKeys((value as Record<string, unknown>)[key]);
    return out;
  }
  return value;
}

/**
 * One column value as it enters the content: timestamps per `timestamps`, numbers (int4 and the like)
 * as decimal strings, as int8 and numeric columns already read; text, booleans and JSON as stored.
 */
function normalise(def: AuditHashDefinition, value: unknown): unknown {
  if (value instanceof Date) {
    if (def.timestamps === 'epoch-ms') return String(value.getTime());
    if (def.timestamps === 'epoch-s') return String(Math.floor(value.getTime() / 1000));
    return value.toISOString();
  }
  if (typeof value === 'number' || typeof value === 'bigint') return String(value);
  return value;
}

/** The hashed content of one entry, `row` keyed by column name; the previous hash only where it is a field. */
export function hashContent(def: AuditHashDefinition, previousHash: string, row: Record<string, unknown>): string {
  const entries: Array<[string, unknown]> = hashColumns(def).map((c) => {
    const v = row[c.column];
    return [c.key, v === null || v === undefined ? c.nullAs : normalise(def, v)];
  });
  if (def.previousHash === 'field') entries.push([def.previousHashKey, previousHash]);
  if (def.serialise === 'joined') {
    return entries
      .map(([, v]) => (v === null || v === undefined ? '' : typeof v === 'object' ? JSON.stringify(sortKeys(v)) : String(v)))
      .join(def.separator);
  }
  const obj = Object.fromEntries(entries);
  return JSON.stringify(def.serialise === 'sorted-json' ? sortKeys(obj) : obj);
}

/** The hash the definition gives an entry whose predecessor's hash is `previousHash`. */
export function hashEntry(def: AuditHashDefinition, previousHash: string, row: Record<string, unknown>): string {
  const content = hashContent(def, previousHash, row);
  const input = def.previousHash === 'prefix' ? previousHash + content : def.previousHash === 'suffix' ? content + previousHash : content;
  return createHash(def.digest).update(input, 'utf8').digest(def.encoding);
}

/** An entry as stored: its id, the hashes it holds, and the hashed columns keyed by name. */
export interface StoredEntry {
  id: string;
  previous_hash: string | null;
  hash: string | null;
  content: Record<string, unknown>;
}

export interface DefinitionCheck {
  /** The definition reproduces the stored hash of every entry checked, and at least one was checked. */
  reproduced: boolean;
  /** How many entries with both hashes were checked. */
  checked: number;
  /** The first entry (highest id first) whose stored hash the definition does not give. */
  mismatchAt?: string;
  /** For people: what was checked and what it showed, naming the setting. */
  detail: string;
}

/**
 * Pure: whether the definition reproduces the hashes of entries that already verify (the entries
 * before a break that hold both hashes). Only then may it write hashes the target's own verification
 * accepts; with no such entry it cannot be shown, and is not taken as reproduced.
 */
export function checkDefinition(def: AuditHashDefinition, verified: StoredEntry[]): DefinitionCheck {
  const hashed = verified.filter((e) => e.hash !== null && e.previous_hash !== null);
  if (hashed.length === 0) {
    return { reproduced: false, checked: 0, detail: `no entry before the break holds a hash to check the hash definition (setting ${AUDIT_HASH_SETTING}) against` };
  }
  const unlike = hashed.find((e) => hashEntry(def, e.previous_hash as string, e.content) !== e.hash);
  if (unlike) {
    return {
      reproduced: false,
      checked: hashed.length,
      mismatchAt: unlike.id,
      detail: `the hash definition (setting ${AUDIT_HASH_SETTING}: ${describeDefinition(def)}) does not match the target's entries: it does not reproduce the stored hash of entry ${unlike.id}, before the break`,
    };
  }
  return { reproduced: true, checked: hashed.length, detail: `the hash definition (setting ${AUDIT_HASH_SETTING}) reproduces the stored hashes of the ${hashed.length} entries before the break` };
}

/** The definition in one line, for messages. */
export function describeDefinition(def: AuditHashDefinition): string {
  const cols = hashColumns(def).map((c) => (c.key === c.column ? c.column : `${c.column} as ${c.key}`)).join(', ');
  const how = def.serialise === 'joined' ? `joined by ${JSON.stringify(def.separator)}` : def.serialise;
  return `${def.digest} ${def.encoding} of previous hash as ${def.previousHash} + ${how} of [${cols}], timestamps ${def.timestamps}`;
}
