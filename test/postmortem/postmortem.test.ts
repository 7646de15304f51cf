/**
 * Post-mortem golden test: rendered from a real drill's recorded history (test/histories), with
 * times made relative so the golden file does not depend on when the history was recorded.
 *
 * The golden file is committed and only ever read here: a missing one fails. After an intended
 * change to the post-mortem, rewrite it with the separate command
 *   UPDATE_GOLDEN=1 npx jest test/postmortem
 * review the diff and commit it. That run compares nothing (the comparison is skipped, and says so);
 * with UPDATE_GOLDEN set under CI (CI=true) it fails instead of writing.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { normaliseHistory, renderPostmortem, timelineFromHistory } from '../../src/postmortem';

const HISTORY = path.join(__dirname, '../histories/cacheFailure.resolved.json');
const GOLDEN = path.join(__dirname, '__golden__/cacheFailure.resolved.md');

function normaliseTimes(md: string, start: Date): string {
  return md
    .replace(/\b(\d{2}):(\d{2}):(\d{2})\b/g, (_m, h: string, mi: string, s: string) => {
      const t = new Date(start);
      t.setUTCHours(Number(h), Number(mi), Number(s), 0);
      return `T+${Math.max(0, Math.round((t.getTime() - Math.floor(start.getTime() / 1000) * 1000) / 1000))}s`;
    })
    .replace(/\d{4}-\d{2}-\d{2}/g, 'YYYY-MM-DD');
}

function renderedPostmortem(): string {
  const events = normaliseHistory(JSON.parse(readFileSync(HISTORY, 'utf8')) as { events: unknown[] });
  return normaliseTimes(renderPostmortem(events), events[0]!.time);
}

const updating = Boolean(process.env.UPDATE_GOLDEN);

(updating ? test : test.skip)('UPDATE_GOLDEN rewrites the golden file (never under CI)', () => {
  expect({ UPDATE_GOLDEN: 'set', CI: process.env.CI ?? '' }).toEqual({ UPDATE_GOLDEN: 'set', CI: '' });
  writeFileSync(GOLDEN, renderedPostmortem());
});

(updating ? test.skip : test)('the post-mortem of a resolved cacheFailure drill matches the committed golden file', () => {
  expect({ golden: path.relative(__dirname, GOLDEN), exists: existsSync(GOLDEN) }).toEqual({ golden: path.relative(__dirname, GOLDEN), exists: true });
  expect(renderedPostmortem()).toBe(readFileSync(GOLDEN, 'utf8'));
});

test('the timeline comes from the history events, in order, with the remediation and the close', () => {
  const events = normaliseHistory(JSON.parse(readFileSync(HISTORY, 'utf8')) as { events: unknown[] });
  const rows = timelineFromHistory(events).map((r) => r.event);
  expect(rows[0]).toMatch(/^Incident opened by /);
  const i = (re: RegExp) => rows.findIndex((r) => re.test(r));
  expect(i(/Phase TRIAGE/)).toBeLessThan(i(/Phase MITIGATE/));
  expect(i(/Action restartContainer completed/)).toBeGreaterThan(i(/Phase MITIGATE/));
  expect(i(/Phase RESOLVE/)).toBeGreaterThan(i(/Action restartContainer completed/));
  expect(rows.at(-1)).toBe('Incident closed: resolved');
  const times = timelineFromHistory(events).map((r) => r.time.getTime());
  expect([...times].sort((a, b) => a - b)).toEqual(times);
});
