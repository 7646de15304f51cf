/**
 * Determinism: every recorded history in test/histories/ (at least one per workflow type) replays
 * against the current workflow code, and a changed workflow is caught. Replay decodes as the tests'
 * worker does (the engine's codec with the TEST-ONLY keys, test/helpers/codec.ts): histories recorded
 * before payloads were encrypted pass through it unchanged.
 * Record new ones with: RECORD_HISTORIES=1 scripts/test.sh test/workflows
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { DeterminismViolationError } from '@temporalio/workflow';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { bundleWorkflowCode, Worker } from '@temporalio/worker';
import * as workflows from '../src/workflows';
import { fixtureEngineDataConverter } from './helpers/codec';

jest.setTimeout(120_000);

const DIR = path.join(__dirname, 'histories');
const BUNDLE = path.join(__dirname, '../.stack/build/test-workflow-bundle.js');
const IDS = JSON.parse(readFileSync(path.join(DIR, 'workflow-ids.json'), 'utf8')) as Record<string, string>;
const files = readdirSync(DIR)
  .filter((f) => f.endsWith('.json') && f !== 'workflow-ids.json')
  .sort();

function load(file: string) {
  return historyFromJSON(JSON.parse(readFileSync(path.join(DIR, file), 'utf8')));
}

test('there is a recorded history for every workflow type', () => {
  const types = new Set(files.map((f) => f.split('.')[0]));
  expect([...types].sort()).toEqual(Object.keys(workflows).sort());
});

/** Every history through one replay worker (one per history would start 249 workers): the result of each, in order. */
let results: { workflowId: string; error?: Error }[] = [];

beforeAll(async () => {
  const histories = files.map((file) => ({ workflowId: IDS[file] ?? file, history: load(file) }));
  results = [];
  for await (const r of Worker.runReplayHistories({ workflowBundle: { codePath: BUNDLE }, replayName: 'recorded-histories', dataConverter: fixtureEngineDataConverter() }, histories)) {
    results.push({ workflowId: r.workflowId, ...(r.error ? { error: r.error } : {}) });
  }
});

test.each(files.map((file, i) => [file, i] as const))('%s replays without non-determinism', (file, i) => {
  expect(results).toHaveLength(files.length);
  expect(results[i]?.workflowId).toBe(IDS[file] ?? file);
  expect(results[i]?.error).toBeUndefined();
});

test('a changed workflow is caught by replay', async () => {
  const file = files.find((f) => f.startsWith('cacheFailure.resolved'));
  expect(file).toBeDefined();
  const changed = await bundleWorkflowCode({
    workflowsPath: require.resolve('./fixtures/changed-workflows'),
    logger: { log: () => undefined, trace: () => undefined, debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined },
  });
  await expect(
    Worker.runReplayHistory({ workflowBundle: changed, dataConverter: fixtureEngineDataConverter() }, load(file as string), IDS[file as string]),
  ).rejects.toThrow(
    DeterminismViolationError,
  );
});
