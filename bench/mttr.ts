/**
 * MTTR of an auto-remediated drill: the drill's Redis container is SIGKILLed, an Alertmanager
 * notification reaches the receiver process, the worker process runs cacheFailure (diagnose →
 * restart the container → verify), and Redis answers PONG again. Timed from the alert reaching the
 * receiver to verification passed, split by the incident's own timeline (workflow clock):
 *   diagnose  opened → diagnosis recorded
 *   mitigate  diagnosis → the restart step done (lock, precondition, restart through the Docker API)
 *   verify    restart done → verification passed (PING, write probe, the api sees Redis again)
 * plus the moment this process itself first got PONG from the restarted Redis.
 *
 * Touches the shared drill: run it alone (`flock /tmp/drill.lock` if tests may be running).
 *   npx tsx bench/mttr.ts [--runs 5]
 */
import { parseArgs } from 'node:util';
import Docker from 'dockerode';
import Redis from 'ioredis';
import { incidentWorkflowId, type IncidentRecord } from '../src/workflows/contracts';
import { chooseProfile, clearGuards, connect, startBenchEngine } from './processes';
import { machine, median, writeSection } from './report';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function pong(port: number): Promise<boolean> {
  const r = new Redis({ port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 500 });
  r.on('error', () => undefined);
  try {
    await r.connect();
    return (await r.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    r.disconnect();
  }
}

interface Sample {
  total: number;
  diagnose: number;
  mitigate: number;
  verify: number;
  pong: number;
}

const at = (rec: IncidentRecord, re: RegExp): number => {
  const t = rec.timeline.find((e) => re.test(e.event));
  if (!t) throw new Error(`timeline has no ${re}: ${rec.timeline.map((e) => e.event).join(' | ')}`);
  return Date.parse(t.at);
};

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { runs: { type: 'string', default: '5' }, temporal: { type: 'string', default: 'dev' }, help: { type: 'boolean', short: 'h' } },
  });
  const usage = 'usage: npx tsx bench/mttr.ts [--runs 5] [--temporal dev|cluster]   (kills the drill Redis; run alone)';
  if (values.help) {
    console.log(usage);
    return;
  }
  const { section, command } = chooseProfile(values.temporal, 'MTTR of an auto-remediated drill', 'npx tsx bench/mttr.ts', usage);
  const runs = Number(values.runs);
  const client = await connect();
  await clearGuards(client, 'alfred');
  await client.connection.close();
  // Back-to-back drills: a cooldown would (rightly) refuse the second restart within 10 minutes.
  const engine = await startBenchEngine({
    targets: 0,
    worker: true,
    receiver: true,
    route: { alertname: 'AlfredRedisDown', runbook: 'cacheFailure' },
    policy: { cooldownMs: 0 },
  });
  const docker = new Docker({ socketPath: engine.config.docker.socketPath });
  const redisPort = engine.config.targets.alfred?.redis?.port ?? 6379;
  const samples: Sample[] = [];
  try {
    for (let r = 0; r < runs; r++) {
      const [c] = await docker.listContainers({ filters: { label: ['com.docker.compose.project=alfred', 'com.docker.compose.service=redis'] } });
      if (!c) throw new Error('the drill Redis is not running: scripts/stack.sh up');
      await docker.getContainer(c.Id).kill();
      while (await pong(redisPort)) await sleep(50);

      const t0 = Date.now();
      const status = await engine.postAlert('AlfredRedisDown', 'alfred', `mttr-${engine.run}-${r}`);
      if (status !== 200 && status !== 202) throw new Error(`receiver answered ${status}`);
      while (!(await pong(redisPort))) await sleep(20);
      const pongAt = Date.now();

      const h = engine.client.workflow.getHandle(incidentWorkflowId('cacheFailure', 'alfred'));
      const rec = (await h.result()) as IncidentRecord;
      if (rec.outcome !== 'resolved') throw new Error(`run ${r + 1}: incident ${rec.outcome}: ${rec.escalations.join('; ')}`);
      const opened = Date.parse(rec.openedAt);
      const diagnosed = at(rec, /^diagnosis:/);
      const restarted = at(rec, /^restart-redis: /);
      const verified = at(rec, /^verification passed/);
      const s: Sample = { total: verified - t0, diagnose: diagnosed - opened, mitigate: restarted - diagnosed, verify: verified - restarted, pong: pongAt - t0 };
      samples.push(s);
      console.error(`run ${r + 1}/${runs}: ${(s.total / 1000).toFixed(2)} s (diagnose ${s.diagnose} ms, mitigate ${s.mitigate} ms, verify ${s.verify} ms; PONG after ${s.pong} ms)`);
      await sleep(500);
    }
  } finally {
    await engine.stop();
  }
  const med = (k: keyof Sample): string => (median(samples.map((s) => s[k])) / 1000).toFixed(2);
  const table = [
    `Redis SIGKILLed, alert posted to the receiver; median of ${runs} runs (seconds).`,
    '',
    '| alert → verified | diagnose | mitigate | verify | alert → PONG seen by the bench |',
    '|---|---|---|---|---|',
    `| ${med('total')} | ${med('diagnose')} | ${med('mitigate')} | ${med('verify')} | ${med('pong')} |`,
    '',
    'Target: alert → verified PONG < 15 s. Alertmanager and Prometheus delays (scrape, `for`, group_wait) come before the receiver and are not ours.',
  ].join('\n');
  writeSection(section, `${table}\n\n${await machine()}`, command);
  console.log(table);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
