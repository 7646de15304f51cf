/**
 * Alert storm benchmark: N Alertmanager-style alerts over F fingerprints (one incident each), posted
 * concurrently to the real receiver (a process of its own), against the real Temporal dev server; side by side with a bare
 * `signalWithStart` loop doing the same work from the same process. Medians over R runs.
 *
 *   npx tsx bench/alert-storm.ts [--alerts 10000] [--incidents 50] [--concurrency 64] [--runs 5]
 *                                [--per-request 1] [--coalesce-ms 0] [--temporal dev|cluster] [--section NAME]
 *
 * `--temporal cluster`: against the cluster profile instead (brought up with scripts/cluster.sh up:
 * the multi-service server on PostgreSQL, mTLS); the receiver, the thin front and the bare loop all
 * connect with the cluster's address and client certificate, the server CPU is the cluster server's,
 * and the table goes to a section of its own ("Alert storm (cluster profile)" unless `--section`).
 *
 * `--per-request N`: each webhook carries N alerts of one incident, as Alertmanager sends a group (the
 * bare loop still makes one call per alert, the thin front too); `--coalesce-ms`: the receiver's
 * `lanes.coalesceWindowMs`.
 *
 * Checks: exactly F workflows, and every alert counted (signals in the histories = N). Writes its
 * table into BENCHMARKS.md (section "Alert storm", or `--section`) with the machine it ran on.
 */
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import type { Client } from '@temporalio/client';
import type { EngineConfig } from '../src/config';
import { incidentWorkflowId } from '../src/workflows/contracts';
import { connect, cpuSeconds, decodedHistory, stackConfig, startBenchEngine, temporalProfile, temporalServerPid, chooseProfile } from './processes';
import { signalStormAlert } from './storm-call';
import { machine, median, percentile, writeSection } from './report';

interface RunResult {
  seconds: number;
  alertsPerSecond: number;
  p50: number;
  p99: number;
  workflows: number;
  /** Alert signals in the histories, and the alerts they carry. */
  signals: number;
  alerts: number;
  /** Share of one core each process used during the storm (%). */
  serverCpu: number;
  receiverCpu: number;
  loadCpu: number;
}

/** CPU use of the server, the receiver process (if any) and this process over one storm. */
function cpuMeter(receiverPid?: number): () => { serverCpu: number; receiverCpu: number; loadCpu: number } {
  const server = temporalServerPid();
  const s0 = cpuSeconds(server);
  const r0 = cpuSeconds(receiverPid);
  const l0 = process.cpuUsage();
  const t0 = performance.now();
  return () => {
    const secs = (performance.now() - t0) / 1000;
    const l = process.cpuUsage(l0);
    return {
      serverCpu: ((cpuSeconds(server) - s0) / secs) * 100,
      receiverCpu: receiverPid ? ((cpuSeconds(receiverPid) - r0) / secs) * 100 : 0,
      loadCpu: ((l.user + l.system) / 1e6 / secs) * 100,
    };
  };
}

async function pool<T>(items: T[], concurrency: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) {
        const i = next++;
        await fn(items[i] as T);
      }
    }),
  );
}

async function countAndTerminate(client: Client, taskQueue: string, ids: string[]): Promise<{ workflows: number; signals: number; alerts: number }> {
  let workflows = 0;
  let signals = 0;
  let alerts = 0;
  for (const id of ids) {
    const h = client.workflow.getHandle(id);
    try {
      const hist = await decodedHistory(client, id);
      workflows += 1;
      // A signal may stand for several repeats (the receiver coalesces a storm): count the alerts.
      for (const e of hist.events ?? []) {
        const data = e.workflowExecutionSignaledEventAttributes?.input?.payloads?.[0]?.data;
        if (!data) continue;
        signals += 1;
        alerts += (JSON.parse(Buffer.from(data).toString()) as { repeats?: number }).repeats ?? 1;
      }
      await h.terminate('benchmark finished');
    } catch {
      /* missing: counted as lost */
    }
  }
  void taskQueue;
  return { workflows, signals, alerts };
}

function engineWithTargets(n: number, run: string): { engine: EngineConfig; targets: string[] } {
  const engine = stackConfig();
  const base = engine.targets.alfred;
  if (!base) throw new Error('config/engine.yaml has no target alfred');
  const targets = Array.from({ length: n }, (_, i) => `bench-${run}-${i}`);
  engine.targets = Object.fromEntries(targets.map((t) => [t, base]));
  return { engine, targets };
}

interface Shape {
  alerts: number;
  incidents: number;
  concurrency: number;
  perRequest: number;
  coalesceMs: number;
}

