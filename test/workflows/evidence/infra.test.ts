/**
 * Evidence before conclusions on the real drill (healthy): the infrastructure runbooks (INC-01,
 * INC-04, INC-05, INC-11, database pressure) against copies of the drill target whose settings point
 * at signals the replica does not have. Each must escalate naming what it could not observe; the
 * same runbooks on the ungarbled target close as false alarms, so the garble is what changed the
 * conclusion. One engine, every incident at once, all in dry-run.
 */
import type { TargetConfig } from '../../../src/config';
import { expectUnobserved, runGarbled, summary, type Garbled, type GarbledRun } from '../../helpers/garbled';
import type { IncidentRecord } from '../../../src/workflows/contracts';

jest.setTimeout(240_000);

const pg = (t: TargetConfig) => t.postgres as NonNullable<TargetConfig['postgres']>;

const cases: Garbled[] = [
  {
    runbook: 'databaseUnreachable',
    signal: 'the pool gauge (metrics.dbPoolTotal)',
    garble: (t) => {
      t.metrics.dbPoolTotal = 'garbled_db_pool_total';
    },
    expect: /api DB pool: metric garbled_db_pool_total not in \/metrics \(setting metrics\.dbPoolTotal\)/,
  },
  {
    runbook: 'databaseUnreachable',
    signal: 'SELECT 1 (postgres.database)',
    garble: (t) => {
      pg(t).database = 'garbled_db';
    },
    expect: /could not observe SELECT 1: .*garbled_db.*postgres\.database/,
  },
  {
    runbook: 'databaseUnreachable',
    signal: 'the data-dir disk (postgres.dataDir)',
    garble: (t) => {
      pg(t).dataDir = '/garbled/data/dir';
    },
    expect: /data-dir disk: df -P \/garbled\/data\/dir failed .*postgres\.dataDir/,
  },
  {
    runbook: 'latencySpike',
    signal: 'the pool gauge (metrics.dbPoolWaiting)',
    garble: (t) => {
      t.metrics.dbPoolWaiting = 'garbled_db_pool_waiting';
    },
    expect: /api DB pool: metric garbled_db_pool_waiting not in \/metrics \(setting metrics\.dbPoolWaiting\)/,
  },
  {
    runbook: 'cacheFailure',
    signal: "the api's view of Redis (api.fields.health.redis)",
    garble: (t) => {
      t.api.fields.health.redis = 'garbled_redis';
    },
    expect: /api \/health redis: .*garbled_redis.*api\.fields\.health\.redis/,
  },
  {
    runbook: 'memoryLeak',
    signal: 'the resident-memory series (metrics.residentMemory)',
    garble: (t) => {
      t.metrics.residentMemory = 'garbled_resident_memory_bytes';
    },
    expect: /service resident memory \(\/metrics\): metric garbled_resident_memory_bytes not in \/metrics \(setting metrics\.residentMemory\)/,
  },
  {
    runbook: 'databasePressure',
    signal: 'connections, locks and slow queries (postgres.adminUser)',
    garble: (t) => {
      pg(t).adminUser = 'garbled_admin';
    },
    expect: /could not observe connections, locks and slow queries: .*garbled_admin.*postgres\.adminUser/,
  },
];

const runbooks = ['databaseUnreachable', 'latencySpike', 'cacheFailure', 'memoryLeak', 'databasePressure'] as const;

let garbled: GarbledRun[] = [];
let control: IncidentRecord[] = [];

beforeAll(async () => {
  ({ garbled, control } = await runGarbled(
    cases,
    runbooks.map((runbook) => ({ runbook })),
  ));
});

test.each(cases.map((c, i) => [c.runbook, c.signal, i] as const))('%s without %s escalates naming it', (_runbook, _signal, i) => {
  expectUnobserved(garbled[i] as GarbledRun);
});

test.each(runbooks.map((r, i) => [r, i] as const))('%s on the ungarbled drill is a false alarm', (runbook, i) => {
  const r = control[i] as IncidentRecord;
  if (r.outcome !== 'false-alarm') throw new Error(`expected ${runbook} on the healthy drill to be a false alarm:\n${summary(r)}`);
  expect(r.findings.some((f) => f.unknown)).toBe(false);
});
