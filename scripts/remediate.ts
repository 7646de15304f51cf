/**
 * remediate: the engineer's client for incidents. Start runbooks (rollback first among them), watch
 * them, approve or reject steps, close escalated incidents. Run `remediate --help`.
 *
 * Exit codes: 0 success; 1 the operation failed or the incident did not resolve; 2 bad usage or input.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { temporal } from '@temporalio/proto';
import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  type Client,
} from '@temporalio/client';
import { ConfigError, loadConfig, type EngineConfig } from '../src/config';
import { buildIncidentInput, InputError } from '../src/lib/incident-input';
import { applySchedules } from '../src/lib/schedules';
import { connectClient } from '../src/lib/temporal';
import { normaliseHistory, renderPostmortem } from '../src/postmortem';
import { RUNBOOKS } from '../src/workflows/catalog';
import {
  closeSignal,
  decideUpdate,
  incidentWorkflowId,
  statusQuery,
  type IncidentInput,
  type IncidentRecord,
  type Severity,
} from '../src/workflows/contracts';

export class UsageError extends Error {}
export class Failure extends Error {}

const HELP = `remediate — start, watch and decide remediation incidents

Usage:
  remediate runbooks                                   list the runbooks this engine runs
  remediate list [--all] [--runbook R] [--target T]    open incidents (--all: closed ones too)
  remediate show <incident-id>                         one incident: phase, findings, pending steps, actions
  remediate start <runbook> --target T [options]       open an incident by hand
  remediate rollback --target T [options]              roll back to the last known good release
  remediate approve <incident-id> <step-id> --as NAME [--comment TEXT]
  remediate reject  <incident-id> <step-id> --as NAME [--comment TEXT]
  remediate close   <incident-id> --as NAME [--note TEXT]   close an escalated incident after handling it
  remediate postmortem <incident-id> [--out FILE]      the post-mortem, written from the incident's event history
  remediate schedules apply                            create or update the engine's schedules (daily TLS check)

Options for start and rollback:
  --target T            configured target (required; unknown targets are refused)
  --dry-run             diagnose and describe what would be done; change nothing
  --wait                follow the incident, printing phase and steps, until it closes
  --as NAME             who is asking (default: $USER); you cannot approve your own incident
  --severity N          1..4 (default: the runbook's)
  --param key=value     runbook parameter (repeatable); values are JSON if they parse, else strings
  --summary TEXT        one line shown in the UI
Rollback only:
  --services a,b        services in rollout order (default: the target's rollback order)
  --tag TAG             roll back to this tag (default: last known good)
  --migration-downgrade downgrade the newest migration (needs approval)
  --restore-backup      restore the latest backup (needs two approvers)

Global: --json (machine-readable output), --config FILE (default: $ENGINE_CONFIG or config/engine.yaml), -h/--help.
Exit codes: 0 success, 1 failed or not resolved, 2 bad usage or input.`;

const OPTIONS = {
  help: { type: 'boolean', short: 'h' },
  json: { type: 'boolean' },
  config: { type: 'string' },
  all: { type: 'boolean' },
  runbook: { type: 'string' },
  target: { type: 'string' },
  'dry-run': { type: 'boolean' },
  wait: { type: 'boolean' },
  as: { type: 'string' },
  severity: { type: 'string' },
  param: { type: 'string', multiple: true },
  summary: { type: 'string' },
  services: { type: 'string' },
  tag: { type: 'string' },
  'migration-downgrade': { type: 'boolean' },
  'restore-backup': { type: 'boolean' },
  comment: { type: 'string' },
  note: { type: 'string' },
  out: { type: 'string' },
} as const;

type Opts = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>['values'];

const ID_PATTERN = /^[\w.:/-]{1,200}$/;

function out(opts: Opts, json: unknown, text: string): void {
  console.log(opts.json ? JSON.stringify(json, null, 2) : text);
}

function requireName(opts: Opts): string {
  const name = opts.as ?? '';
  if (!/^[\w.@-]{1,64}$/.test(name)) throw new UsageError('--as NAME is required (letters, digits, . _ - @)');
  return name;
}

function incidentId(v: string | undefined): string {
  if (!v) throw new UsageError('an incident id is required (see `remediate list`)');
  if (!ID_PATTERN.test(v)) throw new UsageError(`"${v}" is not a valid incident id`);
  return v;
}

function parseParams(list: string[] | undefined): Record<string, unknown> {
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

function render(r: IncidentRecord): string {
  const lines = [
    `${r.incidentId}  ${r.scenario} ${r.title}`,
    `  target ${r.target} · SEV-${r.severity} · phase ${r.phase}${r.outcome ? ` · outcome ${r.outcome}` : ''}${r.dryRun ? ' · dry-run' : ''} · opened ${r.openedAt} by ${r.requestedBy}`,
  ];
  if (r.diagnosis) lines.push(`  diagnosis: ${r.diagnosis}`);
  for (const f of r.findings) lines.push(`  ${f.ok ? 'ok  ' : 'FAIL'} ${f.check}: ${f.detail}`);
  for (const p of r.pending) {
    lines.push(`  WAITING ${p.stepId} (${p.risk}, ${p.approvals.length}/${p.needed}, ${p.tier}): ${p.title}`);
    lines.push(`    remediate approve ${r.incidentId} ${p.stepId} --as <name>`);
  }
  for (const a of r.actions) lines.push(`  step ${a.stepId} [${a.risk}] ${a.state}${a.detail ? `: ${a.detail}` : ''}`);
  for (const e of r.escalations) lines.push(`  escalated: ${e}`);
  if (r.phase === 'ESCALATED') lines.push(`    remediate close ${r.incidentId} --as <name> --note "what you did"`);
  if (r.parentIncidentId) lines.push(`  child of ${r.parentIncidentId}`);
  for (const c of r.children) lines.push(`  child incident ${c}  (remediate show ${c})`);
  if (r.comms) lines.push(`  status updates posted: ${r.comms.updates}${r.comms.lastStage ? ` (last: ${r.comms.lastStage})` : ''}`);
  if (r.report) lines.push('', r.report);
  if (r.comms?.resolution) lines.push('', '--- resolution summary (seed 001) ---', r.comms.resolution);
  else if (r.comms?.initialResponse) lines.push('', '--- initial response (seed 001) ---', r.comms.initialResponse);
  return lines.join('\n');
}

async function status(client: Client, id: string): Promise<IncidentRecord> {
  try {
    return await client.workflow.getHandle(id).query(statusQuery);
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) throw new Failure(`no incident "${id}" (see \`remediate list --all\`)`);
    throw err;
  }
}

/** Follows an incident until it closes, printing each change of phase, step or pending approval. */
async function follow(client: Client, id: string, opts: Opts): Promise<IncidentRecord> {
  const h = client.workflow.getHandle(id);
  let seen = '';
  let timelineSeen = 0;
  let warned = false;
  for (;;) {
    const desc = await h.describe();
    if (desc.status.name !== 'RUNNING') {
      const rec = (await h.result()) as IncidentRecord;
      if (!opts.json)
        for (const t of rec.timeline.slice(timelineSeen)) console.log(`${t.at.slice(11, 19)} [${t.phase}] ${t.event}`);
      return rec;
    }
    let r: IncidentRecord;
    try {
      r = await h.query(statusQuery);
    } catch (err) {
      if (!warned && !opts.json)
        console.error(
          `no worker answers on task queue "${desc.taskQueue}" yet (${(err as Error).message}); still waiting`,
        );
      warned = true;
      continue;
    }
    if (!opts.json) {
      for (const t of r.timeline.slice(timelineSeen)) console.log(`${t.at.slice(11, 19)} [${t.phase}] ${t.event}`);
      timelineSeen = r.timeline.length;
      const pend = r.pending.map((p) => `${p.stepId}:${p.approvals.length}/${p.needed}`).join(',');
      const key = `${r.phase}|${pend}`;
      if (key !== seen && r.pending.length > 0) {
        for (const p of r.pending)
          console.log(
            `  waiting for ${p.needed === 2 ? 'two approvals' : 'approval'}: remediate approve ${id} ${p.stepId} --as <name>`,
          );
      }
      if (key !== seen && r.phase === 'ESCALATED')
        console.log(`  escalated; when handled: remediate close ${id} --as <name>`);
      seen = key;
    }
    await new Promise((res) => setTimeout(res, 1000));
  }
}

