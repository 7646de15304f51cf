import type { Client } from '@temporalio/client';
import type { EngineConfig } from '../../../src/config';
import { parseDuration } from '../../../src/lib/config-file';
import { configuredWindowAt, isCurrentOrAhead, isOpenAt, MAINTENANCE_MODES, type ConfiguredWindow, type MaintenanceMode, type OpenedWindow } from '../../../src/lib/maintenance';
import {
  maintenanceUpdate,
  maintenanceWorkflowId,
  type MaintenanceAnswer,
  type MaintenanceKeeperInput,
  type MaintenanceRequest,
} from '../../../src/workflows/contracts';
import { defineCommand } from '../command';
import { Failure, UsageError } from '../errors';

const USAGE =
  'start <target> --for DURATION --reason TEXT [--mode diagnose|record] [--from TIME]\n' +
  '       remediate maintenance stop <target> [--id mw-N] [--reason TEXT]\n' +
  '       remediate maintenance list [<target>]';

/** One row of `maintenance list`. */
export interface WindowRow {
  target: string;
  id: string;
  source: 'config' | 'opened';
  mode: MaintenanceMode;
  state: 'open' | 'ahead' | 'ended' | 'stopped' | 'closed now';
  from?: string;
  until?: string;
  schedule?: string;
  by?: string;
  reason: string;
}

function targetOf(cfg: EngineConfig, name: string | undefined, action: string): string {
  if (!name) throw new UsageError(`usage: remediate maintenance ${action} <target> ... (targets: ${Object.keys(cfg.targets).join(', ')})`);
  if (!Object.prototype.hasOwnProperty.call(cfg.targets, name))
    throw new UsageError(`unknown target "${name.slice(0, 100)}"; configured: ${Object.keys(cfg.targets).join(', ')}`);
  return name;
}

/** The configured windows of a target, with whether each is open now. */
function configuredRows(target: string, windows: readonly ConfiguredWindow[], mode: MaintenanceMode, now: number): WindowRow[] {
  return windows.map((w) => {
    const open = configuredWindowAt([w], now, mode);
    return {
      target,
      id: `config:${w.name}`,
      source: 'config' as const,
      mode: w.mode ?? mode,
      state: open ? ('open' as const) : w.to && Date.parse(w.to) <= now ? ('ended' as const) : w.weekly ? ('closed now' as const) : ('ahead' as const),
      ...(w.weekly
        ? { schedule: `weekly ${w.weekly.days.join(',')} ${w.weekly.start}-${w.weekly.end} ${w.weekly.timezone}` }
        : { from: w.from, until: w.to }),
      ...(open ? { from: open.from, until: open.until } : {}),
      reason: w.reason ?? '',
    };
  });
}

function openedRow(target: string, w: OpenedWindow, now: number): WindowRow {
  return {
    target,
    id: w.id,
    source: 'opened',
    mode: w.mode,
    state: w.stopped ? 'stopped' : isOpenAt(w, now) ? 'open' : isCurrentOrAhead(w, now) ? 'ahead' : 'ended',
    from: w.from,
    until: w.stopped ? w.stopped.at : w.until,
    by: w.stopped ? `${w.by}, stopped by ${w.stopped.by}` : w.by,
    reason: w.reason,
  };
}

async function send(client: Client, cfg: EngineConfig, req: MaintenanceRequest): Promise<MaintenanceAnswer> {
  // Loaded when used: every command's start-up (--help, --version) would pay for it.
  const { WithStartWorkflowOperation, WorkflowUpdateFailedError } = await import('@temporalio/client');
  const keeper: MaintenanceKeeperInput = { target: req.target };
  const start = new WithStartWorkflowOperation('maintenanceWindows', {
    workflowId: maintenanceWorkflowId(req.target),
    taskQueue: cfg.temporal.taskQueue,
    args: [keeper],
    workflowIdConflictPolicy: 'USE_EXISTING',
  });
  try {
    return await client.workflow.executeUpdateWithStart(maintenanceUpdate, { args: [req], startWorkflowOperation: start });
  } catch (err) {
    if (err instanceof WorkflowUpdateFailedError) throw new Failure(`refused: ${err.cause?.message ?? err.message}`);
    throw err;
  }
}

function renderRows(rows: WindowRow[]): string {
  if (rows.length === 0) return 'no maintenance windows';
  return rows
    .map(
      (r) =>
        `${r.target}  ${r.id}  ${r.state}  ${r.mode}  ${r.schedule ?? `${r.from ?? '?'} → ${r.until ?? '?'}`}${r.by ? `  by ${r.by}` : ''}${r.reason ? `  — ${r.reason}` : ''}`,
    )
    .join('\n');
}

