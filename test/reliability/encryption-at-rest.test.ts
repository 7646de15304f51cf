/**
 * Payloads are encrypted at rest: an incident run by the real worker on the real Temporal server,
 * its history read back by a client without the codec (as anyone reading Temporal's database or
 * its API would). Every payload is `binary/encrypted`, and what the incident carries (its request,
 * the diagnosis, the record) appears nowhere in the history's bytes; with the codec it reads back.
 * Search attributes are visibility data, not payloads: Temporal indexes them in the clear. So are
 * the SDK's own patch markers (`patched()`: the patch's id in code), which its core writes uncoded.
 */
import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import type { IncidentInput, IncidentRecord } from '../../src/workflows/contracts';
import { decodedHistory } from '../helpers/codec';
import { startEngine, type Engine } from '../helpers/engine';

jest.setTimeout(180_000);

type History = temporal.api.history.v1.IHistory;
type Payload = temporal.api.common.v1.IPayload;

let engine: Engine;
let plain: Client;

beforeAll(async () => {
  engine = await startEngine();
  plain = new Client({ connection: await Connection.connect({ address: engine.config.temporal.address }) });
});

afterAll(async () => {
  await plain?.connection.close();
  await engine?.stop();
});

/** Every payload of the history with where it sits (search attributes apart). */
function payloadsOf(history: History): { where: string; payload: Payload }[] {
  const out: { where: string; payload: Payload }[] = [];
  const walk = (v: unknown, where: string): void => {
    if (!v || typeof v !== 'object' || v instanceof Uint8Array) return;
    const o = v as Record<string, unknown>;
    if (o.data instanceof Uint8Array && o.metadata && typeof o.metadata === 'object') {
      out.push({ where, payload: o as Payload });
      return;
    }
    for (const [k, child] of Object.entries(o)) walk(child, `${where}.${k}`);
  };
  (history.events ?? []).forEach((e, i) => walk(e, `events[${i}]`));
  return out;
}

const encodingOf = (p: Payload): string => Buffer.from(p.metadata?.encoding ?? new Uint8Array()).toString('utf8');

/** The history as Temporal stores it: the protobuf bytes, here without the search attributes. */
function storedBytes(history: History, opts: { withSearchAttributes: boolean }): Buffer {
  const copy = temporal.api.history.v1.History.decode(temporal.api.history.v1.History.encode(history).finish());
  if (!opts.withSearchAttributes)
    for (const e of copy.events) {
      if (e.workflowExecutionStartedEventAttributes) e.workflowExecutionStartedEventAttributes.searchAttributes = null;
      if (e.upsertWorkflowSearchAttributesEventAttributes) e.upsertWorkflowSearchAttributesEventAttributes.searchAttributes = null;
    }
  return Buffer.from(temporal.api.history.v1.History.encode(copy).finish());
}

test('an incident history holds only ciphertext; with the codec it reads back', async () => {
  const marker = `at-rest check ${randomUUID()}`;
  const h = await engine.start({ runbook: 'cacheFailure', target: 'alfred', dryRun: true, summary: marker });
  const rec = await engine.result(h);
  expect(rec.diagnosis).toBeTruthy();

  const raw = await plain.workflow.getHandle(h.workflowId).fetchHistory();
  const payloads = payloadsOf(raw);
  const outside = payloads.filter((p) => !/searchAttributes|markerRecordedEventAttributes\.details\.patch-data/.test(p.where));
  // Patch markers hold the patch's id, nothing of the incident.
  for (const p of payloads.filter((x) => /patch-data/.test(x.where)))
    expect(Object.keys(JSON.parse(Buffer.from(p.payload.data ?? []).toString('utf8')) as object).sort()).toEqual(['deprecated', 'id']);
  // Input, activity arguments and results, queries' and the workflow's result: many payloads, all ciphertext.
  expect(outside.length).toBeGreaterThan(10);
  const clear = outside.filter((p) => encodingOf(p.payload) !== 'binary/encrypted').map((p) => `${p.where}: ${encodingOf(p.payload)}`);
  expect(clear).toEqual([]);
  for (const { payload } of outside) expect(Buffer.from(payload.metadata?.['encryption-key-id'] ?? []).toString()).toBe('test-k1');

  // Nothing the incident carries is in the stored bytes: not its request, its diagnosis, its record.
  const bytes = storedBytes(raw, { withSearchAttributes: false });
  const record = rec as IncidentRecord;
  for (const text of [marker, 'test-requester', record.diagnosis as string, record.title, '"target":"alfred"', 'alfred'])
    expect({ text, found: bytes.includes(Buffer.from(text)) }).toEqual({ text, found: false });
  // The target is in the search attributes (IncidentTarget), which Temporal indexes in the clear.
  expect(storedBytes(raw, { withSearchAttributes: true }).includes(Buffer.from('alfred'))).toBe(true);

  // With the codec (the worker's, the fixture's keys) the same history reads back.
  const decoded = await decodedHistory(plain.workflow.getHandle(h.workflowId));
  const started = decoded.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
  expect(encodingOf(started ?? {})).toBe('json/plain');
  const input = JSON.parse(Buffer.from(started?.data ?? []).toString('utf8')) as IncidentInput;
  expect(input).toMatchObject({ target: 'alfred', requestedBy: 'test-requester', summary: marker, dryRun: true });
  const completed = decoded.events?.find((e) => e.workflowExecutionCompletedEventAttributes)?.workflowExecutionCompletedEventAttributes;
  const result = JSON.parse(Buffer.from(completed?.result?.payloads?.[0]?.data ?? []).toString('utf8')) as IncidentRecord;
  expect(result.diagnosis).toBe(rec.diagnosis);

  // A client without the key cannot read the result: the payload converter sees ciphertext.
  await expect(plain.workflow.getHandle(h.workflowId).result()).rejects.toThrow();
});

test("failures are encrypted too: an activity's error and the workflow's failure read 'Encoded failure' without the codec", async () => {
  const target = `no-such-target-${randomUUID().slice(0, 8)}`;
  const input: IncidentInput = { target, requestedBy: 'test-requester', severity: 2, dryRun: true };
  const h = await engine.client.workflow.start('cacheFailure', { taskQueue: engine.taskQueue, workflowId: `at-rest-failure-${randomUUID().slice(0, 8)}`, args: [input] });
  // With the codec, the error reads as the activity raised it.
  const err = (await h.result().then(
    () => undefined,
    (e: unknown) => e,
  )) as { cause?: { cause?: { message?: string } } } | undefined;
  expect(err?.cause?.cause?.message).toBe(`unknown target "${target}"`);

  const raw = await plain.workflow.getHandle(h.workflowId).fetchHistory();
  const failures = (raw.events ?? []).flatMap((e) => {
    const f = e.activityTaskFailedEventAttributes?.failure ?? e.workflowExecutionFailedEventAttributes?.failure;
    return f ? [f] : [];
  });
  expect(failures.length).toBe(2);
  for (const f of failures) {
    expect(f.message).toBe('Encoded failure');
    expect(f.stackTrace).toBe('');
    expect(encodingOf(f.encodedAttributes ?? {})).toBe('binary/encrypted');
  }
  // The target's name is nowhere in the stored bytes but the search attributes.
  expect(storedBytes(raw, { withSearchAttributes: false }).includes(Buffer.from(target))).toBe(false);
});
