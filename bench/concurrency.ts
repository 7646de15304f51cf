/**
 * Concurrency: N open incidents waiting for approval on one worker process. A Redis of the
 * benchmark's own (a redis-server process, so the shared drill is untouched) is filled to maxmemory,
 * N cacheFailure incidents are started (each on its own target, a copy of the drill pointed at that
 * Redis), and each diagnoses "at maxmemory" and waits for approval of evict-cache. Measured: the
 * worker's resident memory while all N wait (peak of 1 s samples), then the time from sending all N
 * approvals until all N incidents are closed (the first eviction fixes Redis; the other N-1 re-check
 * their precondition under their lock and skip, as they must). Recovery is PONG, a write and the api's
 * view of Redis: nobody uses the bench's Redis, so its cache hit rate is not waited for
 * (`limits.cacheRecoverySeconds: 0`).
 *
 * While the approvals drain, a progress line every 5 s gives closed incidents and the CPU share of
 * the worker and the Temporal server, to show which one is the bottleneck.
 *
 *   npx tsx bench/concurrency.ts [--incidents 500] [--runs 5] [--max-cached N] [--wft-slots N]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { parseArgs } from 'node:util';
import Redis from 'ioredis';
import { TargetSchema } from '../src/config';
import { buildIncidentInput } from '../src/lib/incident-input';
import { approveSignal, statusQuery } from '../src/workflows/contracts';
import { chooseProfile, cpuSeconds, freePort, operatorClient, startBenchEngine, temporalServerPid, type BenchEngine } from './processes';
import { machine, median, writeSection } from './report';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const PREFIX = 'alfred:cache:bench-fill:';

/** A throw-away redis-server at maxmemory 32 MB that refuses writes when full, as the drill's does. */
async function startRedis(): Promise<{ port: number; proc: ChildProcess }> {
  const port = await freePort();
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--maxmemory', '32mb', '--maxmemory-policy', 'noeviction'], {
    stdio: 'ignore',
  });
  // Not left behind when the benchmark is interrupted.
  process.once('exit', () => proc.kill('SIGKILL'));
  for (let i = 0; i < 50; i++) {
    const r = new Redis({ port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    r.on('error', () => undefined); // not listening yet: tried again below
    const ok = await r.connect().then(() => r.ping(), () => undefined);
    r.disconnect();
    if (ok === 'PONG') return { port, proc };
    await sleep(100);
  }
  proc.kill('SIGKILL');
  throw new Error('bench redis-server did not start');
}

async function fill(port: number): Promise<void> {
  const r = new Redis({ port });
  const blob = 'x'.repeat(64 * 1024);
  try {
    for (let i = 0; i < 4000; i++) {
      try {
        await r.set(`${PREFIX}${i}`, blob);
      } catch {
        return;
      }
    }
  } finally {
    r.disconnect();
  }
}

async function pool<T>(items: T[], concurrency: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) await fn(items[next++] as T);
    }),
  );
}

async function count(engine: BenchEngine, where: string): Promise<number> {
  return (await engine.client.workflow.count(`TaskQueue = '${engine.taskQueue}' AND WorkflowType = 'cacheFailure' AND ${where}`)).count;
}

interface Sample {
  toWaiting: number;
  rssWaiting: number;
  rssPeak: number;
  approveAll: number;
}

/** Polls every incident's status until each has evict-cache pending approval (by 32 at a time). */
async function waitAllPending(engine: BenchEngine, t0: number): Promise<void> {
  let left = [...engine.targets];
  while (left.length > 0) {
    if (Date.now() - t0 > 600_000) throw new Error(`${left.length}/${engine.targets.length} incidents not waiting for approval after 10 min`);
    const still: string[] = [];
    await pool(left, 32, async (target) => {
      const rec = await engine.client.workflow
        .getHandle(`bench-${target}`)
        .query(statusQuery)
        .catch(() => undefined);
      if (!rec?.pending.some((p) => p.stepId === 'evict-cache')) still.push(target);
    });
    left = still;
    if (left.length > 0) await sleep(1000);
  }
}

