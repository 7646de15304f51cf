/** One logfmt line per event on stdout, the format the playbooks grep (`status=429`, `client_ip=`). */

export type Level = 'debug' | 'info' | 'warn' | 'error';
export type Fields = Record<string, string | number | boolean | null | undefined>;

function formatValue(value: string | number | boolean | null): string {
  const s = String(value);
  if (s === '' || /[\s"=\\]/.test(s)) return `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;
  return s;
}

export function logfmt(fields: Fields): string {
  const parts: string[] = [];
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    parts.push(`${key}=${formatValue(value)}`);
  }
  return parts.join(' ');
}

let baseFields: Fields = {};

/** Fields added to every line (the process role). */
export function setLogBase(fields: Fields): void {
  baseFields = fields;
}

export function log(level: Level, msg: string | undefined, fields: Fields = {}): void {
  const line = logfmt({ ts: new Date().toISOString(), level, ...baseFields, msg, ...fields });
  process.stdout.write(line + '\n');
}

/** The message of an error, trimmed to one line; never includes connection strings. */
export function errText(err: unknown): string {
  const raw = err instanceof Error ? err.message : String(err);
  return raw
    .replace(/postgres(ql)?:\/\/[^\s]+/g, 'postgres://***')
    .replace(/\s+/g, ' ')
    .slice(0, 300);
}
