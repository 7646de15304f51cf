/**
 * Runbooks against a target whose signals differ from what the engine is told to look for: one
 * engine, one target per case (a copy of `alfred` with one setting garbled), every incident in
 * dry-run so that a runbook that wrongly acts shows it as a planned step without touching the drill.
 *
 * What a case asserts: the incident escalates naming what could not be observed; it never closes as
 * a false alarm or as resolved, and no step is chosen.
 */
import type { EngineConfig, TargetConfig } from '../../src/config';
import type { IncidentRecord } from '../../src/workflows/contracts';
import type { RunbookName } from '../../src/workflows/catalog';
import { startEngine, type Engine } from './engine';

export interface Garbled {
  runbook: RunbookName;
  /** The signal the garbled target lacks, as the test names it. */
  signal: string;
  /** Changes a copy of the drill target so that this signal cannot be observed. */
  garble: (t: TargetConfig) => void;
  /** The escalation names what could not be observed. */
  expect: RegExp;
  params?: Record<string, unknown>;
}

export interface GarbledRun {
  case: Garbled;
  record: IncidentRecord;
}

/** Starts one engine with a target per case, runs them all at once, and returns each incident's state once it settled. */
export async function runGarbled(cases: Garbled[], control: Array<{ runbook: RunbookName; params?: Record<string, unknown> }> = []): Promise<{ garbled: GarbledRun[]; control: IncidentRecord[] }> {
  const name = (i: number) => `garbled-${i}`;
  const engine: Engine = await startEngine({
    configure: (cfg: EngineConfig) => {
      // Every incident runs at once, beside the rest of the suite: the question here is evidence, not
      // latency, so a probe slowed by that load must not read as a spike (garbled copies and the
      // control alike: the garble stays the only difference).
      (cfg.targets.alfred as TargetConfig).thresholds.p95LatencyMs = 1000;
      cases.forEach((c, i) => {
        const t = structuredClone(cfg.targets.alfred) as TargetConfig;
        c.garble(t);
        cfg.targets[name(i)] = t;
      });
    },
  });
  try {
    const settled = (r: IncidentRecord) => r.phase === 'ESCALATED' || r.outcome !== undefined;
    const runs = await Promise.all(
      cases.map(async (c, i) => {
        const h = await engine.start({ runbook: c.runbook, target: name(i), dryRun: true, params: c.params });
        return { case: c, record: await engine.waitFor(h, settled, 100_000) };
      }),
    );
    const controls = await Promise.all(
      control.map(async (c) => {
        const h = await engine.start({ runbook: c.runbook, target: 'alfred', dryRun: true, params: c.params });
        return engine.waitFor(h, settled, 100_000);
      }),
    );
    return { garbled: runs, control: controls };
  } finally {
    await engine.stop();
  }
}

/** The summary a failed expectation prints: enough to see what the runbook concluded instead. */
export function summary(r: IncidentRecord): string {
  return JSON.stringify(
    {
      phase: r.phase,
      outcome: r.outcome,
      diagnosis: r.diagnosis,
      escalations: r.escalations,
      findings: r.findings,
      actions: r.actions.map((a) => `${a.stepId}: ${a.state}`),
    },
    null,
    1,
  );
}

/** Escalated, naming the unobserved signal; never a false alarm, never resolved, no step chosen. */
export function expectUnobserved(run: GarbledRun): void {
  const r = run.record;
  const why = `${run.case.runbook} without ${run.case.signal}:\n${summary(r)}`;
  if (r.phase !== 'ESCALATED') throw new Error(`expected an escalation: ${why}`);
  if (r.actions.length > 0) throw new Error(`expected no step to be chosen: ${why}`);
  const text = r.escalations.join('\n');
  if (!/could not observe/.test(text) || !run.case.expect.test(text)) {
    throw new Error(`expected the escalation to say it could not observe ${run.case.expect}: ${why}`);
  }
}
