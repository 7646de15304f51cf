/**
 * The incident policy as the engine's own configuration gives it: approvers, escalation tiers,
 * cooldowns and deadlines, per target, runbook and severity, and the target's action budget. The
 * worker resolves it when an incident starts; nothing in a start request changes it.
 */
import type { EngineConfig } from '../config';
import type { IncidentPolicy, Severity } from '../workflows/contracts';

export interface PolicyScope {
  target: string;
  runbook: string;
  severity: Severity;
}

/** The base policy with every matching override applied in order; `overrides` names the ones applied. */
export function resolvePolicy(cfg: EngineConfig, scope: PolicyScope): IncidentPolicy & { overrides: number[] } {
  const { overrides, actionBudget, ...base } = cfg.policy;
  let policy: IncidentPolicy = { ...base, announceChannel: cfg.notify.announce.channel };
  const applied: number[] = [];
  overrides.forEach((o, i) => {
    const { match, ...fields } = o;
    if (match.target !== undefined && match.target !== scope.target) return;
    if (match.runbook !== undefined && match.runbook !== scope.runbook) return;
    if (match.severity !== undefined && match.severity !== scope.severity) return;
    const given = Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined)) as Partial<IncidentPolicy>;
    policy = { ...policy, ...given };
    applied.push(i);
  });
  const target = cfg.targets[scope.target];
  const contacts = target?.security.contacts;
  return {
    ...policy,
    ...(contacts ? { roleContacts: contacts } : {}),
    // The target's own budget, else the default: counted per target, whatever the runbook or severity.
    actionBudget: { ...(target?.actionBudget ?? actionBudget) },
    overrides: applied,
  };
}
