/**
 * Maintenance windows, read by the worker: who may open them on a target (its configuration), and
 * the window an incident opens in (configured windows, and those people opened, kept by the target's
 * keeper workflow, src/workflows/maintenance.ts). Activities, so the answers are recorded in the
 * histories that use them.
 */
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { windowAt, type ActiveWindow, type OpenedWindow } from '../../lib/maintenance';
import { maintenanceStateQuery, maintenanceWorkflowId, type MaintenanceAuthority } from '../../workflows/contracts';
import type { ActivityDeps } from './deps';
import { targetConfig } from './deps';
import { ErrorType, permanent } from './errors';

/**
 * The windows people opened on `target`, as its keeper holds them. Windows live as long as their
 * keeper runs: none when it never ran, ended by itself (nothing was open or ahead), or was
 * terminated. Anything else (Temporal not answering) is not known, and throws.
 */
export async function openedWindowsOf(client: Client, target: string): Promise<OpenedWindow[]> {
  const handle = client.workflow.getHandle(maintenanceWorkflowId(target));
  try {
    if ((await handle.describe()).status.name !== 'RUNNING') return [];
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return [];
    throw err;
  }
  return (await handle.query(maintenanceStateQuery)).windows;
}

export function createMaintenanceActivities(deps: ActivityDeps) {
  /**
   * Who may open and stop windows on `target`: `maintenance.approvers`, else the policy's approvers
   * with the overrides that name this target alone applied. An unknown target is `known: false`.
   */
  async function maintenanceAuthority(input: { target: string }): Promise<MaintenanceAuthority> {
    const cfg = deps.config;
    if (!Object.prototype.hasOwnProperty.call(cfg.targets, input.target)) {
      return { known: false, approvers: [], maxDurationMs: 0, mode: 'diagnose' };
    }
    const m = targetConfig(deps, input.target).maintenance;
    let approvers = cfg.policy.approvers;
    for (const o of cfg.policy.overrides) {
      if (o.match.target === input.target && o.match.runbook === undefined && o.match.severity === undefined && o.approvers) {
        approvers = o.approvers;
      }
    }
    return { known: true, approvers: [...(m.approvers ?? approvers)], maxDurationMs: m.maxDurationMs, mode: m.mode };
  }

  /** The maintenance window open on `target` now, if any: configured, or opened by people. */
  async function maintenanceWindowAt(input: { target: string }): Promise<{ window?: ActiveWindow; at: string }> {
    const m = targetConfig(deps, input.target).maintenance;
    const now = Date.now();
    // Without the keeper's answer, whether people opened a window is not known: never guessed.
    if (!deps.client) throw permanent(ErrorType.NotConfigured, 'maintenance windows need a Temporal client');
    const opened = await openedWindowsOf(deps.client, input.target);
    const window = windowAt(m.windows, opened, now, m.mode);
    return { ...(window ? { window } : {}), at: new Date(now).toISOString() };
  }

  return { maintenanceAuthority, maintenanceWindowAt };
}
