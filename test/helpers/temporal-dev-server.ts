/**
 * A Temporal dev server of the test's own (the stack's binary, `temporal server start-dev`), for
 * tests that need server settings the shared one does not have (`--dynamic-config-value`), or that
 * leave state behind that must not pile up in the shared server's database (worker deployments and
 * their versions). In memory: everything it held is gone when it stops. The engine's search
 * attributes are registered at start, as scripts/stack.sh does.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { SearchAttributeType } from '@temporalio/common';
import { SA_PHASE, SA_RUNBOOK, SA_SCENARIO, SA_SEVERITY, SA_TARGET } from '../../src/workflows/contracts';
import { freePort } from './drill';
import { temporalBin, waitUntil } from './engine';
import { LOG_DIR } from './test-logs';

export interface DevServer {
  /** host:port of its frontend. */
  address: string;
  stop(): Promise<void>;
}

const SA_TYPE: Partial<Record<SearchAttributeType, string>> = {
  [SearchAttributeType.KEYWORD]: 'Keyword',
  [SearchAttributeType.INT]: 'Int',
};

/** Starts a dev server on free ports with `dynamicConfig` (values as JSON); resolves once it answers. */
export async function startDevServer(opts: { dynamicConfig?: Record<string, unknown> } = {}): Promise<DevServer> {
  const port = await freePort();
  const address = `127.0.0.1:${port}`;
  const args = [
    'server',
    'start-dev',
    '--ip',
    '127.0.0.1',
    '--port',
    String(port),
    '--headless',
    '--log-level',
    'warn',
  ];
  args.push('--http-port', String(await freePort()), '--metrics-port', String(await freePort()));
  for (const sa of [SA_SCENARIO, SA_SEVERITY, SA_TARGET, SA_PHASE, SA_RUNBOOK]) {
    args.push('--search-attribute', `${sa.name}=${SA_TYPE[sa.type] ?? 'Keyword'}`);
  }
  for (const [key, value] of Object.entries(opts.dynamicConfig ?? {}))
    args.push('--dynamic-config-value', `${key}=${JSON.stringify(value)}`);
  mkdirSync(LOG_DIR, { recursive: true });
  const out = openSync(path.join(LOG_DIR, 'test-temporal.log'), 'a');
  const child: ChildProcess = spawn(temporalBin(), args, { stdio: ['ignore', out, out], detached: true });
  closeSync(out);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const answers = waitUntil(
    `the test's Temporal server at ${address}`,
    async () => {
      const c = await Connection.connect({ address, connectTimeout: 1000 });
      try {
        await c.workflowService.getSystemInfo({});
        return true;
      } finally {
        await c.close();
      }
    },
    30_000,
  );
  const died = exited.then((code) => {
    throw new Error(
      `the test's Temporal server exited (${String(code)}) before it answered: see ${LOG_DIR}/test-temporal.log`,
    );
  });
  // The race below reports whichever comes first; the other must not surface later as unhandled.
  died.catch(() => undefined);
  answers.catch(() => undefined);
  try {
    await Promise.race([answers, died]);
  } catch (err) {
    if (child.exitCode === null && child.pid) process.kill(-child.pid, 'SIGKILL');
    throw err;
  }
  return {
    address,
    async stop() {
      if (!child.pid || child.exitCode !== null) return;
      process.kill(-child.pid, 'SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
      if (child.exitCode === null) process.kill(-child.pid, 'SIGKILL');
    },
  };
}
