/**
 * The seed 002 post-mortem, written from an incident's real event history: the timeline comes from
 * the events Temporal recorded (with their UTC times), not from notes kept by hand. Pure: give it
 * the history in the JSON form the Temporal CLI and `historyToJSON` write, or as fetched by a client,
 * with its payloads decoded (src/lib/history.ts; Temporal holds them encrypted, docs/codec.md).
 */
import type { IncidentRecord } from '../workflows/contracts';

interface Payload {
  metadata?: Record<string, unknown>;
  data?: string | Uint8Array;
}

/** One history event, reduced to what the post-mortem reads. */
export interface HistoryEvent {
  id: number;
  time: Date;
  type: string;
  attrs: Record<string, unknown>;
}

function decodePayload(p: Payload | undefined): unknown {
  if (!p?.data) return undefined;
  const text =
    typeof p.data === 'string' ? Buffer.from(p.data, 'base64').toString('utf8') : Buffer.from(p.data).toString('utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

function firstPayload(attrs: Record<string, unknown>, key: string): unknown {
  const holder = attrs[key] as { payloads?: Payload[] } | undefined;
  return decodePayload(holder?.payloads?.[0]);
}

/**
 * Who the codec server sealed a payload for (`seal-by`, docs/codec.md), as a decoded history shows
 * it: bytes from a client's fetchHistory, base64 in the CLI's JSON. Undefined for unsealed payloads.
 */
function sealedBy(p: Payload | undefined): string | undefined {
  const v = p?.metadata?.['seal-by'];
  if (v instanceof Uint8Array) return Buffer.from(v).toString('utf8') || undefined;
  if (typeof v === 'string') return Buffer.from(v, 'base64').toString('utf8') || undefined;
  return undefined;
}

function firstPayloadSealedBy(attrs: Record<string, unknown>, key: string): string | undefined {
  return sealedBy((attrs[key] as { payloads?: Payload[] } | undefined)?.payloads?.[0]);
}

function toDate(t: unknown): Date {
  if (typeof t === 'string') return new Date(t);
  const ts = t as { seconds?: { toNumber?: () => number } | number | string; nanos?: number } | undefined;
  const s = ts?.seconds;
  const seconds = typeof s === 'object' && s?.toNumber ? s.toNumber() : Number(s ?? 0);
  return new Date(seconds * 1000 + Math.floor((ts?.nanos ?? 0) / 1e6));
}

/** Normalises events from the CLI's JSON (`eventType: "EVENT_TYPE_…"`) or a client's fetchHistory (numbers + Longs). */
export function normaliseHistory(
  history: { events?: unknown[] | null },
  eventTypeName?: (n: number) => string,
): HistoryEvent[] {
  return (history.events ?? []).map((raw) => {
    const e = raw as Record<string, unknown>;
    const attrKey = Object.keys(e).find((k) => k.endsWith('EventAttributes') && e[k]);
    const rawType = e.eventType;
    const type =
      typeof rawType === 'string'
        ? rawType.replace(/^EVENT_TYPE_/, '')
        : (eventTypeName?.(Number(rawType)) ?? String(rawType));
    return {
      id: Number(e.eventId),
      time: toDate(e.eventTime),
      type,
      attrs: (attrKey ? e[attrKey] : {}) as Record<string, unknown>,
    };
  });
}

const hhmmss = (d: Date): string => d.toISOString().slice(11, 19);

function duration(ms: number): string {
  const m = Math.floor(ms / 60_000);
  return `${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`;
}

/** Timeline rows read from the history events themselves. */
export function timelineFromHistory(events: HistoryEvent[]): { time: Date; event: string }[] {
  const rows: { time: Date; event: string }[] = [];
  const activityNames = new Map<number, string>();
  for (const e of events) {
    switch (e.type) {
      case 'WORKFLOW_EXECUTION_STARTED': {
        const input = firstPayload(e.attrs, 'input') as { requestedBy?: string; alert?: { name?: string } } | undefined;
        rows.push({
          time: e.time,
          event: `Incident opened by ${input?.requestedBy ?? 'unknown'}${input?.alert?.name ? ` (alert ${input.alert.name})` : ''}`,
        });
        break;
      }
      case 'WORKFLOW_EXECUTION_SIGNALED': {
        const name = String(e.attrs.signalName ?? '');
        const body = firstPayload(e.attrs, 'input') as Record<string, unknown> | undefined;
        // A sealed decision names its sender in the seal; older histories in the payload.
        const sender = firstPayloadSealedBy(e.attrs, 'input');
        if (name === 'approve' || name === 'reject')
          rows.push({ time: e.time, event: `${String(sender ?? body?.approver)} sent ${name} for ${String(body?.stepId)}` });
        else if (name === 'alert')
          rows.push({
            time: e.time,
            event: `Alert ${String(body?.name)} ${String(body?.status)} (${String(body?.source)})`,
          });
        else if (name === 'close' && body?.abort !== undefined)
          rows.push({ time: e.time, event: `${String(sender ?? body?.by)} sent abort${body?.reason ? `: ${String(body.reason)}` : ''}` });
        else if (name === 'close')
          // Sent, not necessarily counted: the timeline says whether it closed the incident.
          rows.push({ time: e.time, event: `${String(sender ?? body?.by)} sent close${body?.note ? `: ${String(body.note)}` : ''}` });
        break;
      }
      case 'WORKFLOW_EXECUTION_UPDATE_ACCEPTED': {
        const req = (e.attrs.acceptedRequest as { input?: { args?: { payloads?: Payload[] } } } | undefined)?.input
          ?.args?.payloads?.[0];
        const body = decodePayload(req) as Record<string, unknown> | undefined;
        if (body?.decision)
          rows.push({
            time: e.time,
            event: `${String(sealedBy(req) ?? body.approver)} ${body.decision === 'reject' ? 'rejected' : `${String(body.decision)}d`} ${String(body.stepId)}`,
          });
        break;
      }
      case 'UPSERT_WORKFLOW_SEARCH_ATTRIBUTES': {
        const fields =
          (e.attrs.searchAttributes as { indexedFields?: Record<string, Payload> } | undefined)?.indexedFields ?? {};
        const phase = decodePayload(fields.IncidentPhase);
        if (typeof phase === 'string') rows.push({ time: e.time, event: `Phase ${phase}` });
        break;
      }
      case 'ACTIVITY_TASK_SCHEDULED': {
        const name = (e.attrs.activityType as { name?: string } | undefined)?.name ?? '?';
        activityNames.set(e.id, name);
        break;
      }
      case 'ACTIVITY_TASK_COMPLETED': {
        const name = activityNames.get(Number(e.attrs.scheduledEventId)) ?? '?';
        // Diagnostics are summarised by the findings; the timeline keeps the actions that changed something.
        if (/restart|recreate|unlink|raise|terminate|vacuum|exec|stop|start/i.test(name))
          rows.push({ time: e.time, event: `Action ${name} completed` });
        break;
      }
      case 'ACTIVITY_TASK_FAILED': {
        const name = activityNames.get(Number(e.attrs.scheduledEventId)) ?? '?';
        rows.push({ time: e.time, event: `Action ${name} failed` });
        break;
      }
      case 'WORKFLOW_EXECUTION_COMPLETED': {
        const rec = firstPayload(e.attrs, 'result') as IncidentRecord | undefined;
        rows.push({ time: e.time, event: `Incident closed: ${rec?.outcome ?? 'completed'}` });
        break;
      }
      case 'WORKFLOW_EXECUTION_TERMINATED':
        rows.push({ time: e.time, event: 'Incident terminated' });
        break;
      default:
        break;
    }
  }
  return rows;
}

/** The post-mortem as Markdown (seed 002's template), from the history and the incident record in it. */
export function renderPostmortem(events: HistoryEvent[]): string {
  const start = events[0];
  const end = events[events.length - 1];
  if (!start || !end) throw new Error('empty history');
  const completed = events.find((e) => e.type === 'WORKFLOW_EXECUTION_COMPLETED');
  const rec = completed ? (firstPayload(completed.attrs, 'result') as IncidentRecord) : undefined;
  const input = firstPayload(start.attrs, 'input') as { requestedBy?: string; target?: string } | undefined;
  const approvers = [...new Set((rec?.actions ?? []).flatMap((a) => a.approvals))];
  const done = (rec?.actions ?? []).filter((a) => a.state === 'done');
  const lines: string[] = [];
  lines.push(`## Post-Mortem: INC-${start.time.toISOString().slice(0, 10)}-${rec?.runbook ?? 'incident'}`, '');
  lines.push(`**Date:** ${start.time.toISOString().slice(0, 10)}`);
  lines.push(`**Duration:** ${duration(end.time.getTime() - start.time.getTime())}`);
  lines.push(`**Severity:** SEV-${rec?.severity ?? '?'}`);
  lines.push(
    `**Incident Commander:** ${input?.requestedBy ?? 'unknown'}${approvers.length ? ` (approvals: ${approvers.join(', ')})` : ''}`,
    '',
  );
  lines.push('### Summary', '');
  lines.push(
    `${rec?.scenario ?? ''} ${rec?.title ?? ''} on \`${rec?.target ?? input?.target ?? '?'}\`. ${rec?.diagnosis ?? ''}. ` +
      `Outcome: **${rec?.outcome ?? 'open'}**${done.length ? `, after ${done.map((a) => a.stepId).join(', ')}` : ''}.`,
    '',
  );
  lines.push('### Timeline', '', '| Time (UTC) | Event |', '|---|---|');
  for (const r of timelineFromHistory(events)) lines.push(`| ${hhmmss(r.time)} | ${r.event.replace(/\|/g, '/')} |`);
  lines.push('', '### Root Cause', '', rec?.rootCause ?? rec?.diagnosis ?? 'Not determined by the runbook.', '');
  lines.push('### Impact', '');
  for (const f of (rec?.findings ?? []).filter((x) => !x.ok)) lines.push(`- ${f.check}: ${f.detail}`);
  lines.push(`- Duration: ${Math.round((end.time.getTime() - start.time.getTime()) / 60_000)} minutes`, '');
  lines.push('### Action Items', '', '| ID | Action | Owner | Due Date | Status |', '|---|---|---|---|---|');
  const items = [
    ...(rec?.escalations ?? []).map((e) => `Follow up the escalation: ${e}`),
    ...(rec?.actions ?? [])
      .filter((a) => a.state === 'expired')
      .map((a) => `Nobody decided ${a.stepId} in time: review the on-call tiers`),
    ...(rec?.actions ?? [])
      .filter((a) => a.state === 'failed')
      .map((a) => `Fix why ${a.stepId} failed: ${a.detail ?? ''}`),
    `Find why ${rec?.rootCause ?? 'this happened'} and prevent it`,
  ];
  items.forEach((t, i) => lines.push(`| ${i + 1} | ${t.replace(/\|/g, '/')} | [owner] | [date] | open |`));
  lines.push('', '### Lessons Learned', '', '- What went well', '- What went poorly', "- What we'll change", '');
  return lines.join('\n');
}
