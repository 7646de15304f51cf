/**
 * Secrets never reach workflow histories, logs or notifications. Runs last (test/sequencer.js): it
 * scans every history the suite produced (every workflow started in the last day), the logs the
 * engine's processes really wrote and the notifications files for each secret the stack holds and
 * each credential the tests use. Histories are read decrypted (with the tests' keys and the stack's
 * own, .stack/secrets/codec.yaml), so what the workflows put in them is what is scanned, not
 * ciphertext.
 *
 * The logs: the test workers, receivers and codec servers write .stack/logs/test-{worker,receiver,
 * codec-server}.log (test/helpers/test-logs.ts); the stack's own processes write .stack/logs/*.log
 * (scripts/stack.sh, scripts/up.sh). Each test log must hold a minimum number of lines, and this
 * file adds lines of its own to each (a marker it then finds), before "no secret" means anything.
 * Run alone, it scans what earlier runs of the suite left there.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { parse as parseYaml } from 'yaml';
import { EncryptionCodec, loadSecrets, type KeyRing } from '../../src/lib/codec';
import { decodeHistoryPayloads } from '../../src/lib/history';
import { FIXTURE_OPERATORS, fixtureSecrets, startTestCodecServer, testDataConverter, tokenOf } from '../helpers/codec';
import { STACK_DIR } from '../helpers/engine';
import { LOG_DIR, TEST_LOGS, testLogFile, testLogger } from '../helpers/test-logs';
import { GRAFANA_SECRET, PD_SECRETS, startTestReceiver, TOKENS } from '../receiver/helpers';

/** Lines each test log must hold before its scan counts: the suite writes thousands. */
const MIN_LINES = 20;

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

/** The credentials the tests themselves use (fixture tokens, the test receivers' tokens and signing secrets). */
function testCredentials(): { name: string; value: string }[] {
  return [
    ...FIXTURE_OPERATORS.map((name) => ({ name: `fixture token of ${name}`, value: tokenOf(name) })),
    ...Object.entries(TOKENS).map(([source, value]) => ({ name: `test ${source} bearer token`, value })),
    ...PD_SECRETS.map((value, i) => ({ name: `test PagerDuty signing secret ${i}`, value })),
    { name: 'test Grafana HMAC secret', value: GRAFANA_SECRET },
  ];
}

function lineCount(file: string): number {
  return readFileSync(file, 'utf8').split('\n').filter(Boolean).length;
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

test('the test logs are live: a receiver, a codec server and the worker logger append to them', async () => {
  const marker = `secrets-scan-${randomUUID()}`;
  const sizes = Object.fromEntries(TEST_LOGS.map((n) => [n, existsSync(testLogFile(n)) ? statSync(testLogFile(n)).size : 0]));
  // A receiver answering an alert no route knows (logged with its name), with a bearer token.
  const t = await startTestReceiver();
  try {
    expect((await t.post('generic', { alertname: marker, status: 'firing', target: t.target })).status).toBe(202);
  } finally {
    await t.stop();
  }
  // A codec server answering a path it does not serve (logged with the path), and refusing a login
  // that carries a password.
  const codec = await startTestCodecServer();
  try {
    expect((await fetch(`${codec.url}/${marker}`)).status).toBe(404);
    const res = await fetch(`${codec.url}/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: marker, password: `${marker}-password` }),
    });
    expect(res.status).toBeGreaterThanOrEqual(400);
  } finally {
    await codec.close();
  }
  // The worker's logger, as the test engines build it, with a secret-bearing field it must redact.
  testLogger('worker').info({ marker, adminKey: `${marker}-admin-key` }, 'secrets scan marker');

  for (const n of TEST_LOGS) {
    const added = readFileSync(testLogFile(n)).subarray(sizes[n] ?? 0).toString('utf8');
    expect({ log: n, marker: added.includes(marker) }).toEqual({ log: n, marker: true });
  }
  expect(readFileSync(testLogFile('codec-server'), 'utf8')).not.toContain(`${marker}-password`);
  expect(readFileSync(testLogFile('worker'), 'utf8')).not.toContain(`${marker}-admin-key`);
});

test('no secret appears in any workflow history, engine log or notification', async () => {
  const list = [...secrets(), ...testCredentials()];
  expect(list.map((s) => s.name)).toEqual(expect.arrayContaining(['alfred-admin-key', 'postgres-password', 'alfred-db-password']));
  const connection = await Connection.connect({ address: '127.0.0.1:7233' });
  const client = new Client({ connection, dataConverter: testDataConverter() });
  const decryption = new TolerantDecryption(allEncryptionKeys());
  const since = new Date(Date.now() - 24 * 3600_000).toISOString();
  let scanned = 0;
  const leaks: string[] = [];
  try {
    // Listed raw: memos encrypted under keys of other rings (the stack's own processes, benchmarks)
    // are not decoded to list them; their histories are read with every key there is.
    let nextPageToken: Uint8Array | undefined;
    scan: do {
      const page = await connection.workflowService.listWorkflowExecutions({ namespace: 'default', query: `StartTime > '${since}'`, pageSize: 500, nextPageToken });
      for (const e of page.executions ?? []) {
        const workflowId = e.execution?.workflowId ?? '';
        const history = await client.workflow.getHandle(workflowId, e.execution?.runId ?? undefined).fetchHistory();
        const body = text(await decodeHistoryPayloads(history, [decryption]));
        for (const s of list) if (body.includes(s.value)) leaks.push(`${s.name} in history of ${workflowId}`);
        scanned += 1;
        if (scanned >= 3000) break scan;
      }
      nextPageToken = page.nextPageToken && page.nextPageToken.length > 0 ? page.nextPageToken : undefined;
    } while (nextPageToken);
  } finally {
    await connection.close();
  }
  // Every log the engine's processes wrote: the tests' (required, with a minimum of lines) and the
  // stack's (scripts/stack.sh, scripts/up.sh: whichever of them ran here).
  const testLogs = TEST_LOGS.map((n) => testLogFile(n));
  const counts = Object.fromEntries(testLogs.map((f) => [path.basename(f), existsSync(f) ? lineCount(f) : 0]));
  expect(Object.entries(counts).filter(([, lines]) => lines < MIN_LINES)).toEqual([]);
  const stackLogs = readdirSync(LOG_DIR)
    .filter((f) => f.endsWith('.log') && !f.startsWith('test-'))
    .map((f) => path.join(LOG_DIR, f));
  const notifications = [path.join(STACK_DIR, 'notifications.jsonl'), path.join(STACK_DIR, 'test-notifications.jsonl')].filter((f) => existsSync(f));
  // The test engines notify into test-notifications.jsonl: real incidents of the suite wrote it.
  expect(notifications.map((f) => path.basename(f))).toContain('test-notifications.jsonl');
  const files = [...testLogs, ...stackLogs, ...notifications];
  let lines = 0;
  for (const f of files) {
    const body = readFileSync(f, 'utf8');
    lines += body.split('\n').length - 1;
    for (const s of list) if (body.includes(s.value)) leaks.push(`${s.name} in ${path.basename(f)}`);
  }
  console.log(
    `secrets scan: ${list.length} secrets, ${scanned} histories (${decryption.undecodable} payloads under unknown keys), ` +
      `${files.length} log/notification files (${lines} lines; test logs ${JSON.stringify(counts)}; stack logs ${stackLogs.map((f) => path.basename(f)).join(', ')}), ${leaks.length} leaks`,
  );
  expect(scanned).toBeGreaterThan(10);
  expect(leaks).toEqual([]);
});
