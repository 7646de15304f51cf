/**
 * Regenerates the runbook table in README.md from src/workflows/catalog.ts, between the markers
 * <!-- runbooks:start --> and <!-- runbooks:end -->. `--check` exits 1 if the README is stale.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { RUNBOOKS } from '../src/workflows/catalog';

const README = path.resolve(__dirname, '../README.md');
const START = '<!-- runbooks:start -->';
const END = '<!-- runbooks:end -->';

export function runbookTable(): string {
  // Playbook order: INC-01..INC-15, then the rollback procedure, then the support runbooks.
  const rank = (scenario: string): string => (scenario.startsWith('INC-') ? `0${scenario}` : scenario === 'ROLLBACK' ? '1' : `2${scenario}`);
  const entries = Object.entries(RUNBOOKS).sort(([, a], [, b]) => rank(a.scenario).localeCompare(rank(b.scenario)));
  const rows = entries.map(([name, m]) => {
    const steps = m.steps.map((s) => `${s.title} (${s.risk})`).join('; ');
    return `| \`${name}\` | ${m.scenario} | SEV-${m.severity} | ${m.alerts.map((a) => `\`${a}\``).join(', ')} | ${m.diagnostics.join('; ')} | ${steps} | ${m.verify} |`;
  });
  return [
    '| runbook | scenario | sev | alerts that start it | diagnostics | steps (risk) | verify |',
    '|---|---|---|---|---|---|---|',
    ...rows,
  ].join('\n');
}

export function renderReadme(text: string): string {
  const a = text.indexOf(START);
  const b = text.indexOf(END);
  if (a < 0 || b < a) throw new Error(`README.md lacks the ${START} … ${END} markers`);
  return `${text.slice(0, a + START.length)}\n${runbookTable()}\n${text.slice(b)}`;
}

function main(): void {
  const text = readFileSync(README, 'utf8');
  const next = renderReadme(text);
  if (process.argv.includes('--check')) {
    if (next !== text) {
      console.error('README.md runbook table is stale: run `npx tsx scripts/gen-docs.ts`');
      process.exit(1);
    }
    return;
  }
  writeFileSync(README, next);
  console.log('README.md runbook table regenerated');
}

if (require.main === module) main();
