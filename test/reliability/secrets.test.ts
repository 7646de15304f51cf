/**
 * Secrets never reach workflow histories, logs or notifications. Runs last (test/sequencer.js): it
 * scans every history the suite produced (every workflow started in the last day), the engine's
 * logs and the notifications file for each secret the stack holds. Histories are read decrypted
 * (with the tests' keys and the stack's own, .stack/secrets/codec.yaml), so what the workflows put
 * in them is what is scanned, not ciphertext.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { parse as parseYaml } from 'yaml';
import { EncryptionCodec, loadSecrets, type KeyRing } from '../../src/lib/codec';
import { decodeHistoryPayloads } from '../../src/lib/history';
import { fixtureSecrets, testDataConverter } from '../helpers/codec';
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
    .filter((s) => s.value.length >= 8)
    .flatMap((s) => [s, ...codecKeys(s)]);
}

/** Each key of the codec's secrets file on its own (the file is scanned whole too). */
function codecKeys(file: { name: string; value: string }): { name: string; value: string }[] {
  if (!/(^|\/)codec\.ya?ml$/.test(file.name)) return [];
  const doc = parseYaml(file.value) as Record<string, { keys?: Record<string, string> } | undefined>;
  return (['encryption', 'seal'] as const).flatMap((ring) =>
    Object.entries(doc[ring]?.keys ?? {}).map(([id, value]) => ({ name: `${file.name} ${ring} key ${id}`, value })),
  );
}

/** The tests' keys and the stack's, if it has any: every history of the suite and of the stack decrypts. */
function allEncryptionKeys(): KeyRing {
  const fixture = fixtureSecrets().encryption;
  const keys = new Map(fixture.keys);
  const stackFile = path.join(STACK_DIR, 'secrets', 'codec.yaml');
  if (existsSync(stackFile)) for (const [id, key] of loadSecrets(stackFile).encryption.keys) if (!keys.has(id)) keys.set(id, key);
  return { active: fixture.active, keys };
}

/** Decrypts what it can, one payload at a time; counts (and leaves as they are) payloads under unknown keys. */
class TolerantDecryption implements PayloadCodec {
  undecodable = 0;
  private readonly codec: EncryptionCodec;
  constructor(ring: KeyRing) {
    this.codec = new EncryptionCodec(ring);
  }
  async encode(payloads: Payload[]): Promise<Payload[]> {
    return payloads;
  }
  async decode(payloads: Payload[]): Promise<Payload[]> {
    return Promise.all(
      payloads.map((p) =>
        this.codec.decode([p]).then(
          ([d]) => d ?? p,
          () => {
            this.undecodable += 1;
            return p;
          },
        ),
      ),
    );
  }
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
  const client = new Client({ connection, dataConverter: testDataConverter() });
  const decryption = new TolerantDecryption(allEncryptionKeys());
  const since = new Date(Date.now() - 24 * 3600_000).toISOString();
  let scanned = 0;
  const leaks: string[] = [];
  try {
    for await (const wf of client.workflow.list({ query: `StartTime > '${since}'` })) {
      const history = await client.workflow.getHandle(wf.workflowId, wf.runId).fetchHistory();
      const body = text(await decodeHistoryPayloads(history, [decryption]));
      for (const s of list) if (body.includes(s.value)) leaks.push(`${s.name} in history of ${wf.workflowId}`);
      scanned += 1;
      if (scanned >= 3000) break;
    }
  } finally {
    await connection.close();
  }
  const files = [
    ...['worker.log', 'receiver.log', 'temporal.log', 'codec-server.log'].map((f) => path.join(STACK_DIR, 'logs', f)),
    path.join(STACK_DIR, 'notifications.jsonl'),
    path.join(STACK_DIR, 'test-notifications.jsonl'),
  ].filter((f) => existsSync(f));
  for (const f of files) {
    const body = readFileSync(f, 'utf8');
    for (const s of list) if (body.includes(s.value)) leaks.push(`${s.name} in ${path.basename(f)}`);
  }
  console.log(
    `secrets scan: ${list.length} secrets, ${scanned} histories (${decryption.undecodable} payloads under unknown keys), ` +
      `${files.length} log/notification files, ${leaks.length} leaks`,
  );
  expect(scanned).toBeGreaterThan(10);
  expect(leaks).toEqual([]);
});
