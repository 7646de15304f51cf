/** Markdown for people: the Temporal UI's "current details" of an incident. Pure. */
import type { IncidentRecord } from '../contracts';

// Plain words: the UI's font may have no emoji.
const ICON: Record<string, string> = { true: 'OK', false: 'FAIL' };

/** Markdown for the Temporal UI's "current details". */
export function renderDetails(rec: IncidentRecord, opts: { sealed?: boolean } = {}): string {
  const lines: string[] = [];
  lines.push(`## ${rec.scenario} · ${rec.title}`);
  lines.push(
    `**Target** \`${rec.target}\` · **SEV-${rec.severity}** · **Phase** ${rec.phase}${rec.outcome ? ` · **Outcome** ${rec.outcome}` : ''}` +
      ` · opened by ${rec.requestedBy}${rec.dryRun ? ' · **DRY-RUN**' : ''}`,
  );
  if (rec.maintenance) {
    lines.push(
      '',
      `**Maintenance window** \`${rec.maintenance.id}\` until ${rec.maintenance.until}${rec.maintenance.by ? ` (opened by ${rec.maintenance.by})` : ''}: ` +
        `${rec.maintenance.mode === 'record' ? 'this alert is only recorded' : 'diagnosis only, nothing runs and nobody is paged'} — ${rec.maintenance.reason}`,
    );
  }
  if (rec.diagnosis) lines.push('', `**Diagnosis:** ${rec.diagnosis}`);
  if (rec.pending.length > 0) {
    lines.push('', '### Waiting for approval');
    for (const p of rec.pending) {
      lines.push(
        `- **${p.stepId}** — ${p.title} (${p.risk}, ${p.approvals.length}/${p.needed} approvals, ${p.tier}, since ${p.since})`,
      );
      if (opts.sealed) {
        lines.push('', 'Signed in to the codec server, send signal **approve** with:', '```json', JSON.stringify({ incidentId: rec.incidentId, stepId: p.stepId, comment: '' }), '```');
        lines.push('or signal **reject** with the same shape. It counts for whoever is signed in.');
      } else {
        lines.push('', 'Send signal **approve** with:', '```json', JSON.stringify({ stepId: p.stepId, approver: '<your name>', comment: '' }), '```');
        lines.push('or signal **reject** with the same shape.');
      }
    }
  }
  if (rec.children.length > 0) {
    const where = opts.sealed ? "send approvals for a child's steps to the child" : "approvals for a child's steps may be sent here; they are forwarded";
    lines.push('', `**Child incidents:** ${rec.children.map((c) => `\`${c}\``).join(', ')} (${where})`);
  }
  if (rec.phase === 'ESCALATED') {
    lines.push('', '### Escalated — needs a human', ...rec.escalations.map((e) => `- ${e}`));
    const close = opts.sealed ? { incidentId: rec.incidentId, note: '' } : { by: '<your name>', note: '' };
    lines.push('', 'When handled, send signal **close** with:', '```json', JSON.stringify(close), '```');
  } else if (opts.sealed && !rec.aborted && rec.phase !== 'POST-MORTEM' && rec.phase !== 'CLOSED') {
    lines.push('', 'To stop this incident before it finishes (an allowed approver, with a reason), send signal **close** with:');
    lines.push('```json', JSON.stringify({ incidentId: rec.incidentId, abort: true, reason: '' }), '```');
  }
  if (rec.aborted) lines.push('', `**Aborted** by ${rec.aborted.by} at ${rec.aborted.at}: ${rec.aborted.reason}`);
  if (rec.findings.length > 0) {
    lines.push('', '### Findings');
    for (const f of rec.findings) {
      lines.push(`- ${f.unknown ? 'UNKNOWN' : ICON[String(f.ok)]} **${f.check}**: ${f.unknown ? `could not observe${f.aside ? ' (aside: no conclusion rests on it)' : ''}: ${f.detail}` : f.detail}`);
    }
  }
  if (rec.actions.length > 0) {
    lines.push('', '### Actions', '| step | risk | state | detail |', '|---|---|---|---|');
    for (const a of rec.actions) {
      lines.push(`| ${a.stepId} | ${a.risk} | ${a.state} | ${(a.detail ?? '').replace(/\|/g, '/')} |`);
    }
  }
  if (rec.alerts.count > 0) {
    lines.push('', `Alerts received: ${rec.alerts.count} (resolved ${rec.alerts.resolved}, flaps ${rec.alerts.flaps})`);
  }
  lines.push('', '### Timeline (latest)');
  for (const t of rec.timeline.slice(-8)) lines.push(`- ${t.at} [${t.phase}] ${t.event}`);
  return lines.join('\n');
}
