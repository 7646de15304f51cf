/**
 * remediate: the engineer's client for incidents. Start runbooks (rollback first among them), watch
 * them, approve or reject steps, close escalated incidents. Run `remediate --help`.
 *
 * Who you are comes from your credential: a personal token (scripts/codec-secrets.ts add-token) in
 * $REMEDIATE_CREDENTIALS or ~/.config/remediate/credentials (mode 600; `remediate login` writes it).
 * The script holds no key: every payload goes through the codec server (`codec.serverUrl`), which
 * seals what you send with your name and decrypts what you read (docs/codec.md).
 *
 * Exit codes: 0 success; 1 the operation failed or the incident did not resolve; 2 bad usage or input
 * (a missing or unsafe credential included).
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
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
import { CodecServerError, RemoteCodec, whoami, type RemoteCodecOptions } from '../src/lib/codec/remote';
import { decodeHistoryPayloads } from '../src/lib/history';
import { connectClient } from '../src/lib/temporal';
import { normaliseHistory, renderPostmortem } from '../src/postmortem';
import { RUNBOOKS } from '../src/workflows/catalog';
import {
  closeSignal,
  decideUpdate,
  incidentWorkflowId,
  statusQuery,
  type DecisionResult,
  type IncidentInput,
  type IncidentRecord,
  type Severity,
} from '../src/workflows/contracts';

export class UsageError extends Error {}
export class Failure extends Error {}

const HELP = `remediate — start, watch and decide remediation incidents

Usage:
  remediate login                                      store your personal token (read from stdin) as your credential
  remediate whoami                                     who the codec server takes your credential for
  remediate runbooks                                   list the runbooks this engine runs
  remediate list [--all] [--runbook R] [--target T]    open incidents (--all: closed ones too)
  remediate show <incident-id>                         one incident: phase, findings, pending steps, actions
  remediate start <runbook> --target T [options]       open an incident by hand
  remediate rollback --target T [options]              roll back to the last known good release
  remediate approve <incident-id> <step-id> [--comment TEXT]
  remediate reject  <incident-id> <step-id> [--comment TEXT]
  remediate close   <incident-id> [--note TEXT]        close an escalated incident after handling it
  remediate abort   <incident-id> --reason TEXT        stop an incident before it finishes (an approver; it stops
                                                       at its next safe point, never mid-action, and closes as aborted)
  remediate postmortem <incident-id> [--out FILE]      the post-mortem, written from the incident's event history
  remediate schedules apply                            create or update the engine's schedules (daily TLS check)

Who you are comes from your credential, not from a flag: a personal token (an admin creates it:
npx tsx scripts/codec-secrets.ts add-token <you>; the local stack's are in .stack/secrets/tokens/)
in $REMEDIATE_CREDENTIALS or ~/.config/remediate/credentials, readable by you only (chmod 600).
\`remediate login\` checks a token with the codec server and writes that file. Every command but
runbooks goes through the codec server (codec.serverUrl in the engine config): it seals what you
send with your name (approve, reject, close, abort, start) and decrypts what you read. You cannot approve
an incident you opened.

Options for start and rollback:
  --target T            configured target (required; unknown targets are refused)
  --dry-run             diagnose and describe what would be done; change nothing
  --wait                follow the incident, printing phase and steps, until it closes
  --severity N          1..4 (default: the runbook's)
  --param key=value     runbook parameter (repeatable); values are JSON if they parse, else strings
  --summary TEXT        one line shown in the UI
Rollback only:
  --services a,b        services in rollout order (default: the target's rollback order)
  --tag TAG             roll back to this tag (default: last known good)
  --migration-downgrade downgrade the newest migration (needs approval)
  --restore-backup      restore the latest backup (needs two approvers)

Global: --json (machine-readable output), --config FILE (default: $ENGINE_CONFIG or config/engine.yaml), -h/--help.
Exit codes: 0 success, 1 failed or not resolved, 2 bad usage or input (a missing or unsafe credential too).`;

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
  reason: { type: 'string' },
  out: { type: 'string' },
} as const;

type Opts = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>['values'];

const ID_PATTERN = /^[\w.:/-]{1,200}$/;

function out(opts: Opts, json: unknown, text: string): void {
  console.log(opts.json ? JSON.stringify(json, null, 2) : text);
}

// ---- the credential: a personal token in a file only its owner can read ----

/** Where the credential lives: $REMEDIATE_CREDENTIALS, else ~/.config/remediate/credentials. */
export function credentialsFile(env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(env.REMEDIATE_CREDENTIALS || path.join(homedir(), '.config', 'remediate', 'credentials'));
}

