/**
 * docs/playbook-coverage.md links each playbook step to a line of code and names an anchor, a piece
 * of text that is on that line: `[kernel/comms.ts:95](../src/workflows/kernel/comms.ts#L95) `ackActs.acknowledgePagerDuty(``.
 * A label names the file by its name or by the end of its path (`kernel/comms.ts`), and its line.
 * Code moves; the anchor does not. This rewrites each link's line number to where its anchor is now,
 * when the anchor occurs exactly once in the file; other rows are left as they are and reported.
 *
 *   npx tsx scripts/playbook-coverage-lines.ts           rewrite the doc
 *   npx tsx scripts/playbook-coverage-lines.ts --check   only report, exit 1 if anything is off
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export const ROOT = path.resolve(__dirname, '..');
export const DOC = path.join(ROOT, 'docs/playbook-coverage.md');

/** One link with its anchor, as written in the doc. */
export interface AnchoredLink {
  /** 1-based line of the doc the link is on. */
  docLine: number;
  /** Where the row belongs: the nearest headings above it, e.g. "Seed 002 › INC-01 Database unreachable". */
  section: string;
  /** The row's first cell (the seed step), or the line itself outside a table. */
  row: string;
  /** The link's label, e.g. `kernel/comms.ts:95`: the file's name or the end of its path, and the line. */
  label: string;
  /** The file the link points to, relative to the repository root, e.g. `src/workflows/kernel/comms.ts`. */
  file: string;
  /** The line the link points to (from `#L<n>`). */
  line: number;
  anchor: string;
  /** Offsets of the whole match in the doc text, for rewriting. */
  start: number;
  end: number;
}

