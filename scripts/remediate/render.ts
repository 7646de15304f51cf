/** How incidents read in a terminal. Pure: records in, text out. */
import type { IncidentRecord } from '../../src/workflows/contracts';

/** One incident: phase, findings, pending steps with the command that answers each, actions. */
export function renderIncident(r: IncidentRecord): string {
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
  if (r.comms)
    lines.push(
      `  status updates posted: ${r.comms.updates}${r.comms.lastStage ? ` (last: ${r.comms.lastStage})` : ''}`,
    );
  if (r.report) lines.push('', r.report);
  if (r.comms?.resolution) lines.push('', '--- resolution summary (seed 001) ---', r.comms.resolution);
  else if (r.comms?.initialResponse) lines.push('', '--- initial response (seed 001) ---', r.comms.initialResponse);
  return lines.join('\n');
}

/** A row of `remediate list`. */
export interface IncidentRow {
  id: string;
  status: string;
  runbook: string;
  target: string;
  phase: string;
  severity: number;
  started: string;
}

/** `remediate list` as a table; `all` says whether closed incidents were asked for. */
export function renderRows(rows: IncidentRow[], all: boolean): string {
  if (rows.length === 0) return all ? 'no incidents' : 'no open incidents';
  return rows
    .map((r) => `${r.id.padEnd(44)} SEV-${r.severity} ${r.phase.padEnd(11)} ${r.status.padEnd(10)} ${r.started}`)
    .join('\n');
}