/** The personal token in the credential file; refused when missing, empty, or readable by others. */
export function readCredential(file = credentialsFile()): string {
  if (!existsSync(file))
    throw new UsageError(
      `no credential: ${file} does not exist. Sign in with \`remediate login\` (it reads your personal token from stdin)`,
    );
  const st = statSync(file);
  if (!st.isFile()) throw new UsageError(`credential ${file} is not a file`);
  const mode = st.mode & 0o777;
  if (mode & 0o077)
    throw new UsageError(
      `credential ${file} can be read by others (mode ${mode.toString(8).padStart(4, '0')}): chmod 600 ${file}`,
    );
  const token = readFileSync(file, 'utf8').split(/\r?\n/).find((l) => l.trim())?.trim() ?? '';
  if (!token) throw new UsageError(`credential ${file} is empty: sign in again with \`remediate login\``);
  return token;
}

/** Writes the credential file: mode 600 in a directory of mode 700, replaced atomically. */
function writeCredential(file: string, token: string): void {
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${token}\n`, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, file);
}

/** A token from stdin: typed at a prompt (not echoed), or piped (the first line). */
async function readTokenFromStdin(): Promise<string> {
  const stdin = process.stdin;
  if (!stdin.isTTY) return (readFileSync(0, 'utf8').split(/\r?\n/).find((l) => l.trim()) ?? '').trim();
  process.stderr.write('Personal token: ');
  stdin.setRawMode(true);
  stdin.resume();
  stdin.setEncoding('utf8');
  return new Promise((resolve, reject) => {
    let value = '';
    const done = (err?: Error) => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.off('data', onData);
      process.stderr.write('\n');
      if (err) reject(err);
      else resolve(value.trim());
    };
    const onData = (chunk: string) => {
      for (const c of chunk) {
        if (c === '\r' || c === '\n' || c === '\u0004') return done();
        if (c === '\u0003') return done(new UsageError('cancelled'));
        if (c === '\u007f' || c === '\b') value = value.slice(0, -1);
        else value += c;
      }
    };
    stdin.on('data', onData);
  });
}

/** A codec server error as the engineer should read it. */
function codecFailure(err: CodecServerError, server: string, credential?: string): Failure {
  if (err.status === 401 || err.status === 403)
    return new Failure(
      `the codec server at ${server} does not accept ${credential ? `the credential in ${credential}` : 'this token'} ` +
        `(${err.status}): sign in again with \`remediate login\``,
    );
  if (err.status === undefined)
    return new Failure(`${err.message} (codec.serverUrl in the engine config; scripts/stack.sh up starts the local one)`);
  return new Failure(err.message);
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
    lines.push(`    remediate approve ${r.incidentId} ${p.stepId}`);
  }
  for (const a of r.actions) lines.push(`  step ${a.stepId} [${a.risk}] ${a.state}${a.detail ? `: ${a.detail}` : ''}`);
  for (const e of r.escalations) lines.push(`  escalated: ${e}`);
  if (r.phase === 'ESCALATED') lines.push(`    remediate close ${r.incidentId} --note "what you did"`);
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

/** Stands in for the requester while a start is checked, before the credential is asked who it is. */
const REQUESTER_PENDING = 'credential-owner';

