/**
 * Builds a runbook's input from configuration. Shared by the alert receiver and the client script
 * so that an alert and an engineer open exactly the same kind of incident.
 */
import type { EngineConfig } from '../config';
import type { AlertEvent, IncidentInput, Severity } from '../workflows/contracts';
import { RUNBOOKS, type RunbookName } from '../workflows/catalog';
import { checkParams } from './runbook-params';

export class InputError extends Error {}

export interface IncidentRequest {
  runbook: string;
  target: string;
  requestedBy: string;
  severity?: Severity;
  dryRun?: boolean;
  alert?: AlertEvent;
  params?: Record<string, unknown>;
  summary?: string;
}

export function isRunbookName(name: string): name is RunbookName {
  return Object.prototype.hasOwnProperty.call(RUNBOOKS, name);
}

/**
 * The seed's severity is a floor for what an alert says of itself: its label may make an incident more
 * severe, never less (an alert labelled `severity: warning` does not make a database outage SEV-4).
 */
export function severityAtLeastSeed(runbook: RunbookName, asked: Severity | undefined): Severity {
  const seed = RUNBOOKS[runbook].severity;
  return asked !== undefined && asked < seed ? asked : seed;
}

/** Refuses unknown runbooks and unknown targets: targets are never guessed. */
export function buildIncidentInput(cfg: EngineConfig, req: IncidentRequest): { runbook: RunbookName; input: IncidentInput } {
  if (!isRunbookName(req.runbook)) {
    throw new InputError(`unknown runbook "${req.runbook}"; known: ${Object.keys(RUNBOOKS).join(', ')}`);
  }
  if (!Object.prototype.hasOwnProperty.call(cfg.targets, req.target)) {
    throw new InputError(`unknown target "${req.target}"; configured: ${Object.keys(cfg.targets).join(', ')}`);
  }
  if (!req.requestedBy.trim()) throw new InputError('requestedBy must not be empty');
  let params: Record<string, unknown> | undefined;
  try {
    params = checkParams(req.runbook, req.params);
  } catch (err) {
    throw new InputError((err as Error).message);
  }
  const input: IncidentInput = {
    target: req.target,
    requestedBy: req.requestedBy,
    severity: req.severity ?? RUNBOOKS[req.runbook].severity,
    dryRun: req.dryRun ?? false,
    ...(req.alert ? { alert: req.alert } : {}),
    ...(params ? { params } : {}),
    ...(req.summary ? { summary: req.summary } : {}),
  };
  return { runbook: req.runbook, input };
}