interface WorkerTuning {
  maxCachedWorkflows?: number;
  maxConcurrentWorkflowTaskExecutions?: number;
}

/** Prints closed incidents and CPU shares every 5 s while `until` is pending. */
function progress(engine: BenchEngine, n: number): () => void {
  const pids = { worker: engine.worker?.pid, server: temporalServerPid() };
  let last = { t: Date.now(), worker: cpuSeconds(pids.worker), server: cpuSeconds(pids.server) };
  const timer = setInterval(() => {
    void count(engine, `ExecutionStatus = 'Completed'`).then((done) => {
      const now = { t: Date.now(), worker: cpuSeconds(pids.worker), server: cpuSeconds(pids.server) };
      const dt = (now.t - last.t) / 1000;
      const pct = (k: 'worker' | 'server'): string => `${(((now[k] - last[k]) / dt) * 100).toFixed(0)} %`;
      console.error(`  ${done}/${n} closed; CPU worker ${pct('worker')}, server ${pct('server')}; worker RSS ${engine.workerRssMiB().toFixed(0)} MiB`);
      last = now;
    });
  }, 5000);
  return () => clearInterval(timer);
}

async function once(n: number, tuning: WorkerTuning, sdkDefaults: boolean): Promise<Sample> {
  const redis = await startRedis();
  const redisPort = redis.port;
  const engine = await startBenchEngine({
    targets: n,
    worker: true,
    receiver: false,
    policy: { cooldownMs: 0 },
    // Parsed so the section's defaults (probeKey) apply as they would from the file.
    targetOverrides: {
      redis: TargetSchema.shape.redis.unwrap().parse({ via: 'tcp', host: '127.0.0.1', port: redisPort }),
    },
    // Nobody uses the bench's Redis, so its recovery cannot be seen in seed 002's cache hit rate (no
    // requests, no rate: each incident would wait the 300 s window out and escalate). Recovery here
    // is PONG, a write and the api's view of Redis, as the setting documents for such a target.
    limitOverrides: { cacheRecoverySeconds: 0 },
    workerOptions: tuning,
    sdkDefaults,
  });
  let peak = 0;
  const sampler = setInterval(() => {
    peak = Math.max(peak, engine.workerRssMiB());
  }, 1000);
  try {
    await fill(redisPort);
    const t0 = Date.now();
    await pool(engine.targets, 32, async (target) => {
      const { runbook, input } = buildIncidentInput(engine.config, { runbook: 'cacheFailure', target, requestedBy: 'bench' });
      await engine.client.workflow.start(runbook, { workflowId: `bench-${target}`, taskQueue: engine.taskQueue, args: [input] });
    });
    // Waiting = the step is pending approval. The MITIGATE phase alone is not enough: it is set
    // while the step's precondition is still being checked, and the kernel refuses an approval of a
    // step that is not yet waiting for one (an approval binds to what was shown to the approver).
    await waitAllPending(engine, t0);
    const toWaiting = Date.now() - t0;
    await sleep(3000);
    const rssWaiting = engine.workerRssMiB();
    console.error(`${n} incidents waiting after ${(toWaiting / 1000).toFixed(1)} s; worker RSS ${rssWaiting.toFixed(0)} MiB`);

    // alice approves as operators do: through the stack's codec server, which seals each approval
    // with her name (her personal token, .stack/secrets/tokens/alice); each names its incident.
    const alice = await operatorClient('alice', engine.config);
    const t1 = Date.now();
    const stopProgress = progress(engine, n);
    await pool(engine.targets, 32, async (target) => {
      const incidentId = `bench-${target}`;
      await alice.workflow.getHandle(incidentId).signal<[{ stepId: string; incidentId: string }]>(approveSignal.name, { stepId: 'evict-cache', incidentId });
    });
    await alice.connection.close();
    for (;;) {
      const done = await count(engine, `ExecutionStatus = 'Completed'`);
      if (done >= n) break;
      if (Date.now() - t1 > 600_000) throw new Error(`only ${done}/${n} incidents closed 10 min after approval`);
      await sleep(500);
    }
    stopProgress();
    const approveAll = Date.now() - t1;
    console.error(`all ${n} approved and closed in ${(approveAll / 1000).toFixed(1)} s; peak RSS ${peak.toFixed(0)} MiB`);
    return { toWaiting, rssWaiting, rssPeak: Math.max(peak, rssWaiting), approveAll };
  } finally {
    clearInterval(sampler);
    await engine.stop();
    redis.proc.kill('SIGTERM');
  }
}