async function startIncident(
  client: Client,
  cfg: EngineConfig,
  runbook: string,
  opts: Opts,
  params: Record<string, unknown>,
): Promise<number> {
  if (!opts.target) throw new UsageError('--target is required');
  let built: { runbook: string; input: IncidentInput };
  try {
    built = buildIncidentInput(cfg, {
      runbook,
      target: opts.target,
      requestedBy: opts.as ?? process.env.USER ?? 'unknown',
      dryRun: opts['dry-run'] ?? false,
      params,
      ...(parseSeverity(opts.severity) ? { severity: parseSeverity(opts.severity) } : {}),
      ...(opts.summary ? { summary: opts.summary } : {}),
      alert: { source: 'client', name: `manual ${runbook}`, status: 'firing', receivedAt: new Date().toISOString() },
    });
  } catch (err) {
    if (err instanceof InputError) throw new UsageError(err.message);
    throw err;
  }
  const meta = RUNBOOKS[built.runbook as keyof typeof RUNBOOKS];
  const workflowId = incidentWorkflowId(built.runbook, opts.target);
  try {
    await client.workflow.start(built.runbook, {
      workflowId,
      taskQueue: cfg.temporal.taskQueue,
      args: [built.input],
    });
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) {
      throw new Failure(
        `an incident is already open for ${built.runbook} on ${opts.target}: ${workflowId} (remediate show ${workflowId})`,
      );
    }
    throw err;
  }
  if (!opts.json)
    console.log(
      `started ${workflowId}: ${meta.scenario} ${meta.title} on ${opts.target}${opts['dry-run'] ? ' (dry-run)' : ''}`,
    );
  if (!opts.wait) {
    if (opts.json) out(opts, { workflowId, started: true }, '');
    return 0;
  }
  const rec = await follow(client, workflowId, opts);
  out(opts, rec, `\n${render(rec)}`);
  return rec.outcome === 'resolved' || rec.outcome === 'dry-run' || rec.outcome === 'false-alarm' ? 0 : 1;
}

