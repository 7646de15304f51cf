/** The README's runbook table is generated from the catalog; it must not drift. */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { renderReadme } from '../scripts/gen-docs';

test('README runbook table matches src/workflows/catalog.ts (npx tsx scripts/gen-docs.ts)', () => {
  const text = readFileSync(path.join(__dirname, '../README.md'), 'utf8');
  expect(renderReadme(text)).toBe(text);
});
