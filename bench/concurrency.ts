/**
 * Concurrency: N open incidents waiting for approval on one worker process. The drill's Redis is
 * filled to maxmemory, N cacheFailure incidents are started (each on its own target, a copy of the
 * drill), and each diagnoses "at maxmemory" and waits for approval of evict-cache. Measured: the
 * worker's resident memory while all N wait (peak of 1 s samples), then the time from sending all N
 * approvals until all N incidents are closed (the first eviction fixes Redis; the other N-1 re-check
 * their precondition under their lock and skip, as they must).
 *
 * Touches the shared drill: run it alone (`flock /tmp/drill.lock` if tests may be running).
 *   npx tsx bench/concurrency.ts [--incidents 500] [--runs 5]
 */
import { parseArgs } from 'node:util';
import Redis from 'ioredis';
import { buildIncidentInput } from '../src/lib/incident-input';
import { approveSignal } from '../src/workflows/contracts';
import { startBenchEngine, type BenchEngine } from './processes';
import { machine, median, writeSection } from './report';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const PREFIX = 'alfred:cache:bench-fill:';

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

async function unfill(port: number): Promise<void> {
  const r = new Redis({ port });
  try {
    let cursor = '0';
    do {
      const [next, keys] = await r.scan(cursor, 'MATCH', `${PREFIX}*`, 'COUNT', 500);
      cursor = next;
      if (keys.length) await r.unlink(...keys);
    } while (cursor !== '0');
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

async function once(n: number, redisPort: number): Promise<Sample> {
  const engine = await startBenchEngine({ targets: n, worker: true, receiver: false, policy: { cooldownMs: 0 } });
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
    // Waiting = phase MITIGATE with the approval pending; the search attribute says MITIGATE.
    for (;;) {
      const waiting = await count(engine, `IncidentPhase = 'MITIGATE' AND ExecutionStatus = 'Running'`);
      if (waiting >= n) break;
      if (Date.now() - t0 > 600_000) throw new Error(`only ${waiting}/${n} incidents waiting after 10 min`);
      await sleep(1000);
    }
    const toWaiting = Date.now() - t0;
    await sleep(3000);
    const rssWaiting = engine.workerRssMiB();
    console.error(`${n} incidents waiting after ${(toWaiting / 1000).toFixed(1)} s; worker RSS ${rssWaiting.toFixed(0)} MiB`);

    const t1 = Date.now();
    await pool(engine.targets, 32, async (target) => {
      await engine.client.workflow.getHandle(`bench-${target}`).signal(approveSignal, { stepId: 'evict-cache', approver: 'alice' });
    });
    for (;;) {
      const done = await count(engine, `ExecutionStatus = 'Completed'`);
      if (done >= n) break;
      if (Date.now() - t1 > 600_000) throw new Error(`only ${done}/${n} incidents closed 10 min after approval`);
      await sleep(500);
    }
    const approveAll = Date.now() - t1;
    console.error(`all ${n} approved and closed in ${(approveAll / 1000).toFixed(1)} s; peak RSS ${peak.toFixed(0)} MiB`);
    return { toWaiting, rssWaiting, rssPeak: Math.max(peak, rssWaiting), approveAll };
  } finally {
    clearInterval(sampler);
    await unfill(redisPort);
    await engine.stop();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { incidents: { type: 'string', default: '500' }, runs: { type: 'string', default: '5' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    console.log('usage: npx tsx bench/concurrency.ts [--incidents 500] [--runs 5]   (fills the drill Redis; run alone)');
    return;
  }
  const n = Number(values.incidents);
  const runs = Number(values.runs);
  const samples: Sample[] = [];
  for (let r = 0; r < runs; r++) {
    samples.push(await once(n, 56379));
    console.error(`run ${r + 1}/${runs} done`);
  }
  const med = (k: keyof Sample): number => median(samples.map((s) => s[k]));
  const table = [
    `${n} cacheFailure incidents, each waiting for approval of evict-cache, on one worker process; median of ${runs} runs.`,
    '',
    '| incidents | start → all waiting (s) | worker RSS while waiting (MiB) | peak worker RSS (MiB) | approve all → all closed (s) |',
    '|---|---|---|---|---|',
    `| ${n} | ${(med('toWaiting') / 1000).toFixed(1)} | ${med('rssWaiting').toFixed(0)} | ${med('rssPeak').toFixed(0)} | ${(med('approveAll') / 1000).toFixed(1)} |`,
    '',
    'Target: worker RSS < 400 MB with 500 waiting, and all 500 approvals complete.',
  ].join('\n');
  writeSection('Concurrency: incidents waiting for approval', `${table}\n\n${await machine()}`, 'npx tsx bench/concurrency.ts');
  console.log(table);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