// [kernel/comms.ts:95](../src/workflows/kernel/comms.ts#L95) `anchor`
const LINK = /\[([^\]\n]+?):(\d+)\]\(\.\.\/([^)#\s]+)#L(\d+)\)\s*`([^`\n]+)`/g;

/** Every link with an anchor in the doc, with the row and section it is in. */
export function parseLinks(doc: string): AnchoredLink[] {
  const lineStarts = [0];
  for (let i = 0; i < doc.length; i++) if (doc[i] === '\n') lineStarts.push(i + 1);
  const lineOf = (offset: number): number => {
    let lo = 0;
    let hi = lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((lineStarts[mid] as number) <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo + 1;
  };
  const lines = doc.split('\n');
  const headings: { level: number; text: string }[] = [];
  const sectionAt: string[] = [];
  for (const l of lines) {
    const h = /^(#{1,6})\s+(.*)$/.exec(l);
    if (h) {
      const level = (h[1] as string).length;
      while (headings.length > 0 && (headings[headings.length - 1] as { level: number }).level >= level) headings.pop();
      headings.push({ level, text: (h[2] as string).trim() });
    }
    sectionAt.push(headings.filter((x) => x.level > 1).map((x) => x.text).join(' › '));
  }
  const out: AnchoredLink[] = [];
  for (const m of doc.matchAll(LINK)) {
    const start = m.index ?? 0;
    const docLine = lineOf(start);
    const text = lines[docLine - 1] ?? '';
    const cells = text.trim().startsWith('|') ? text.split('|').map((c) => c.trim()) : [];
    out.push({
      docLine,
      section: sectionAt[docLine - 1] ?? '',
      row: (cells[1] ?? text.trim()).slice(0, 120),
      label: `${m[1] as string}:${m[2] as string}`,
      file: m[3] as string,
      line: Number(m[4]),
      anchor: m[5] as string,
      start,
      end: start + m[0].length,
    });
  }
  return out;
}

/** 1-based lines of `file` containing `anchor`. */
export function anchorLines(fileText: string, anchor: string): number[] {
  const hits: number[] = [];
  fileText.split('\n').forEach((l, i) => {
    if (l.includes(anchor)) hits.push(i + 1);
  });
  return hits;
}

/**
 * How the link's label names its file: the label's own path when it is the end of the link's path
 * (`kernel/comms.ts` for src/workflows/kernel/comms.ts), else the file's name.
 */
export function labelFileOf(link: Pick<AnchoredLink, 'label' | 'file'>): string {
  const named = link.label.replace(/:\d+$/, '');
  return link.file === named || link.file.endsWith(`/${named}`) ? named : path.posix.basename(link.file);
}

export interface Problem {
  link: AnchoredLink;
  message: string;
}

/** What is wrong with one link, or undefined when its anchor is on the line it names. */
export function checkLink(link: AnchoredLink, readFile: (file: string) => string | undefined): string | undefined {
  const where = `${link.section} › "${link.row}" (doc line ${link.docLine})`;
  const text = readFile(link.file);
  if (text === undefined) return `${where}: ${link.file} does not exist`;
  const labelLine = Number(/:(\d+)$/.exec(link.label)?.[1] ?? NaN);
  const labelFile = link.label.replace(/:\d+$/, '');
  if (labelLine !== link.line || labelFileOf(link) !== labelFile) {
    return `${where}: label ${link.label} does not match the target ${link.file}#L${link.line}`;
  }
  const lineText = text.split('\n')[link.line - 1];
  if (lineText !== undefined && lineText.includes(link.anchor)) return undefined;
  const hits = anchorLines(text, link.anchor);
  const now =
    hits.length === 0
      ? `it is nowhere in ${link.file}`
      : hits.length === 1
        ? `it is now on line ${hits[0]} (run npx tsx scripts/playbook-coverage-lines.ts)`
        : `it is on lines ${hits.join(', ')} (not unique: choose a longer anchor)`;
  return `${where}: \`${link.anchor}\` is not on ${link.file}:${link.line}; ${now}`;
}

export function readRepoFile(file: string): string | undefined {
  const abs = path.join(ROOT, file);
  return existsSync(abs) ? readFileSync(abs, 'utf8') : undefined;
}

/**
 * The doc with each link moved to the one line its anchor is on now. Links whose anchor is missing
 * or occurs more than once stay as they are and are returned in `unresolved`.
 */
export function relink(doc: string, readFile: (file: string) => string | undefined): { doc: string; moved: Problem[]; unresolved: Problem[] } {
  const moved: Problem[] = [];
  const unresolved: Problem[] = [];
  let out = '';
  let last = 0;
  for (const link of parseLinks(doc)) {
    const text = readFile(link.file);
    const where = `${link.section} › "${link.row}" (doc line ${link.docLine})`;
    const hits = text === undefined ? [] : anchorLines(text, link.anchor);
    if (hits.length !== 1) {
      const why = text === undefined ? `${link.file} does not exist` : hits.length === 0 ? `\`${link.anchor}\` is nowhere in ${link.file}` : `\`${link.anchor}\` is on lines ${hits.join(', ')} of ${link.file}`;
      unresolved.push({ link, message: `${where}: ${why}; left as it was` });
      continue;
    }
    const line = hits[0] as number;
    const label = `${labelFileOf(link)}:${line}`;
    if (line === link.line && link.label === label) continue;
    moved.push({ link, message: `${where}: \`${link.anchor}\` ${link.file}:${link.line} → ${line}` });
    out += doc.slice(last, link.start);
    out += `[${label}](../${link.file}#L${line}) \`${link.anchor}\``;
    last = link.end;
  }
  out += doc.slice(last);
  return { doc: out, moved, unresolved };
}

function main(): void {
  const check = process.argv.includes('--check');
  const doc = readFileSync(DOC, 'utf8');
  const { doc: next, moved, unresolved } = relink(doc, readRepoFile);
  for (const p of moved) console.log(`${check ? 'stale' : 'moved'}: ${p.message}`);
  for (const p of unresolved) console.error(`unresolved: ${p.message}`);
  if (!check && next !== doc) writeFileSync(DOC, next);
  const links = parseLinks(doc).length;
  console.log(`${links} links: ${moved.length} ${check ? 'stale' : 'moved'}, ${unresolved.length} unresolved`);
  if (unresolved.length > 0 || (check && moved.length > 0)) process.exit(1);
}

if (require.main === module) main();