const VARIANTS = [
  { name: 'engine worker', sdkDefaults: false },
  { name: 'SDK defaults', sdkDefaults: true },
] as const;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      incidents: { type: 'string', default: '500' },
      runs: { type: 'string', default: '5' },
      'engine-only': { type: 'boolean', default: false },
      'max-cached': { type: 'string' },
      'wft-slots': { type: 'string' },
      temporal: { type: 'string', default: 'dev' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const usage = 'usage: npx tsx bench/concurrency.ts [--incidents 500] [--runs 5] [--engine-only] [--max-cached N] [--wft-slots N] [--temporal dev|cluster]';
  if (values.help) {
    console.log(usage);
    console.log('  Each run measures the engine worker as the engine starts it (preloaded workflow bundle,');
    console.log('  --optimize-for-size, MALLOC_ARENA_MAX=2) and, side by side, the SDK defaults.');
    console.log('  --engine-only  skip the SDK-defaults worker');
    console.log('  --max-cached   worker.maxCachedWorkflows for this run (default: the configured value)');
    console.log('  --wft-slots    worker.maxConcurrentWorkflowTaskExecutions for this run');
    return;
  }
  const { section, command } = chooseProfile(values.temporal, 'Concurrency: incidents waiting for approval', 'npx tsx bench/concurrency.ts', usage);
  const tuning: WorkerTuning = {
    ...(values['max-cached'] ? { maxCachedWorkflows: Number(values['max-cached']) } : {}),
    ...(values['wft-slots'] ? { maxConcurrentWorkflowTaskExecutions: Number(values['wft-slots']) } : {}),
  };
  const n = Number(values.incidents);
  const runs = Number(values.runs);
  const variants = values['engine-only'] ? VARIANTS.slice(0, 1) : VARIANTS;
  const samples = new Map<string, Sample[]>(variants.map((v) => [v.name, []]));
  for (let r = 0; r < runs; r++) {
    for (const v of variants) {
      console.error(`run ${r + 1}/${runs}: ${v.name}`);
      samples.get(v.name)?.push(await once(n, tuning, v.sdkDefaults));
    }
  }
  const rows = variants.map((v) => {
    const ss = samples.get(v.name) ?? [];
    const med = (k: keyof Sample): number => median(ss.map((s) => s[k]));
    return `| ${v.name} | ${n} | ${(med('toWaiting') / 1000).toFixed(1)} | ${med('rssWaiting').toFixed(0)} | ${med('rssPeak').toFixed(0)} | ${(med('approveAll') / 1000).toFixed(1)} |`;
  });
  const table = [
    `${n} cacheFailure incidents, each waiting for approval of evict-cache, on one worker process; median of ${runs} runs, the variants alternating.`,
    '',
    '| worker | incidents | start → all waiting (s) | worker RSS while waiting (MiB) | peak worker RSS (MiB) | approve all → all closed (s) |',
    '|---|---|---|---|---|---|',
    ...rows,
    '',
    'Target: worker RSS < 400 MB with 500 waiting, and all 500 approvals complete.',
  ].join('\n');
  writeSection(section, `${table}\n\n${await machine()}`, command);
  console.log(table);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
