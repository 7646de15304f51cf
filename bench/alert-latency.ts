/**
 * Alert → first diagnostic activity started: one alert at a time posted to the receiver process,
 * each opening a new incident (cacheFailure on its own target), timed to the moment the worker
 * process started the incident's first diagnostic activity: the first activity that is not one of
 * the reads that open an incident (its policy, its maintenance window), which come before diagnosis.
 * Where the time goes comes from the workflow history's event times (same host clock as the sender):
 *   receiver     POST sent → 202/200 received (validate, route, signalWithStart round trip)
 *   start        POST sent → WorkflowExecutionStarted
 *   first task   WorkflowExecutionStarted → first WorkflowTaskStarted (server dispatch to the worker)
 *   workflow     first WorkflowTaskStarted → the diagnostic's ActivityTaskScheduled (our workflow code,
 *                the opening reads and the workflow tasks between them)
 *   dispatch     the diagnostic's ActivityTaskScheduled → its ActivityTaskStarted (server dispatch to
 *                the activity poller)
 * Side by side in the same run: the same incident started by a bare signalWithStart from this process.
 *
 *   npx tsx bench/alert-latency.ts [--alerts 20] [--runs 5] [--temporal dev|cluster]
 */
import { parseArgs } from 'node:util';
import { buildIncidentInput } from '../src/lib/incident-input';
import { alertSignal, incidentWorkflowId } from '../src/workflows/contracts';
import { chooseProfile, startBenchEngine, type BenchEngine } from './processes';
import { machine, median, percentile, writeSection } from './report';

interface Sample {
  total: number;
  receiver: number;
  start: number;
  firstTask: number;
  workflow: number;
  dispatch: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * The activities an incident runs to open, before its diagnosis: the policy and the maintenance window
 * as ordinary activities (incidents opened before they became one local activity, which records a
 * marker and no activity task).
 */
const OPENING = new Set(['incidentPolicy', 'maintenanceWindowAt']);

const ms = (t: { seconds?: unknown; nanos?: number | null } | null | undefined): number | undefined =>
  t ? Number(t.seconds ?? 0) * 1000 + Math.floor((t.nanos ?? 0) / 1e6) : undefined;

/** The times of the incident's start, its first workflow task, and its first diagnostic activity's scheduling and start. */
async function diagnosticTimes(engine: BenchEngine, workflowId: string) {
  const events = (await engine.client.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
  const started = ms(events.find((e) => e.workflowExecutionStartedEventAttributes)?.eventTime);
  const taskStarted = ms(events.find((e) => e.workflowTaskStartedEventAttributes)?.eventTime);
  const diag = events.find((e) => {
    const name = e.activityTaskScheduledEventAttributes?.activityType?.name;
    return name !== undefined && name !== null && !OPENING.has(name);
  });
  const diagId = diag ? Number(diag.eventId) : undefined;
  const actStarted = ms(events.find((e) => e.activityTaskStartedEventAttributes && Number(e.activityTaskStartedEventAttributes.scheduledEventId) === diagId)?.eventTime);
  return { started, taskStarted, scheduled: ms(diag?.eventTime), actStarted };
}

async function firstActivity(engine: BenchEngine, workflowId: string, t0: number, ack: number): Promise<Sample> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    // Not there yet: the incident is not started, or its diagnostic not yet scheduled or started.
    const { started, taskStarted, scheduled, actStarted } = (await diagnosticTimes(engine, workflowId).catch(() => undefined)) ?? {};
    if (started && taskStarted && scheduled && actStarted) {
      return {
        total: actStarted - t0,
        receiver: ack - t0,
        start: started - t0,
        firstTask: taskStarted - started,
        workflow: scheduled - taskStarted,
        dispatch: actStarted - scheduled,
      };
    }
    if (Date.now() > deadline) throw new Error(`${workflowId}: no diagnostic activity started in 30 s`);
    await sleep(100);
  }
}