async function receiverRun(shape: Shape, thinFront = false): Promise<RunResult> {
  const { alerts, incidents, concurrency, perRequest } = shape;
  // The receiver (or the thin front) in a process of its own, as deployed; this process only generates the load.
  const engine = await startBenchEngine({
    targets: incidents,
    worker: false,
    receiver: !thinFront,
    thinFront,
    route: { alertname: 'BenchStorm', runbook: 'cacheFailure' },
    ...(thinFront ? {} : { coalesceWindowMs: shape.coalesceMs }),
  });
  const { targets, taskQueue, client } = engine;
  const TOKEN = engine.token;
  const url = `${engine.receiverUrl}/alerts/alertmanager`;
  const latencies: number[] = [];
  // Request i carries alerts i*perRequest … of incident i % incidents.
  const bodies = Array.from({ length: Math.ceil(alerts / perRequest) }, (_, i) => {
    const target = targets[i % incidents] as string;
    const n = Math.min(perRequest, alerts - i * perRequest);
    return JSON.stringify({
      version: '4',
      groupKey: `{}:{target="${target}"}`,
      status: 'firing',
      receiver: 'remediation',
      groupLabels: { target },
      commonLabels: { alertname: 'BenchStorm', target },
      commonAnnotations: {},
      externalURL: 'http://alertmanager',
      alerts: Array.from({ length: n }, (_, j) => ({
        status: 'firing',
        labels: { alertname: 'BenchStorm', target, instance: `pod-${j}` },
        annotations: { summary: `repeat ${i * perRequest + j}` },
        startsAt: new Date().toISOString(),
        fingerprint: `fp-${i % incidents}-${j}`,
      })),
    });
  });
  const meter = cpuMeter(engine.receiver?.pid);
  const t0 = performance.now();
  await pool(bodies, concurrency, async (body) => {
    const s = performance.now();
    const res = await fetch(url, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body });
    await res.arrayBuffer();
    if (res.status !== 200) throw new Error(`receiver answered ${res.status}`);
    // Every alert of the request is acknowledged with it.
    const ms = performance.now() - s;
    for (let k = 0; k < Math.min(perRequest, alerts); k++) latencies.push(ms);
  });
  const seconds = (performance.now() - t0) / 1000;
  const cpu = meter();
  const counted = await countAndTerminate(client, taskQueue, targets.map((t) => incidentWorkflowId('cacheFailure', t)));
  await engine.stop();
  return {
    seconds,
    alertsPerSecond: alerts / seconds,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    ...counted,
    ...cpu,
  };
}

