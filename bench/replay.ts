/**
 * Replay: every recorded history in test/histories/ replayed against the current workflow code, as
 * CI does (decoding with the tests' fixture keys, test/helpers/codec.ts), timed. Bundling the workflow
 * code is timed apart (CI does it once for all tests).
 *
 *   npx tsx bench/replay.ts [--runs 5]
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { bundleWorkflowCode, Worker } from '@temporalio/worker';
import { workflowBundleOptions } from '../src/workers/bundle';
import { fixtureEngineDataConverter } from '../test/helpers/codec';
import { machine, median, writeSection } from './report';

const DIR = path.resolve(__dirname, '../test/histories');

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help) {
    console.log('usage: npx tsx bench/replay.ts [--runs 5]');
    return;
  }
  const runs = Number(values.runs);
  const ids = JSON.parse(readFileSync(path.join(DIR, 'workflow-ids.json'), 'utf8')) as Record<string, string>;
  const files = readdirSync(DIR).filter((f) => f.endsWith('.json') && f !== 'workflow-ids.json');
  const histories = files.map((f) => ({ workflowId: ids[f] ?? f, history: historyFromJSON(JSON.parse(readFileSync(path.join(DIR, f), 'utf8'))) }));
  const events = histories.reduce((n, h) => n + (h.history.events?.length ?? 0), 0);
  const silent = { log: () => undefined, trace: () => undefined, debug: () => undefined, info: () => undefined, warn: () => undefined, error: console.error };

  const bundleTimes: number[] = [];
  const replayTimes: number[] = [];
  for (let r = 0; r < runs; r++) {
    const b0 = performance.now();
    const bundle = await bundleWorkflowCode({ ...workflowBundleOptions(), logger: silent });
    bundleTimes.push(performance.now() - b0);
    const t0 = performance.now();
    let failed = 0;
    for await (const result of Worker.runReplayHistories({ workflowBundle: bundle, dataConverter: fixtureEngineDataConverter() }, histories)) {
      if (result.error) {
        failed += 1;
        console.error(`${result.workflowId}: ${result.error.message}`);
      }
    }
    replayTimes.push(performance.now() - t0);
    if (failed) throw new Error(`${failed} histories failed to replay`);
    console.error(`run ${r + 1}/${runs}: bundle ${(bundleTimes[r] as number).toFixed(0)} ms, replay ${(replayTimes[r] as number).toFixed(0)} ms`);
  }
  const table = [
    `${files.length} recorded histories (${events} events), median of ${runs} runs.`,
    '',
    '| replay all (s) | per history (ms) | bundle the workflow code (s) |',
    '|---|---|---|',
    `| ${(median(replayTimes) / 1000).toFixed(2)} | ${(median(replayTimes) / files.length).toFixed(0)} | ${(median(bundleTimes) / 1000).toFixed(2)} |`,
    '',
    'Target: all recorded histories replay in < 10 s.',
  ].join('\n');
  writeSection('Replay of recorded histories', `${table}\n\n${await machine()}`, 'npx tsx bench/replay.ts');
  console.log(table);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
