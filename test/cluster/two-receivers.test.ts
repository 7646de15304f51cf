/**
 * Two receivers, as production runs them behind a load balancer: two processes, each in a network
 * namespace of its own on an address of its own, both connected to the cluster profile (through a
 * relay on their side of the host, test/helpers/netns.ts; mTLS end to end). The same Alertmanager
 * alert reaches both at the same instant, round after round, a different runbook each round: each
 * round the cluster holds exactly one execution of the incident, one receiver answers `started` and
 * the other `deduplicated`, and the incident's history counts both alerts. Each process's own
 * metrics and logs show it handled its request of every round.
 *
 * Nothing polls the receivers' task queue: the incidents stay in DETECT and are terminated at the end.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { Client, Connection } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { loadConfig, type EngineConfig } from '../../src/config';
import { connectionOptions } from '../../src/lib/temporal';
import { alertSignal, incidentWorkflowId } from '../../src/workflows/contracts';
import type { AlertOutcome } from '../../src/receiver/dispatch';
import { CODEC_FIXTURE, decodedHistory, testDataConverter } from '../helpers/codec';
import { REPO, STACK_DIR, testConfig } from '../helpers/engine';
import { testLogStream } from '../helpers/test-logs';
import { CLUSTER_UP_TIMEOUT_MS, clusterEnv, clusterUp, onCluster } from '../helpers/cluster';
import {
  createNamespaces,
  deleteNamespaces,
  namespacesNamed,
  removeNamespaces,
  runsIn,
  spawnIn,
  startTcpRelay,
  type Netns,
  type TcpRelay,
} from '../helpers/netns';
import { alertmanagerPayload, eventually, terminateRun } from '../receiver/helpers';

jest.setTimeout(60_000);

const SIGNALED = temporal.api.enums.v1.EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED;
/** Namespaces `re-rx-<pid>-a|b`; host ends of their veth pairs `rerx<pid>a|b` (15 characters at most). */
const NS_PREFIX = 're-rx-';
const LINK_PREFIX = 'rerx';
/** Both receivers listen on the same port: each on its own address. */
const PORT = 8095;
/** One round per runbook: the same alert to both receivers at once. */
const ROUNDS = [
  { alertname: 'TwoRxCache', runbook: 'cacheFailure' },
  { alertname: 'TwoRxDatabase', runbook: 'databaseUnreachable' },
  { alertname: 'TwoRxLatency', runbook: 'latencySpike' },
  { alertname: 'TwoRxMemory', runbook: 'memoryLeak' },
  { alertname: 'TwoRxQueue', runbook: 'queueBacklog' },
] as const;

const run = `${Date.now().toString(36)}${randomUUID().slice(0, 4)}`;
const target = `alfred-2rx-${run}`;
const taskQueue = `two-receivers-${run}`;
const token = `two-receivers-${randomUUID()}`;
const dir = mkdtempSync(path.join(tmpdir(), 'two-receivers-'));

interface ReceiverProcess {
  ns: Netns;
  relay: TcpRelay;
  child: ChildProcess;
  url: string;
  /** Its log, JSON lines (stdout and stderr). */
  lines: string[];
}

let namespaces: Netns[] = [];
const relays: TcpRelay[] = [];
const receivers: ReceiverProcess[] = [];
let client: Client;

/** config/engine.yaml with the cluster's variables, its frontend reached through `relay`. */
function receiverEngineConfig(relay: TcpRelay): EngineConfig {
  const cfg = loadConfig(path.join(REPO, 'config/engine.yaml'), {
    ...process.env,
    STACK_DIR,
    ...clusterEnv(),
    TEMPORAL_ADDRESS: relay.address,
  });
  const alfred = cfg.targets.alfred;
  if (!alfred) throw new Error('config/engine.yaml has no target "alfred"');
  cfg.targets = { [target]: alfred };
  cfg.temporal.taskQueue = taskQueue;
  // The TEST-ONLY codec secrets, as the tests' engines use (test/helpers/codec.ts).
  cfg.codec.secretsFile = CODEC_FIXTURE;
  return cfg;
}