async function viaReceiver(engine: BenchEngine, target: string): Promise<Sample> {
  const t0 = Date.now();
  const status = await engine.postAlert('BenchAlert', target, `fp-${target}`);
  const ack = Date.now();
  if (status !== 200 && status !== 202) throw new Error(`receiver answered ${status}`);
  return firstActivity(engine, incidentWorkflowId('cacheFailure', target), t0, ack);
}

async function bare(engine: BenchEngine, target: string): Promise<Sample> {
  const t0 = Date.now();
  const { runbook, input } = buildIncidentInput(engine.config, { runbook: 'cacheFailure', target, requestedBy: 'alertmanager' });
  await engine.client.workflow.signalWithStart(runbook, {
    workflowId: incidentWorkflowId(runbook, target),
    taskQueue: engine.taskQueue,
    args: [input],
    signal: alertSignal,
    signalArgs: [{ source: 'alertmanager', name: 'BenchAlert', status: 'firing', receivedAt: new Date().toISOString() }],
  });
  const ack = Date.now();
  return firstActivity(engine, incidentWorkflowId('cacheFailure', target), t0, ack);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      alerts: { type: 'string', default: '20' },
      runs: { type: 'string', default: '5' },
      temporal: { type: 'string', default: 'dev' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const usage = 'usage: npx tsx bench/alert-latency.ts [--alerts 20] [--runs 5] [--temporal dev|cluster]';
  if (values.help) {
    console.log(usage);
    return;
  }
  const { section, command } = chooseProfile(values.temporal, 'Alert to first diagnostic activity', 'npx tsx bench/alert-latency.ts', usage);
  const alerts = Number(values.alerts);
  const runs = Number(values.runs);
  const ours: Sample[][] = [];
  const direct: Sample[][] = [];
  for (let r = 0; r < runs; r++) {
    const engine = await startBenchEngine({ targets: alerts * 2, worker: true, receiver: true });
    try {
      // Warm both paths once (connections, the worker's first poll), then measure.
      await viaReceiver(engine, engine.targets[0] as string);
      const a: Sample[] = [];
      const b: Sample[] = [];
      for (let i = 1; i < alerts; i++) {
        a.push(await viaReceiver(engine, engine.targets[i] as string));
        b.push(await bare(engine, engine.targets[alerts + i] as string));
      }
      ours.push(a);
      direct.push(b);
      console.error(
        `run ${r + 1}/${runs}: receiver p50 ${percentile(a.map((s) => s.total), 50)} ms, bare p50 ${percentile(b.map((s) => s.total), 50)} ms`,
      );
    } finally {
      await engine.stop();
    }
  }
  const row = (name: string, runsOf: Sample[][]): string => {
    const all = runsOf.flat();
    const med = (k: keyof Sample): string => median(all.map((s) => s[k])).toFixed(0);
    const p50s = runsOf.map((xs) => percentile(xs.map((s) => s.total), 50));
    const p99s = runsOf.map((xs) => percentile(xs.map((s) => s.total), 99));
    return `| ${name} | ${median(p50s).toFixed(0)} | ${median(p99s).toFixed(0)} | ${med('receiver')} | ${med('start')} | ${med('firstTask')} | ${med('workflow')} | ${med('dispatch')} |`;
  };
  const table = [
    `${alerts - 1} alerts per run, one at a time, each a new incident; median over ${runs} runs of each run's p50 and p99; the breakdown columns are medians over all samples (ms).`,
    '',
    '| path | p50 | p99 | ack | → started | → first task | workflow code | activity dispatch |',
    '|---|---|---|---|---|---|---|---|',
    row('receiver process → worker process', ours),
    row('bare signalWithStart → worker process', direct),
    '',
    'Targets: p50 < 100 ms, p99 < 300 ms.',
  ].join('\n');
  writeSection(section, `${table}\n\n${await machine()}`, command);
  console.log(table);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
