/**
 * docs/playbook-coverage.md maps every playbook step to the line of code that does it, each link
 * followed by an anchor that must be on that line. Code moves; when it does, this test says where the
 * anchor is now, and `npx tsx scripts/playbook-coverage-lines.ts` rewrites the line numbers.
 */
import { readFileSync } from 'node:fs';
import { RUNBOOKS } from '../../src/workflows/catalog';
import { DOC, checkLink, parseLinks, readRepoFile, relink } from '../../scripts/playbook-coverage-lines';

const doc = readFileSync(DOC, 'utf8');
const links = parseLinks(doc);
const headings = doc.split('\n').filter((l) => /^#{1,6}\s/.test(l));

test('the doc links code with anchors', () => {
  expect(links.length).toBeGreaterThan(100);
});

test('every anchor is on the line its link names', () => {
  const problems = links.map((l) => checkLink(l, readRepoFile)).filter((p): p is string => p !== undefined);
  if (problems.length > 0) {
    throw new Error(`${problems.length} of ${links.length} links in docs/playbook-coverage.md are off:\n${problems.join('\n')}`);
  }
});

test('every anchor occurs once in its file, so the line script can follow it', () => {
  const { unresolved } = relink(doc, readRepoFile);
  expect(unresolved.map((p) => p.message)).toEqual([]);
});

test('every scenario of the catalog has a section with a table', () => {
  const scenarios = [...Array.from({ length: 15 }, (_, i) => `INC-${String(i + 1).padStart(2, '0')}`), 'ROLLBACK'];
  const expected = [
    ...scenarios.map((s) => ({ what: s, match: (h: string) => new RegExp(`\\b${s}\\b`).test(h) })),
    ...Object.entries(RUNBOOKS).map(([name, m]) => ({
      what: `${m.scenario} (${name})`,
      match: (h: string) => h.includes(m.scenario) && h.includes(`\`${name}\``),
    })),
  ];
  const missing = expected.filter((e) => !headings.some(e.match)).map((e) => e.what);
  expect(missing).toEqual([]);

  // Each of those sections holds a table of steps before the next heading.
  const lines = doc.split('\n');
  const empty = Object.entries(RUNBOOKS)
    .filter(([name, m]) => {
      const at = lines.findIndex((l) => /^#{1,6}\s/.test(l) && l.includes(m.scenario) && l.includes(`\`${name}\``));
      if (at < 0) return false;
      const next = lines.findIndex((l, i) => i > at && /^#{1,6}\s/.test(l));
      return !lines.slice(at + 1, next < 0 ? undefined : next).some((l) => l.startsWith('| step (seed)'));
    })
    .map(([name]) => name);
  expect(empty).toEqual([]);
});

test('the doc ends with the steps only a person can do and the gaps', () => {
  expect(headings).toContain('## Steps only a person can do');
  expect(headings).toContain('## Gaps');
});

describe('the line script', () => {
  const file = (lines: string[]) => (f: string) => (f === 'src/x.ts' ? lines.join('\n') : undefined);
  const row = (line: number, anchor: string) => `| "step" | code | [x.ts:${line}](../src/x.ts#L${line}) \`${anchor}\` |`;

  test('moves a link to the one line its anchor is on now', () => {
    const doc = `## S\n${row(1, 'acts.b(')}\n`;
    const r = relink(doc, file(['a', 'b', 'acts.b(t)']));
    expect(r.doc).toBe(`## S\n${row(3, 'acts.b(')}\n`);
    expect(r.moved).toHaveLength(1);
    expect(r.unresolved).toHaveLength(0);
  });

  test('leaves a row whose anchor is missing or not unique, and reports it', () => {
    const doc = `## S\n${row(1, 'dup')}\n${row(1, 'gone')}\n`;
    const r = relink(doc, file(['dup', 'dup']));
    expect(r.doc).toBe(doc);
    expect(r.unresolved.map((p) => p.message)).toEqual([
      'S › ""step"" (doc line 2): `dup` is on lines 1, 2 of src/x.ts; left as it was',
      'S › ""step"" (doc line 3): `gone` is nowhere in src/x.ts; left as it was',
    ]);
  });

  test('a label may name the file by the end of its path, and keeps doing so when the link moves', () => {
    const nested = (f: string) => (f === 'src/k/x.ts' ? ['a', 'acts.b(t)'].join('\n') : undefined);
    const link = (line: number) => `| "step" | code | [k/x.ts:${line}](../src/k/x.ts#L${line}) \`acts.b(\` |`;
    const doc = `## S\n${link(1)}\n`;
    expect(relink(doc, nested).doc).toBe(`## S\n${link(2)}\n`);
    expect(parseLinks(`## S\n${link(2)}\n`).map((l) => checkLink(l, nested))).toEqual([undefined]);
    // A label that is not the end of the path does not match it.
    const [wrong] = parseLinks('## S\n| "step" | code | [j/x.ts:2](../src/k/x.ts#L2) `acts.b(` |\n');
    expect(checkLink(wrong as never, nested)).toBe('S › ""step"" (doc line 2): label j/x.ts:2 does not match the target src/k/x.ts#L2');
  });

  test('names the row and where the anchor is now when a link is off', () => {
    const [link] = parseLinks(`## S\n${row(1, 'acts.b(')}\n`);
    expect(checkLink(link as never, file(['a', 'acts.b(t)']))).toBe(
      'S › ""step"" (doc line 2): `acts.b(` is not on src/x.ts:1; it is now on line 2 (run npx tsx scripts/playbook-coverage-lines.ts)',
    );
  });
});