/** The incident a start or rollback asks for, checked before anything is sent. */
function buildStart(cfg: EngineConfig, runbook: string, opts: Opts, params: Record<string, unknown>): { runbook: string; input: IncidentInput } {
  if (!opts.target) throw new UsageError('--target is required');
  try {
    return buildIncidentInput(cfg, {
      runbook,
      target: opts.target,
      requestedBy: REQUESTER_PENDING,
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
}

/** Rollback's own options as runbook parameters. */
function rollbackParams(opts: Opts): Record<string, unknown> {
  const params = parseParams(opts.param);
  if (opts.services)
    params.services = opts.services
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
  if (opts.tag) params.tag = opts.tag;
  if (opts['migration-downgrade']) params.migrationDowngrade = true;
  if (opts['restore-backup']) params.restoreBackup = true;
  return params;
}

async function startIncident(
  client: Client,
  cfg: EngineConfig,
  built: { runbook: string; input: IncidentInput },
  opts: Opts,
  requestedBy: string,
): Promise<number> {
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
    if (opts.json) out(opts, { workflowId, started: true }, '');
    return 0;
  }
  const rec = await follow(client, workflowId, opts);
  out(opts, rec, `\n${render(rec)}`);
  return rec.outcome === 'resolved' || rec.outcome === 'dry-run' || rec.outcome === 'false-alarm' ? 0 : 1;
}

/**
 * What approve and reject send: the step and the incident it belongs to. Who decides is not in it:
 * the codec server seals the payload with the credential's owner, and the workflow reads the seal.
 */
interface SealedDecisionRequest {
  incidentId: string;
  stepId: string;
  decision: 'approve' | 'reject';
  comment?: string;
}

/** What close sends; the sender is the seal's, as for decisions. */
interface SealedCloseRequest {
  incidentId: string;
  note?: string;
  abort?: true;
  reason?: string;
}

async function decide(
  client: Client,
  decision: 'approve' | 'reject',
  id: string,
  stepId: string,
  opts: Opts,
  me: string,
): Promise<number> {
  await status(client, id); // clear error for an unknown incident
  try {
    const request: SealedDecisionRequest = { incidentId: id, stepId, decision, ...(opts.comment ? { comment: opts.comment } : {}) };
    const res = await client.workflow
      .getHandle(id)
      .executeUpdate<DecisionResult, [SealedDecisionRequest]>(decideUpdate.name, { args: [request] });
    out(
      opts,
      res,
      `${decision === 'approve' ? 'approved' : 'rejected'} ${stepId} on ${id} as ${me}: step is now ${res.state} (${res.approvals.length} approval(s): ${res.approvals.join(', ') || 'none'})`,
    );
    return 0;
  } catch (err) {
    if (err instanceof WorkflowUpdateFailedError) throw new Failure(`refused: ${err.cause?.message ?? err.message}`);
    throw err;
  }
}

async function close(client: Client, id: string, opts: Opts, me: string): Promise<number> {
  const rec = await status(client, id);
  if (rec.phase !== 'ESCALATED')
    throw new Failure(
      `${id} is ${rec.phase}, not escalated; only escalated incidents are closed by hand (to stop it now: remediate abort ${id} --reason "...")`,
    );
  const request: SealedCloseRequest = { incidentId: id, ...(opts.note ? { note: opts.note } : {}) };
  await client.workflow.getHandle(id).signal<[SealedCloseRequest]>(closeSignal.name, request);
  out(opts, { closed: id, by: me }, `closed ${id} as ${me}`);
  return 0;
}

/** `remediate abort`: stops an incident before it finishes; the workflow says in its timeline whether it counted. */
async function abort(client: Client, id: string, opts: Opts, me: string): Promise<number> {
  const rec = await status(client, id);
  if (rec.phase === 'POST-MORTEM' || rec.phase === 'CLOSED') throw new Failure(`${id} is already ${rec.phase}`);
  const request: SealedCloseRequest = { incidentId: id, abort: true, reason: opts.reason as string };
  await client.workflow.getHandle(id).signal<[SealedCloseRequest]>(closeSignal.name, request);
  out(opts, { aborted: id, by: me, reason: opts.reason }, `abort of ${id} sent as ${me}; it stops at its next safe point (remediate show ${id})`);
  return 0;
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

const COMMANDS = [
  'login',
  'whoami',
  'list',
  'show',
  'start',
  'rollback',
  'approve',
  'reject',
  'close',
  'abort',
  'postmortem',
  'schedules',
] as const;
type Command = (typeof COMMANDS)[number];

/** What a command needs checked before the credential is read or anything is sent. */
interface Checked {
  id?: string;
  stepId?: string;
  start?: { runbook: string; input: IncidentInput };
}

function check(command: Command, pos: string[], opts: Opts, cfg: EngineConfig): Checked {
  if (command === 'login' || command === 'whoami' || command === 'list') {
    if (pos.length > 0) throw new UsageError(`usage: remediate ${command}${command === 'list' ? ' [--all] [--runbook R] [--target T]' : ''}`);
    return {};
  }
  switch (command) {
    case 'show':
    case 'close':
    case 'postmortem':
      return { id: incidentId(pos[0]) };
    case 'abort':
      if (!opts.reason?.trim()) throw new UsageError('usage: remediate abort <incident-id> --reason TEXT (an abort needs a reason)');
      return { id: incidentId(pos[0]) };
    case 'approve':
    case 'reject': {
      const id = incidentId(pos[0]);
      const stepId = pos[1];
      if (!stepId) throw new UsageError(`usage: remediate ${command} <incident-id> <step-id> [--comment TEXT]`);
      return { id, stepId };
    }
    case 'start':
      if (!pos[0]) throw new UsageError('usage: remediate start <runbook> --target T');
      return { start: buildStart(cfg, pos[0], opts, parseParams(opts.param)) };
    case 'rollback':
      return { start: buildStart(cfg, 'rollback', opts, rollbackParams(opts)) };
    case 'schedules':
      if (pos[0] !== 'apply') throw new UsageError('usage: remediate schedules apply');
      return {};
  }
}

/** `remediate login`: a token from stdin, checked with the codec server, stored as the credential. */
async function login(cfg: EngineConfig, opts: Opts): Promise<number> {
  const token = await readTokenFromStdin();
  if (!token) throw new UsageError('no token on stdin: remediate login reads your personal token (one line)');
  let me;
  try {
    me = await whoami({ url: cfg.codec.serverUrl, token });
  } catch (err) {
    if (err instanceof CodecServerError) throw codecFailure(err, cfg.codec.serverUrl);
    throw err;
  }
  const file = credentialsFile();
  writeCredential(file, token);
  out(
    opts,
    { name: me.name, via: me.via, server: cfg.codec.serverUrl, credentials: file },
    `signed in as ${me.name} at ${cfg.codec.serverUrl}; credential stored in ${file} (mode 600)`,
  );
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
  if (opts.as !== undefined)
    throw new UsageError(
      '--as is not an option: who you are comes from your credential (remediate whoami shows it; remediate login changes it)',
    );
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
  if (!(COMMANDS as readonly string[]).includes(command))
    throw new UsageError(`unknown command "${command}" (see remediate --help)`);
  const cmd = command as Command;

  let cfg: EngineConfig;
  try {
    cfg = loadConfig(opts.config ?? process.env.ENGINE_CONFIG ?? 'config/engine.yaml');
  } catch (err) {
    if (err instanceof ConfigError) throw new UsageError(err.message);
    throw err;
  }
  // Validate what can be validated before the credential is read or anything is sent.
  const checked = check(cmd, pos, opts, cfg);
  if (cmd === 'login') return login(cfg, opts);

  const credential = credentialsFile();
  const codec: RemoteCodecOptions = { url: cfg.codec.serverUrl, token: readCredential(credential), namespace: cfg.temporal.namespace };
  let me: string;
  try {
    const who = await whoami(codec);
    me = who.name;
    if (cmd === 'whoami') {
      out(
        opts,
        { name: who.name, via: who.via, server: codec.url, credentials: credential },
        `${who.name} (via ${who.via}) at ${codec.url}; credential ${credential}`,
      );
      return 0;
    }
  } catch (err) {
    if (err instanceof CodecServerError) throw codecFailure(err, codec.url, credential);
    throw err;
  }

  // The script holds no key: the codec server seals what it sends and decrypts what it reads.
  const codecs = [new RemoteCodec(codec)];
  const client = await connectClient(cfg, { payloadCodecs: codecs });
  try {
    switch (cmd) {
      case 'list':
        return await list(client, opts);
      case 'show': {
        const rec = await status(client, checked.id as string);
        out(opts, rec, render(rec));
        return 0;
      }
      case 'start':
      case 'rollback':
        return await startIncident(client, cfg, checked.start as { runbook: string; input: IncidentInput }, opts, me);
      case 'approve':
      case 'reject':
        return await decide(client, cmd, checked.id as string, checked.stepId as string, opts, me);
      case 'schedules': {
        const applied = await applySchedules(client, cfg);
        out(opts, applied, applied.map((a) => `${a.state} ${a.scheduleId}: ${a.description}`).join('\n') || 'no schedules configured');
        return 0;
      }
      case 'postmortem': {
        const id = checked.id as string;
        // The history is all it needs: no worker has to answer a query for a closed incident.
        const fetched = await client.workflow
          .getHandle(id)
          .fetchHistory()
          .catch((err: unknown) => {
            if (err instanceof WorkflowNotFoundError || /not found/i.test(String((err as Error).message)))
              throw new Failure(`no incident "${id}" (see \`remediate list --all\`)`);
            throw err;
          });
        // Temporal holds the payloads encrypted: the codec server decrypts them for the report.
        const history = await decodeHistoryPayloads(fetched, codecs);
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
      case 'close':
        return await close(client, checked.id as string, opts, me);
      case 'abort':
        return await abort(client, checked.id as string, opts, me);
    }
    return 2;
  } catch (err) {
    if (err instanceof CodecServerError) throw codecFailure(err, codec.url, credential);
    throw err;
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
