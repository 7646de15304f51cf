/** Opening an incident by hand (start, rollback) and following it until it closes. */
import type { Client } from '@temporalio/client';
import type { EngineConfig } from '../../src/config';
import { buildIncidentInput, InputError } from '../../src/lib/incident-input';
import { RUNBOOKS } from '../../src/workflows/catalog';
import {
  incidentWorkflowId,
  statusQuery,
  type IncidentInput,
  type IncidentRecord,
  type Severity,
} from '../../src/workflows/contracts';
import type { Ctx, Options, Values } from './command';
import { Failure, UsageError } from './errors';
import { renderIncident } from './render';

/** Options of every command that opens an incident. */
export const START_OPTIONS = {
  target: { type: 'string', value: 'T', help: 'configured target (required; unknown targets are refused)' },
  'dry-run': { type: 'boolean', help: 'diagnose and describe what would be done; change nothing' },
  wait: { type: 'boolean', help: 'follow the incident, printing phase and steps, until it closes' },
  severity: { type: 'string', value: 'N', complete: ['1', '2', '3', '4'], help: "1..4 (default: the runbook's)" },
  param: {
    type: 'string',
    multiple: true,
    value: 'key=value',
    help: 'runbook parameter (repeatable); values are JSON if they parse, else strings',
  },
  summary: { type: 'string', value: 'TEXT', help: 'one line shown in the UI' },
} as const satisfies Options;

export type StartValues = Values<typeof START_OPTIONS>;

/** An incident ready to start: its runbook and its input, checked. */
export interface StartRequest {
  runbook: string;
  input: IncidentInput;
}

export function parseParams(list: string[] | undefined): Record<string, unknown> {
  const params: Record<string, unknown> = {};
  for (const p of list ?? []) {
    const i = p.indexOf('=');
    if (i <= 0) throw new UsageError(`--param must be key=value, got "${p}"`);
    const raw = p.slice(i + 1);
    try {
      params[p.slice(0, i)] = JSON.parse(raw);
    } catch {
      params[p.slice(0, i)] = raw;
    }
  }
  return params;
}

function parseSeverity(v: string | undefined): Severity | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (![1, 2, 3, 4].includes(n)) throw new UsageError('--severity must be 1, 2, 3 or 4');
  return n as Severity;
}

/** Stands in for the requester while a start is checked, before the credential is asked who it is. */
const REQUESTER_PENDING = 'credential-owner';

/** The incident a start or rollback asks for, checked before anything is sent. */
export function buildStart(
  cfg: EngineConfig,
  runbook: string,
  opts: StartValues,
  params: Record<string, unknown>,
): StartRequest {
  if (!opts.target) throw new UsageError('--target is required');
  const severity = parseSeverity(opts.severity);
  try {
    return buildIncidentInput(cfg, {
      runbook,
      target: opts.target,
      requestedBy: REQUESTER_PENDING,
      dryRun: opts['dry-run'] ?? false,
      params,
      ...(severity ? { severity } : {}),
      ...(opts.summary ? { summary: opts.summary } : {}),
      alert: { source: 'client', name: `manual ${runbook}`, status: 'firing', receivedAt: new Date().toISOString() },
    });
  } catch (err) {
    if (err instanceof InputError) throw new UsageError(err.message);
    throw err;
  }
}

/** Follows an incident until it closes, printing each change of phase, step or pending approval. */
async function follow(client: Client, id: string, json: boolean): Promise<IncidentRecord> {
  const h = client.workflow.getHandle(id);
  let seen = '';
  let timelineSeen = 0;
  let warned = false;
  for (;;) {
    const desc = await h.describe();
    if (desc.status.name !== 'RUNNING') {
      const rec = (await h.result()) as IncidentRecord;
      if (!json)
        for (const t of rec.timeline.slice(timelineSeen)) console.log(`${t.at.slice(11, 19)} [${t.phase}] ${t.event}`);
      return rec;
    }
    let r: IncidentRecord;
    try {
      r = await h.query(statusQuery);
    } catch (err) {
      if (!warned && !json)
        console.error(
          `no worker answers on task queue "${desc.taskQueue}" yet (${(err as Error).message}); still waiting`,
        );
      warned = true;
      continue;
    }
    if (!json) {
      for (const t of r.timeline.slice(timelineSeen)) console.log(`${t.at.slice(11, 19)} [${t.phase}] ${t.event}`);
      timelineSeen = r.timeline.length;
      const pend = r.pending.map((p) => `${p.stepId}:${p.approvals.length}/${p.needed}`).join(',');
      const key = `${r.phase}|${pend}`;
      if (key !== seen && r.pending.length > 0) {
        for (const p of r.pending)
          console.log(
            `  waiting for ${p.needed === 2 ? 'two approvals' : 'approval'}: remediate approve ${id} ${p.stepId}`,
          );
      }
      if (key !== seen && r.phase === 'ESCALATED')
        console.log(`  escalated; when handled: remediate close ${id} --note "what you did"`);
      seen = key;
    }
    await new Promise((res) => setTimeout(res, 1000));
  }
}

/** Starts the incident as `requestedBy` and, with --wait, follows it; exit 0 when it resolved. */
export async function startIncident(
  ctx: Ctx<typeof START_OPTIONS>,
  client: Client,
  cfg: EngineConfig,
  built: StartRequest,
  requestedBy: string,
): Promise<number> {
  const { opts } = ctx;
  const target = built.input.target;
  const meta = RUNBOOKS[built.runbook as keyof typeof RUNBOOKS];
  const workflowId = incidentWorkflowId(built.runbook, target);
  try {
    await client.workflow.start(built.runbook, {
      workflowId,
      taskQueue: cfg.temporal.taskQueue,
      args: [{ ...built.input, requestedBy }],
    });
  } catch (err) {
    // Loaded here, as in incidents.ts: commands that never reach Temporal start without the client.
    const { WorkflowExecutionAlreadyStartedError } = await import('@temporalio/client');
    if (err instanceof WorkflowExecutionAlreadyStartedError) {
      throw new Failure(
        `an incident is already open for ${built.runbook} on ${target}: ${workflowId} (remediate show ${workflowId})`,
      );
    }
    throw err;
  }
  if (!opts.json)
    console.log(
      `started ${workflowId}: ${meta.scenario} ${meta.title} on ${target}${opts['dry-run'] ? ' (dry-run)' : ''}`,
    );
  if (!opts.wait) {
    if (opts.json) ctx.print({ workflowId, started: true }, '');
    return 0;
  }
  const rec = await follow(client, workflowId, opts.json ?? false);
  ctx.print(rec, `\n${renderIncident(rec)}`);
  return rec.outcome === 'resolved' || rec.outcome === 'dry-run' || rec.outcome === 'false-alarm' ? 0 : 1;
}