export default defineCommand({
  name: 'maintenance',
  summary: 'open, stop or list maintenance windows (incidents then only diagnose, or only record)',
  usage: USAGE,
  description:
    'While a window is open on a target, its incidents only diagnose (nothing runs, nobody is paged) or, with ' +
    '--mode record, are only recorded. Windows also come from the engine config (targets.<name>.maintenance). ' +
    'Opening and stopping a window is for the target\'s approvers (or maintenance.approvers), within maintenance.maxDurationMs.',
  operands: [{ name: 'action', complete: ['start', 'stop', 'list'] }, { name: 'target' }],
  options: {
    for: { type: 'string', value: 'DURATION', help: 'how long the window lasts (start): 90m, 2h, 1h30m' },
    from: { type: 'string', value: 'TIME', help: 'when it begins (start; ISO 8601, default now)' },
    mode: { type: 'string', value: 'MODE', complete: MAINTENANCE_MODES, help: "diagnose or record (start; default: the target's)" },
    reason: { type: 'string', value: 'TEXT', help: 'why (required to start; kept with the window)' },
    id: { type: 'string', value: 'mw-N', help: 'the window to stop (stop; default: every open or upcoming one)' },
  },
  needs: 'client',
  prepare(ctx, cfg) {
    const { opts, operands } = ctx;
    const action = operands[0];
    if (action === 'list') {
      const only = operands[1] === undefined ? undefined : targetOf(cfg, operands[1], 'list');
      return async ({ client }) => {
        const { openedWindowsOf } = await import('../../../src/activities/engine/maintenance');
        const now = Date.now();
        const rows: WindowRow[] = [];
        for (const target of only ? [only] : Object.keys(cfg.targets)) {
          const m = cfg.targets[target]?.maintenance;
          if (m) rows.push(...configuredRows(target, m.windows, m.mode, now));
          rows.push(...(await openedWindowsOf(client, target)).map((w) => openedRow(target, w, now)));
        }
        ctx.print(rows, renderRows(rows));
        return 0;
      };
    }
    if (action === 'start') {
      const target = targetOf(cfg, operands[1], 'start');
      if (!opts.for) throw new UsageError('--for is required: how long the window lasts (e.g. 90m, 2h)');
      const forMs = parseDuration(opts.for);
      if (forMs === undefined || forMs <= 0) throw new UsageError(`--for: "${opts.for.slice(0, 40)}" is not a duration (e.g. 90m, 2h, 1h30m)`);
      if (!opts.reason?.trim()) throw new UsageError('--reason is required: say why (it is kept with the window)');
      if (opts.reason.length > 500) throw new UsageError('--reason: at most 500 characters');
      if (opts.mode !== undefined && !MAINTENANCE_MODES.includes(opts.mode as MaintenanceMode))
        throw new UsageError(`--mode: "${opts.mode.slice(0, 40)}" is not one of ${MAINTENANCE_MODES.join(', ')}`);
      if (opts.from !== undefined && !Number.isFinite(Date.parse(opts.from)))
        throw new UsageError(`--from: "${opts.from.slice(0, 40)}" is not a date (ISO 8601)`);
      const req: MaintenanceRequest = {
        target,
        action: 'start',
        forMs: Math.round(forMs),
        reason: opts.reason.trim(),
        ...(opts.mode ? { mode: opts.mode as MaintenanceMode } : {}),
        ...(opts.from ? { from: new Date(Date.parse(opts.from)).toISOString() } : {}),
      };
      return async ({ client, name }) => {
        const res = await send(client, cfg, req);
        const w = res.windows[0] as OpenedWindow;
        ctx.print(w, `opened ${w.id} on ${target} as ${name}: ${w.mode === 'record' ? 'record only' : 'diagnose only'} from ${w.from} until ${w.until}`);
        return 0;
      };
    }
    if (action === 'stop') {
      const target = targetOf(cfg, operands[1], 'stop');
      if (opts.id !== undefined && !/^mw-\d{1,9}$/.test(opts.id)) throw new UsageError(`--id: "${opts.id.slice(0, 40)}" is not a window id (mw-N)`);
      const req: MaintenanceRequest = {
        target,
        action: 'stop',
        ...(opts.id ? { id: opts.id } : {}),
        ...(opts.reason ? { reason: opts.reason } : {}),
      };
      return async ({ client, name }) => {
        const res = await send(client, cfg, req);
        ctx.print(res.windows, res.windows.map((w) => `stopped ${w.id} on ${target} as ${name}`).join('\n'));
        return 0;
      };
    }
    throw new UsageError(`usage: remediate maintenance ${USAGE}`);
  },
});