async function bareRun(client: Client, shape: Shape): Promise<RunResult> {
  const { alerts, incidents, concurrency } = shape;
  const run = randomUUID().slice(0, 6);
  const taskQueue = `bench-bare-${run}`;
  const { engine, targets } = engineWithTargets(incidents, run);
  const latencies: number[] = [];
  const items = Array.from({ length: alerts }, (_, i) => i);
  const meter = cpuMeter();
  const t0 = performance.now();
  await pool(items, concurrency, async (i) => {
    const target = targets[i % incidents] as string;
    const s = performance.now();
    await signalStormAlert(client, engine, target, taskQueue);
    latencies.push(performance.now() - s);
  });
  const seconds = (performance.now() - t0) / 1000;
  const cpu = meter();
  const counted = await countAndTerminate(client, taskQueue, targets.map((t) => incidentWorkflowId('cacheFailure', t)));
  return { seconds, alertsPerSecond: alerts / seconds, p50: percentile(latencies, 50), p99: percentile(latencies, 99), ...counted, ...cpu };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      alerts: { type: 'string', default: '10000' },
      incidents: { type: 'string', default: '50' },
      concurrency: { type: 'string', default: '64' },
      runs: { type: 'string', default: '5' },
      'per-request': { type: 'string', default: '1' },
      'coalesce-ms': { type: 'string', default: '0' },
      temporal: { type: 'string', default: 'dev' },
      section: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const usage =
    'usage: npx tsx bench/alert-storm.ts [--alerts 10000] [--incidents 50] [--concurrency 64] [--runs 5] [--per-request 1] [--coalesce-ms 0] [--temporal dev|cluster] [--section NAME]';
  if (values.help) {
    console.log(usage);
    return;
  }
  // The command that reproduces the figures is the one run, with its options (below).
  const { section: profileSection } = chooseProfile(values.temporal, 'Alert storm', '', usage);
  const section = values.section ?? profileSection;
  const profile = temporalProfile();
  const alerts = Number(values.alerts);
  const incidents = Number(values.incidents);
  const concurrency = Number(values.concurrency);
  const runs = Number(values.runs);
  const shape: Shape = { alerts, incidents, concurrency, perRequest: Number(values['per-request']), coalesceMs: Number(values['coalesce-ms']) };
  const client = await connect();
  const paths = {
    receiver: { label: 'receiver (HTTP → authenticate → validate → route → signalWithStart, repeats coalesced)', results: [] as RunResult[] },
    thin: { label: 'thinnest HTTP front (bench/thin-front.ts: JSON.parse → signalWithStart)', results: [] as RunResult[] },
    bare: { label: 'bare signalWithStart loop (no HTTP)', results: [] as RunResult[] },
  };
  type PathName = keyof typeof paths;
  const names = Object.keys(paths) as PathName[];
  try {
    for (let r = 0; r < runs; r++) {
      // Rotate which goes first so none always gets the warmer server.
      const order = names.map((_, i) => names[(i + r) % names.length] as PathName);
      for (const which of order) {
        const res =
          which === 'bare'
            ? await bareRun(client, shape)
            : await receiverRun(shape, which === 'thin');
        paths[which].results.push(res);
        console.error(
          `run ${r + 1}/${runs} ${which.padEnd(8)} ${res.alertsPerSecond.toFixed(0)} alerts/s, p50 ${res.p50.toFixed(1)} ms, p99 ${res.p99.toFixed(1)} ms, ` +
            `${res.workflows} workflows, ${res.alerts} alerts counted in ${res.signals} signals; ` +
            `CPU server ${res.serverCpu.toFixed(0)} %, front ${res.receiverCpu.toFixed(0)} %, load ${res.loadCpu.toFixed(0)} %`,
        );
        if (res.workflows !== incidents || res.alerts !== alerts) {
          throw new Error(`${which}: expected ${incidents} workflows and ${alerts} alerts, got ${res.workflows} and ${res.alerts}`);
        }
      }
    }
  } finally {
    await client.connection.close();
  }
  const m = (xs: RunResult[], k: keyof RunResult) => median(xs.map((x) => x[k] as number));
  const rate = (p: PathName): number => m(paths[p].results, 'alertsPerSecond');
  /** CPU milliseconds per alert: server, HTTP front, load generator. */
  const perAlert = (p: PathName): string => {
    const xs = paths[p].results;
    const ms = (k: 'serverCpu' | 'receiverCpu' | 'loadCpu'): string => ((m(xs, k) / 100 / rate(p)) * 1000).toFixed(2);
    return `${ms('serverCpu')} / ${p === 'bare' ? '–' : ms('receiverCpu')} / ${ms('loadCpu')}`;
  };
  const row = (p: PathName): string => {
    const xs = paths[p].results;
    const cpu = `${m(xs, 'serverCpu').toFixed(0)} / ${p === 'bare' ? '–' : m(xs, 'receiverCpu').toFixed(0)} / ${m(xs, 'loadCpu').toFixed(0)}`;
    return `| ${paths[p].label} | ${rate(p).toFixed(0)} | ${m(xs, 'p50').toFixed(1)} | ${m(xs, 'p99').toFixed(1)} | ${incidents} | ${alerts} | ${m(xs, 'signals').toFixed(0)} | ${cpu} | ${perAlert(p)} |`;
  };
  const table = [
    `${alerts} alerts over ${incidents} incidents, concurrency ${concurrency}, ${shape.perRequest} alert(s) per webhook` +
      `${shape.coalesceMs > 0 ? `, receiver coalescing window ${shape.coalesceMs} ms` : ''}, median of ${runs} runs each (order rotated)` +
      `${profile === 'cluster' ? ', against the cluster profile (scripts/cluster.sh)' : ''}.`,
    '',
    '| path | alerts/s | p50 ack (ms) | p99 ack (ms) | workflows | alerts counted | signals | CPU: server / front / load generator (% of a core) | CPU ms per alert: server / front / load generator |',
    '|---|---|---|---|---|---|---|---|---|',
    ...names.map(row),
    '',
    `Receiver throughput / bare loop: **${(rate('receiver') / rate('bare')).toFixed(2)}×** (target ≥ 1.0×, ack p99 < 300 ms). ` +
      `Thinnest HTTP front / bare loop: **${(rate('thin') / rate('bare')).toFixed(2)}×**: the ceiling for any HTTP receiver on this machine.`,
  ].join('\n');
  const command = `npx tsx bench/alert-storm.ts${process.argv.slice(2).length > 0 ? ` ${process.argv.slice(2).join(' ')}` : ''}`;
  writeSection(section, `${table}\n\n${await machine()}`, command);
  console.log(table);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