async function startReceiver(ns: Netns, relay: TcpRelay): Promise<ReceiverProcess> {
  const own = path.join(dir, ns.name);
  const routesFile = path.join(dir, 'routes.json');
  const receiverFile = `${own}.receiver.json`;
  const engineFile = `${own}.engine.json`;
  writeFileSync(
    receiverFile,
    JSON.stringify({
      listen: { host: ns.address, port: PORT },
      routesFile,
      stateDir: `${own}.state`,
      logLevel: 'info',
      sources: { alertmanager: { bearerTokens: [{ value: token }] } },
    }),
  );
  // JSON is YAML: the engine's own loader reads it back (secret references stay references).
  writeFileSync(engineFile, JSON.stringify(receiverEngineConfig(relay)));
  const child = spawnIn(
    ns,
    process.execPath,
    ['--import', 'tsx', 'src/receiver/main.ts', '--config', receiverFile, '--engine-config', engineFile],
    { cwd: REPO, env: { ...process.env, STACK_DIR }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const lines: string[] = [];
  // Kept for the test, and appended to the test receiver log that the secrets scan reads.
  const file = testLogStream('receiver');
  for (const stream of [child.stdout, child.stderr]) {
    stream?.on('data', (b: Buffer) => {
      lines.push(...b.toString('utf8').split('\n').filter(Boolean));
      file.write(b);
    });
  }
  const rx: ReceiverProcess = { ns, relay, child, url: `http://${ns.address}:${PORT}`, lines };
  receivers.push(rx);
  return rx;
}

/** Ready: it listens in its namespace and reaches the cluster (GET /readyz asks Temporal). */
async function ready(rx: ReceiverProcess): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (rx.child.exitCode !== null) throw new Error(`receiver in ${rx.ns.name} exited:\n${rx.lines.join('\n')}`);
    const status = await fetch(`${rx.url}/readyz`).then(
      (r) => r.status,
      () => 0,
    );
    if (status === 200) return;
    if (Date.now() > deadline) throw new Error(`receiver in ${rx.ns.name} not ready in 30 s:\n${rx.lines.join('\n')}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function stopReceiver(rx: ReceiverProcess): Promise<void> {
  const { child } = rx;
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

async function post(rx: ReceiverProcess, alertname: string): Promise<{ status: number; result?: AlertOutcome }> {
  const res = await fetch(`${rx.url}/alerts/alertmanager`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(alertmanagerPayload([{ alertname, labels: { target } }])),
  });
  const json = (await res.json()) as { results?: AlertOutcome[] };
  return { status: res.status, result: json.results?.[0] };
}

/** Alerts counted in the incident's history (a signal may stand for several repeats). */
async function alertsInHistory(workflowId: string): Promise<number> {
  const history = await decodedHistory(client.workflow.getHandle(workflowId));
  return (history.events ?? [])
    .filter(
      (e) => e.eventType === SIGNALED && e.workflowExecutionSignaledEventAttributes?.signalName === alertSignal.name,
    )
    .reduce((n, e) => {
      const data = e.workflowExecutionSignaledEventAttributes?.input?.payloads?.[0]?.data;
      return n + ((JSON.parse(Buffer.from(data ?? []).toString()) as { repeats?: number }).repeats ?? 1);
    }, 0);
}

/** The receiver's log entries (its JSON lines; anything else it printed is left out). */
function logEntries(rx: ReceiverProcess): Array<Record<string, unknown>> {
  return rx.lines.flatMap((l) => {
    try {
      return [JSON.parse(l) as Record<string, unknown>];
    } catch {
      return [];
    }
  });
}

const executions = (query: string) => client.workflow.count(query).then((r) => r.count);

/** A counter of the receiver's /metrics, summed over its label sets. */
function counter(metrics: string, name: string): number {
  const re = new RegExp(`^remediation_receiver_${name}(?:\\{[^}]*\\})? (\\d+)$`, 'gm');
  return [...metrics.matchAll(re)].reduce((n, m) => n + Number(m[1]), 0);
}

beforeAll(async () => {
  await clusterUp();
  const cfg = testConfig();
  onCluster(cfg);
  client = new Client({
    connection: await Connection.connect(connectionOptions(cfg)),
    namespace: cfg.temporal.namespace,
    dataConverter: testDataConverter(),
  });
  removeNamespaces(NS_PREFIX, LINK_PREFIX);
  namespaces = createNamespaces(
    ['a', 'b'].map((s) => `${NS_PREFIX}${process.pid}-${s}`),
    ['a', 'b'].map((s) => `${LINK_PREFIX}${process.pid}${s}`),
  );
  writeFileSync(
    path.join(dir, 'routes.json'),
    JSON.stringify({
      catalogDefaults: false,
      rules: ROUNDS.map((r) => ({
        name: r.runbook,
        match: { alertname: r.alertname },
        runbook: r.runbook,
        target: { fromLabel: 'target' },
      })),
    }),
  );
  const { TEMPORAL_ADDRESS: frontend = '' } = clusterEnv();
  for (const ns of namespaces) relays.push(await startTcpRelay(ns.hostAddress, frontend));
  const started = await Promise.all(namespaces.map((ns, i) => startReceiver(ns, relays[i] as TcpRelay)));
  await Promise.all(started.map(ready));
}, CLUSTER_UP_TIMEOUT_MS);

afterAll(async () => {
  await Promise.all(receivers.map(stopReceiver));
  if (client) {
    await terminateRun(client, taskQueue);
    await client.connection.close();
  }
  await Promise.all(relays.map((r) => r.close()));
  deleteNamespaces(namespaces);
  rmSync(dir, { recursive: true, force: true });
});

test('the two receivers are processes of their own, each in its namespace on its own address, reaching the cluster through its relay', () => {
  const [a, b] = receivers as [ReceiverProcess, ReceiverProcess];
  expect(namespacesNamed(`${NS_PREFIX}${process.pid}-`).sort()).toEqual(namespaces.map((n) => n.name).sort());
  expect(a.child.pid).not.toBe(b.child.pid);
  expect(a.ns.address).not.toBe(b.ns.address);
  for (const rx of receivers) {
    expect(runsIn(rx.child.pid as number, rx.ns)).toBe(true);
    expect(runsIn(rx.child.pid as number, (rx === a ? b : a).ns)).toBe(false);
    // It says so itself: listening on its namespace's address.
    expect(logEntries(rx).find((l) => l.msg === 'receiver listening')?.url).toBe(rx.url);
    // Its connections to the frontend came through its relay, from its own address only.
    expect(rx.relay.peers.length).toBeGreaterThan(0);
    expect(new Set(rx.relay.peers)).toEqual(new Set([rx.ns.address]));
  }
});

test('the same alert sent to both at the same instant, five rounds: one execution, one `started`, one `deduplicated`, two alerts counted', async () => {
  const answers: Array<[AlertOutcome | undefined, AlertOutcome | undefined]> = [];
  for (const round of ROUNDS) {
    const workflowId = incidentWorkflowId(round.runbook, target);
    const [a, b] = await Promise.all(receivers.map((rx) => post(rx, round.alertname)));
    expect([a?.status, b?.status]).toEqual([200, 200]);
    for (const r of [a?.result, b?.result])
      expect(r).toMatchObject({ alertname: round.alertname, workflowId, runbook: round.runbook, target });
    expect([a?.result?.action, b?.result?.action].sort()).toEqual(['deduplicated', 'started']);
    answers.push([a?.result, b?.result]);

    const query = `WorkflowId = '${workflowId}'`;
    expect(
      await eventually(
        () => executions(query),
        (n) => n >= 1,
      ),
    ).toBe(1);
    const d = await client.workflow.getHandle(workflowId).describe();
    expect([d.status.name, d.taskQueue, d.type]).toEqual(['RUNNING', taskQueue, round.runbook]);
    expect(await alertsInHistory(workflowId)).toBe(2);
  }
  // Over the run: one incident per round on the task queue, no more.
  expect(
    await eventually(
      () => executions(`TaskQueue = '${taskQueue}'`),
      (n) => n >= ROUNDS.length,
    ),
  ).toBe(ROUNDS.length);
  console.log(`started by: ${answers.map(([a]) => (a?.action === 'started' ? 'a' : 'b')).join(' ')}`);

  // Each process handled its own request of every round: its metrics and its log say so, as its answers did.
  for (const [i, rx] of receivers.entries()) {
    const own = answers.map((pair) => pair[i]);
    const metrics = await (await fetch(`${rx.url}/metrics`)).text();
    expect(counter(metrics, 'alerts_received_total')).toBe(ROUNDS.length);
    expect(counter(metrics, 'incidents_started_total')).toBe(own.filter((o) => o?.action === 'started').length);
    expect(counter(metrics, 'alerts_deduplicated_total')).toBe(own.filter((o) => o?.action === 'deduplicated').length);
    const logged = logEntries(rx)
      .filter((l) => /^alert (started|deduplicated)$/.test(String(l.msg)))
      .map((l) => `${String(l.workflowId)} ${String(l.action)}`);
    expect(logged).toEqual(own.map((o) => `${o?.workflowId} ${o?.action}`));
  }
});
