/**
 * Seed 002's steps on the real drill, read-only: provider status pages (a loopback server answering
 * as Atlassian Statuspage does, and one that errors), the Redis latency run in the redis container,
 * and the compose network of api and redis. One engine, every incident at once, in dry-run.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { EngineConfig, TargetConfig } from '../../src/config';
import type { IncidentRecord } from '../../src/workflows/contracts';
import { startEngine, type Engine } from '../helpers/engine';
import { summary } from '../helpers/garbled';

jest.setTimeout(240_000);

let engine: Engine;
let pages: Server;
const hits: string[] = [];

/** Statuspage's `/api/v2/status.json` per provider under /<name>/; /broken/ answers 503. */
function statusServer(): Promise<Server> {
  const answers: Record<string, unknown> = {
    openai: { page: { name: 'OpenAI' }, status: { indicator: 'none', description: 'All Systems Operational' } },
    anthropic: { page: { name: 'Anthropic' }, status: { indicator: 'minor', description: 'Minor Service Outage' } },
    google: { page: { name: 'Google' }, status: { indicator: 'none', description: 'All Systems Operational' } },
  };
  const srv = createServer((req, res) => {
    hits.push(req.url ?? '');
    const m = /^\/(\w+)\/api\/v2\/status\.json$/.exec(req.url ?? '');
    const body = m ? answers[m[1] as string] : undefined;
    if (!body) {
      res.writeHead(503, { 'content-type': 'text/plain' }).end('unavailable');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  });
  return new Promise((resolve) => srv.listen(0, '127.0.0.1', () => resolve(srv)));
}

beforeAll(async () => {
  pages = await statusServer();
  const base = `http://127.0.0.1:${(pages.address() as AddressInfo).port}`;
  engine = await startEngine({
    configure: (cfg: EngineConfig) => {
      const withPages = (broken: string[]): TargetConfig => {
        const t = structuredClone(cfg.targets.alfred) as TargetConfig;
        for (const [name, p] of Object.entries(t.providers)) p.statusPage = `${base}/${broken.includes(name) ? 'broken' : name}/`;
        return t;
      };
      cfg.targets['pages'] = withPages([]);
      cfg.targets['pages-broken'] = withPages(['google']);
    },
  });
});

afterAll(async () => {
  await engine?.stop();
  await new Promise((r) => pages.close(r));
});

const settled = (r: IncidentRecord) => r.phase === 'ESCALATED' || r.outcome !== undefined;
const finding = (r: IncidentRecord, check: string) => r.findings.find((f) => f.check === check);

test('status pages, Redis latency and the compose network on the healthy drill', async () => {
  const run = async (runbook: 'providerDown' | 'allProvidersDown' | 'latencySpike' | 'cacheFailure', target: string) =>
    engine.waitFor(await engine.start({ runbook, target, dryRun: true, ...(runbook === 'providerDown' ? { params: { graceSeconds: 1, sampleSeconds: 1 } } : {}) }), settled, 150_000);
  const [ok, broken, all, cache, plain] = await Promise.all([
    run('providerDown', 'pages'),
    run('providerDown', 'pages-broken'),
    run('allProvidersDown', 'pages-broken'),
    run('cacheFailure', 'alfred'),
    run('providerDown', 'alfred'),
  ]);
  // INC-04 measures latency: on its own, not beside five other incidents on two cores.
  const latency = await run('latencySpike', 'alfred');

  // INC-02, pages readable: recorded as findings and told in the diagnosis; an incident on one page
  // decides nothing (the drill's traffic is healthy): still a false alarm.
  expect(ok.outcome).toBe('false-alarm');
  expect(finding(ok, 'status page openai')).toMatchObject({ ok: true, detail: expect.stringMatching(/^none: All Systems Operational/) });
  expect(finding(ok, 'status page anthropic')).toMatchObject({ ok: false, detail: expect.stringMatching(/^minor: Minor Service Outage/) });
  expect(ok.diagnosis).toMatch(/status pages: openai none \(All Systems Operational\), anthropic minor \(Minor Service Outage\), google none/);
  expect(ok.actions).toEqual([]);

  // A page that errors is unknown, never operational; it is evidence for people beside the measured
  // rates, which are healthy: the false alarm rests on them, and the diagnosis tells the page unknown.
  expect(finding(broken, 'status page google')).toMatchObject({ unknown: true, aside: true, detail: expect.stringMatching(/status\.json: HTTP 503/) });
  expect(broken.outcome).toBe('false-alarm');
  expect(broken.diagnosis).toMatch(/google unknown/);
  expect(broken.actions).toEqual([]);

  // INC-03 reads every page too; on the healthy drill the providers answer, so no cache-only mode.
  expect(finding(all, 'status page google')?.unknown).toBe(true);
  expect(all.actions).toEqual([]);
  expect(all.diagnosis).toMatch(/status pages: openai none .*google unknown/);

  // The replica's simulated providers have no page: nothing read, a note, the usual false alarm.
  expect(plain.outcome).toBe('false-alarm');
  expect(plain.findings.some((f) => f.check.startsWith('status page'))).toBe(false);
  expect(plain.timeline.some((t) => /status page openai not checked/.test(t.event))).toBe(true);
  expect(hits.every((u) => /^\/(openai|anthropic|google|broken)\/api\/v2\/status\.json$/.test(u))).toBe(true);

  // INC-04: the seed's redis-cli --latency -i 1 ran in the redis container.
  expect(finding(latency, 'Redis latency (redis-cli --latency)')).toMatchObject({
    ok: true,
    detail: expect.stringMatching(/^avg [\d.]+ ms, min \d+ ms, max \d+ ms over \d+ PINGs \(redis-cli -p 6379 --latency -i 1 in the redis container/),
  });
  expect(latency.outcome).toBe('false-alarm');

  // INC-05: the drill's services share the host network, so there is no network to be cut off from.
  expect(finding(cache, 'docker network alfred_default')).toMatchObject({ ok: true, detail: expect.stringMatching(/api and redis share the host network/) });
  expect(cache.outcome).toBe('false-alarm');
  for (const r of [ok, latency, cache, plain]) expect(r.outcome === 'false-alarm' ? '' : summary(r)).toBe('');
});
