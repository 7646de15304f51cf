/**
 * The dispatcher's per-incident lanes, as decision logic: calls for one incident go out one at a
 * time and in order, repeats that wait behind a call share one signal that counts them all, every
 * request is answered only once the call carrying its alert is accepted, and a failed call fails
 * every request it carried (so the senders retry: nothing answered is lost). The Temporal client is a
 * stand-in whose calls the test completes by hand; the real-server behaviour is in http.test.ts and
 * bench/alert-storm.ts.
 */
import path from 'node:path';
import pino from 'pino';
import type { Client } from '@temporalio/client';
import { loadConfig } from '../../src/config';
import { createDispatcher, RECEIPT_MEMO_KEY, TemporalUnavailableError, type AlertOutcome } from '../../src/receiver/dispatch';
import type { IncomingAlert } from '../../src/receiver/payloads';
import type { RouteDecision } from '../../src/receiver/routes';
import type { AlertEvent } from '../../src/workflows/contracts';

interface Call {
  kind: 'signalWithStart' | 'signal';
  event: AlertEvent;
  receipt?: string;
  settle: (err?: Error) => void;
}

/** A client whose calls stay pending until the test settles them; the first signalWithStart starts the run. */
function fakeClient() {
  const calls: Call[] = [];
  let starter: string | undefined;
  const pending = (c: Omit<Call, 'settle'>, value: unknown): Promise<unknown> =>
    new Promise((resolve, reject) => {
      calls.push({ ...c, settle: (err) => (err ? reject(err) : resolve(value)) });
    });
  const client = {
    withDeadline: <T>(_deadline: number, fn: () => Promise<T>) => fn(),
    workflow: {
      signalWithStart: (_type: string, o: { signalArgs: [AlertEvent]; memo: Record<string, string> }) => {
        const receipt = o.memo[RECEIPT_MEMO_KEY];
        starter ??= receipt;
        return pending({ kind: 'signalWithStart', event: o.signalArgs[0], ...(receipt ? { receipt } : {}) }, { signaledRunId: 'run-1' });
      },
      getHandle: () => ({
        signal: (_def: unknown, event: AlertEvent) => pending({ kind: 'signal', event }, undefined),
        describe: async () => ({ memo: { [RECEIPT_MEMO_KEY]: starter } }),
      }),
    },
  };
  return { client: client as unknown as Client, calls };
}

const engine = loadConfig(path.resolve(__dirname, '../../config/engine.yaml'));
const route: Extract<RouteDecision, { kind: 'routed' }> = { kind: 'routed', rule: 'r', runbook: 'cacheFailure', target: 'alfred', severity: 2 };