async function decide(client: Client, decision: 'approve' | 'reject', pos: string[], opts: Opts): Promise<number> {
  const id = incidentId(pos[0]);
  const stepId = pos[1];
  if (!stepId) throw new UsageError(`usage: remediate ${decision} <incident-id> <step-id> --as NAME`);
  const approver = requireName(opts);
  await status(client, id); // clear error for an unknown incident
  try {
    const res = await client.workflow.getHandle(id).executeUpdate(decideUpdate, {
      args: [{ stepId, approver, decision, ...(opts.comment ? { comment: opts.comment } : {}) }],
    });
    out(
      opts,
      res,
      `${decision === 'approve' ? 'approved' : 'rejected'} ${stepId} on ${id}: step is now ${res.state} (${res.approvals.length} approval(s): ${res.approvals.join(', ') || 'none'})`,
    );
    return 0;
  } catch (err) {
    if (err instanceof WorkflowUpdateFailedError) throw new Failure(`refused: ${err.cause?.message ?? err.message}`);
    throw err;
  }
}

async function list(client: Client, opts: Opts): Promise<number> {
  const clauses = ["IncidentRunbook != ''"];
  if (!opts.all) clauses.push("ExecutionStatus = 'Running'");
  // Names only (a target name is [a-z0-9-]+, a runbook one of the catalog's): nothing else reaches the query.
  if (opts.runbook !== undefined && !/^[A-Za-z]{1,60}$/.test(opts.runbook)) throw new UsageError(`--runbook: not a runbook name: ${JSON.stringify(opts.runbook.slice(0, 60))}`);
  if (opts.target !== undefined && !/^[a-z0-9-]{1,100}$/.test(opts.target)) throw new UsageError(`--target: not a target name (a-z, 0-9, -): ${JSON.stringify(opts.target.slice(0, 60))}`);
  if (opts.runbook) clauses.push(`IncidentRunbook = '${opts.runbook}'`);
  if (opts.target) clauses.push(`IncidentTarget = '${opts.target}'`);
  const rows: {
    id: string;
    status: string;
    runbook: string;
    target: string;
    phase: string;
    severity: number;
    started: string;
  }[] = [];
  for await (const wf of client.workflow.list({ query: clauses.join(' AND ') })) {
    const sa = wf.searchAttributes as Record<string, unknown[] | undefined>;
    rows.push({
      id: wf.workflowId,
      status: wf.status.name,
      runbook: String(sa.IncidentRunbook?.[0] ?? wf.type),
      target: String(sa.IncidentTarget?.[0] ?? ''),
      phase: String(sa.IncidentPhase?.[0] ?? ''),
      severity: Number(sa.IncidentSeverity?.[0] ?? 0),
      started: wf.startTime.toISOString(),
    });
    if (rows.length >= 200) break;
  }
  const text = rows.length
    ? rows
        .map((r) => `${r.id.padEnd(44)} SEV-${r.severity} ${r.phase.padEnd(11)} ${r.status.padEnd(10)} ${r.started}`)
        .join('\n')
    : opts.all
      ? 'no incidents'
      : 'no open incidents';
  out(opts, rows, text);
  return 0;
}

