/**
 * Runs once before all tests: checks that the real stack is up (scripts/test.sh starts it) and
 * bundles the workflow code once, so each test file's worker starts in a second.
 */
import { mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { workflowBundleOptions } from '../src/workers/bundle';
import { rotateTestLogs } from './helpers/test-logs';

export const BUNDLE_PATH = path.resolve(__dirname, '../.stack/build/test-workflow-bundle.js');

export default async function globalSetup(): Promise<void> {
  rotateTestLogs();
  const { code } = await bundleWorkflowCode({
    ...workflowBundleOptions(),
    logger: { log: () => undefined, trace: () => undefined, debug: () => undefined, info: () => undefined, warn: console.warn, error: console.error },
  });
  await mkdir(path.dirname(BUNDLE_PATH), { recursive: true });
  // Atomic: a test file of another jest run may be loading the bundle right now.
  const tmp = `${BUNDLE_PATH}.${process.pid}.tmp`;
  await writeFile(tmp, code);
  await rename(tmp, BUNDLE_PATH);
}