function alert(status: 'firing' | 'resolved', summary: string): IncomingAlert {
  return { source: 'alertmanager', name: 'AlfredRedisDown', status, labels: { alertname: 'AlfredRedisDown' }, annotations: { summary } };
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

function setup(coalesceWindowMs?: number) {
  const { client, calls } = fakeClient();
  const coalesced: number[] = [];
  const d = createDispatcher({
    client,
    engine,
    taskQueue: 'q',
    timeoutMs: 1000,
    logger: pino({ level: 'silent' }),
    onCoalesced: (_runbook, n) => coalesced.push(n),
    ...(coalesceWindowMs !== undefined ? { coalesceWindowMs } : {}),
  });
  const send = (status: 'firing' | 'resolved', summary: string): Promise<AlertOutcome> =>
    d.dispatch(alert(status, summary), route, new Date().toISOString());
  return { calls, coalesced, send };
}

test('repeats behind a call in flight go out as one signal that counts them all, and each is answered once it is accepted', async () => {
  const { calls, coalesced, send } = setup();
  const first = send('firing', 'a0');
  await tick();
  expect(calls).toHaveLength(1);
  const repeats = ['a1', 'a2', 'a3', 'a4'].map((s) => send('firing', s));
  let answered = 0;
  for (const r of repeats) void r.then(() => (answered += 1));
  await tick();
  expect(calls).toHaveLength(1); // nothing else goes out while the first call is in flight

  calls[0]?.settle();
  expect(await first).toMatchObject({ action: 'started' });
  await tick();
  expect(calls).toHaveLength(2);
  expect(answered).toBe(0); // accepted only when their own call is
  expect(calls[1]?.event).toMatchObject({ repeats: 4, annotations: { summary: 'a4' } }); // the latest repeat's details

  calls[1]?.settle();
  expect((await Promise.all(repeats)).map((r) => r.action)).toEqual(Array(4).fill('deduplicated'));
  expect(coalesced).toEqual([4]);
});

test('a resolution never overtakes the firing repeats queued before it, and is not merged with them', async () => {
  const { calls, send } = setup();
  const answers = [send('firing', 'a0'), send('firing', 'a1'), send('resolved', 'r0'), send('resolved', 'r1'), send('firing', 'a2')];
  for (let i = 0; i < 4; i++) {
    await tick();
    calls[i]?.settle();
  }
  await Promise.all(answers);
  // All five arrived before the first call left: a0 and a1 share it, the two resolutions share a
  // signal, and the firing alerts on either side of them do not merge across it.
  expect(calls.map((c) => `${c.kind}:${c.event.status}:${c.event.repeats ?? 1}`)).toEqual([
    'signalWithStart:firing:2',
    'signal:resolved:2',
    'signalWithStart:firing:1',
  ]);
  expect((await Promise.all(answers)).map((a) => a.action)).toEqual(['started', 'deduplicated', 'resolved-signalled', 'resolved-signalled', 'deduplicated']);
});

test('a failed call fails every request it carried, and the lane carries on with the next one', async () => {
  const { calls, send } = setup();
  const first = send('firing', 'a0');
  await tick();
  const carried = [send('firing', 'a1'), send('firing', 'a2')];
  calls[0]?.settle();
  await first;
  await tick();
  calls[1]?.settle(new Error('unavailable'));
  for (const c of carried) await expect(c).rejects.toBeInstanceOf(TemporalUnavailableError);
  // The senders retry: the next alert goes out on its own.
  const retry = send('firing', 'a1');
  await tick();
  expect(calls).toHaveLength(3);
  calls[2]?.settle();
  expect(await retry).toMatchObject({ action: 'deduplicated' });
});

test("the alerts one request carries for one incident go out as its first call, together", async () => {
  const { calls, coalesced, send } = setup();
  // As the receiver dispatches a webhook's alerts: all in the same turn of the event loop.
  const answers = ['i1', 'i2', 'i3', 'i4', 'i5'].map((s) => send('firing', s));
  expect(calls).toHaveLength(0); // not before the request's other alerts joined
  await tick();
  expect(calls).toHaveLength(1);
  expect(calls[0]?.event).toMatchObject({ repeats: 5, annotations: { summary: 'i5' } });
  calls[0]?.settle();
  expect((await Promise.all(answers)).map((a) => a.action)).toEqual(['started', 'deduplicated', 'deduplicated', 'deduplicated', 'deduplicated']);
  expect(coalesced).toEqual([5]);
});

test('with coalesceWindowMs, repeats arriving within the window share the first call; later ones do not', async () => {
  const { calls, send } = setup(80);
  const first = send('firing', 'w0');
  await new Promise((r) => setTimeout(r, 30));
  const second = send('firing', 'w1');
  expect(calls).toHaveLength(0);
  await new Promise((r) => setTimeout(r, 70));
  expect(calls).toHaveLength(1);
  expect(calls[0]?.event).toMatchObject({ repeats: 2 });
  calls[0]?.settle();
  expect((await Promise.all([first, second])).map((a) => a.action)).toEqual(['started', 'deduplicated']);
  // The lane is idle again: the next alert waits its own window, alone.
  const late = send('firing', 'w2');
  await new Promise((r) => setTimeout(r, 120));
  expect(calls).toHaveLength(2);
  expect(calls[1]?.event.repeats).toBeUndefined();
  calls[1]?.settle();
  expect(await late).toMatchObject({ action: 'deduplicated' });
});
