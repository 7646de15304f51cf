/**
 * Secrets never reach workflow histories, logs or notifications. Runs last (test/sequencer.js): it
 * scans every history the suite produced (every workflow started in the last day), the engine's
 * logs and the notifications file for each secret the stack holds.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { STACK_DIR } from '../helpers/engine';

jest.setTimeout(300_000);

/** Every secret file under .stack/secrets, key stores (rotated keys) included. */
function secrets(): { name: string; value: string }[] {
  const root = path.join(STACK_DIR, 'secrets');
  return readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => {
      const file = path.join(e.parentPath ?? e.path, e.name);
      return { name: path.relative(root, file), value: readFileSync(file, 'utf8').trim() };
    })
    .filter((s) => s.value.length >= 8);
}

/** History as text, with every payload's bytes decoded so a secret inside JSON payloads is visible. */
function text(value: unknown): string {
  const parts: string[] = [];
  const walk = (v: unknown): void => {
    if (v instanceof Uint8Array) parts.push(Buffer.from(v).toString('utf8'));
    else if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') Object.values(v).forEach(walk);
    else if (typeof v === 'string') parts.push(v);
  };
  walk(value);
  return parts.join('\n');
}

test('no secret appears in any workflow history, engine log or notification', async () => {
  const list = secrets();
  expect(list.map((s) => s.name)).toEqual(expect.arrayContaining(['alfred-admin-key', 'postgres-password', 'alfred-db-password']));
  const connection = await Connection.connect({ address: '127.0.0.1:7233' });
  const client = new Client({ connection });
  const since = new Date(Date.now() - 24 * 3600_000).toISOString();
  let scanned = 0;
  const leaks: string[] = [];
  try {
    for await (const wf of client.workflow.list({ query: `StartTime > '${since}'` })) {
      const history = await client.workflow.getHandle(wf.workflowId, wf.runId).fetchHistory();
      const body = text(history);
      for (const s of list) if (body.includes(s.value)) leaks.push(`${s.name} in history of ${wf.workflowId}`);
      scanned += 1;
      if (scanned >= 3000) break;
    }
  } finally {
    await connection.close();
  }
  const files = [
    ...['worker.log', 'receiver.log', 'temporal.log'].map((f) => path.join(STACK_DIR, 'logs', f)),
    path.join(STACK_DIR, 'notifications.jsonl'),
    path.join(STACK_DIR, 'test-notifications.jsonl'),
  ].filter((f) => existsSync(f));
  for (const f of files) {
    const body = readFileSync(f, 'utf8');
    for (const s of list) if (body.includes(s.value)) leaks.push(`${s.name} in ${path.basename(f)}`);
  }
  console.log(`secrets scan: ${list.length} secrets, ${scanned} histories, ${files.length} log/notification files, ${leaks.length} leaks`);
  expect(scanned).toBeGreaterThan(10);
  expect(leaks).toEqual([]);
});
