/**
 * alembic's output as data (pure; shared by the migration activities and the INC-12 workflow):
 * `current` / `heads` lines, the `history` chain, and the revisions between two points of it.
 */

export interface Revision {
  revision: string;
  /** The revision it revises; null for the first one. */
  down: string | null;
  description: string;
}

const REVISION_LINE = /^([0-9A-Za-z_]+)(?: \((?:head|effective head|mergepoint|branchpoint)[^)]*\))*\s*$/;
/** `alembic history`: `<base> -> 0001, core ledger` / `0003 -> 0004 (head), wallet currency`. */
const HISTORY_LINE = /^(<base>|[0-9A-Za-z_]+) -> ([0-9A-Za-z_]+)(?: \([^)]*\))*, ?(.*)$/;

/** Pure: the revisions `current` or `heads` printed (one per line, with `(head)` marks). */
export function parseRevisions(stdout: string): string[] {
  return stdout
    .split('\n')
    .map((l) => REVISION_LINE.exec(l.trim())?.[1])
    .filter((r): r is string => r !== undefined);
}

/** Pure: `alembic history` as revisions, newest first (as alembic prints them). */
export function parseHistory(stdout: string): Revision[] {
  const out: Revision[] = [];
  for (const line of stdout.split('\n')) {
    const m = HISTORY_LINE.exec(line.trim());
    if (m) out.push({ revision: m[2] as string, down: m[1] === '<base>' ? null : (m[1] as string), description: (m[3] ?? '').trim() });
  }
  return out;
}

/**
 * Pure: the revisions above `from` up to `to` along `history` (newest first), or undefined when
 * `from` is not below `to` on that chain.
 */
export function revisionsBetween(history: Revision[], from: string | null, to: string): string[] | undefined {
  const byRevision = new Map(history.map((r) => [r.revision, r]));
  const out: string[] = [];
  let at: string | null = to;
  while (at !== from) {
    if (at === null) return undefined;
    const r = byRevision.get(at);
    if (!r) return undefined;
    out.push(at);
    at = r.down;
  }
  return out;
}