/** Runs one command; resolves to the exit code, rejects with UsageError (exit 2) or Failure (exit 1). */
export async function run(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const opts = parsed.values;
  const [command, ...pos] = parsed.positionals;
  if (opts.help || !command) {
    console.log(HELP);
    return command || opts.help ? 0 : 2;
  }
  if (command === 'runbooks') {
    const rows = Object.entries(RUNBOOKS).map(([name, m]) => ({
      name,
      scenario: m.scenario,
      severity: m.severity,
      title: m.title,
    }));
    out(
      opts,
      rows,
      rows.map((r) => `${r.name.padEnd(22)} ${r.scenario.padEnd(9)} SEV-${r.severity}  ${r.title}`).join('\n'),
    );
    return 0;
  }
  const known = ['list', 'show', 'start', 'rollback', 'approve', 'reject', 'close', 'postmortem', 'schedules'];
  if (!known.includes(command)) throw new UsageError(`unknown command "${command}" (see remediate --help)`);

  let cfg: EngineConfig;
  try {
    cfg = loadConfig(opts.config ?? process.env.ENGINE_CONFIG ?? 'config/engine.yaml');
  } catch (err) {
    if (err instanceof ConfigError) throw new UsageError(err.message);
    throw err;
  }
  // Validate what can be validated before connecting.
  if (command === 'start' && !pos[0]) throw new UsageError('usage: remediate start <runbook> --target T');
  const client = await connectClient(cfg);
  try {
    switch (command) {
      case 'list':
        return await list(client, opts);
      case 'show': {
        const rec = await status(client, incidentId(pos[0]));
        out(opts, rec, render(rec));
        return 0;
      }
      case 'start':
        return await startIncident(client, cfg, pos[0] as string, opts, parseParams(opts.param));
      case 'rollback': {
        const params = parseParams(opts.param);
        if (opts.services)
          params.services = opts.services
            .split(',')
            .map((s) => s.trim())
            .filter(Boolean);
        if (opts.tag) params.tag = opts.tag;
        if (opts['migration-downgrade']) params.migrationDowngrade = true;
        if (opts['restore-backup']) params.restoreBackup = true;
        return await startIncident(client, cfg, 'rollback', opts, params);
      }
      case 'approve':
      case 'reject':
        return await decide(client, command, pos, opts);
      case 'schedules': {
        if (pos[0] !== 'apply') throw new UsageError('usage: remediate schedules apply');
        const applied = await applySchedules(client, cfg);
        out(opts, applied, applied.map((a) => `${a.state} ${a.scheduleId}: ${a.description}`).join('\n') || 'no schedules configured');
        return 0;
      }
      case 'postmortem': {
        const id = incidentId(pos[0]);
        // The history is all it needs: no worker has to answer a query for a closed incident.
        const history = await client.workflow
          .getHandle(id)
          .fetchHistory()
          .catch((err: unknown) => {
            if (err instanceof WorkflowNotFoundError || /not found/i.test(String((err as Error).message)))
              throw new Failure(`no incident "${id}" (see \`remediate list --all\`)`);
            throw err;
          });
        const md = renderPostmortem(
          normaliseHistory(history as { events?: unknown[] }, (n) =>
            String(temporal.api.enums.v1.EventType[n] ?? n).replace(/^EVENT_TYPE_/, ''),
          ),
        );
        const stored = path.join(process.env.STACK_DIR ?? '.stack', 'postmortems', `${id}.md`);
        mkdirSync(path.dirname(stored), { recursive: true });
        writeFileSync(stored, md);
        if (opts.out) writeFileSync(opts.out, md);
        out(opts, { incidentId: id, stored, markdown: md }, md);
        return 0;
      }
      case 'close': {
        const id = incidentId(pos[0]);
        const by = requireName(opts);
        const rec = await status(client, id);
        if (rec.phase !== 'ESCALATED')
          throw new Failure(`${id} is ${rec.phase}, not escalated; only escalated incidents are closed by hand`);
        await client.workflow.getHandle(id).signal(closeSignal, { by, ...(opts.note ? { note: opts.note } : {}) });
        out(opts, { closed: id, by }, `closed ${id}`);
        return 0;
      }
    }
    return 2;
  } finally {
    await client.connection.close();
  }
}

if (require.main === module) {
  run(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      if (err instanceof UsageError) {
        console.error(`error: ${err.message}`);
        process.exit(2);
      }
      if (err instanceof Failure) {
        console.error(`error: ${err.message}`);
        process.exit(1);
      }
      console.error(`error: ${(err as Error).message ?? String(err)}`);
      process.exit(1);
    },
  );
}
