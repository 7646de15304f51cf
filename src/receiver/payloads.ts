/**
 * Webhook payloads of each source, validated with zod and normalised into one shape. Unknown
 * fields are kept out of the way (senders add fields between versions); the fields the receiver
 * relies on are required, and a missing one is reported with its path.
 */
import { z } from 'zod';
import { formatIssues, type SourceName } from './config';

/** One alert from any source, before routing. */
export interface IncomingAlert {
  source: SourceName;
  name: string;
  status: 'firing' | 'resolved';
  /** Always contains `alertname`. */
  labels: Record<string, string>;
  annotations: Record<string, string>;
  fingerprint?: string;
  startsAt?: string;
  summary?: string;
  /**
   * The alert's descriptive text on one line, which routing rules match as the `details` pseudo-label
   * (routes.ts): the annotations as `key: value; ...`, or for PagerDuty the incident title. Absent when
   * the alert carries no such text.
   */
  details?: string;
}

/** An event that carries no alert state (e.g. a PagerDuty acknowledgement): answered, not acted on. */
export interface IgnoredEvent {
  ignored: true;
  name: string;
  reason: string;
}

export type ParsedItem = IncomingAlert | IgnoredEvent;

export function isIgnored(item: ParsedItem): item is IgnoredEvent {
  return 'ignored' in item;
}

const stringMap = z.record(z.string());
const alertLabels = z.object({ alertname: z.string().min(1) }).catchall(z.string());
const status = z.enum(['firing', 'resolved']);

// ---- Alertmanager webhook (version 4) ----

const AlertmanagerAlert = z
  .object({
    status,
    labels: alertLabels,
    annotations: stringMap.default({}),
    startsAt: z.string().optional(),
    endsAt: z.string().optional(),
    generatorURL: z.string().optional(),
    fingerprint: z.string().optional(),
  })
  .passthrough();

export const AlertmanagerPayload = z
  .object({
    version: z.string(),
    groupKey: z.string(),
    truncatedAlerts: z.number().int().nonnegative().optional(),
    status,
    receiver: z.string(),
    groupLabels: stringMap.default({}),
    commonLabels: stringMap.default({}),
    commonAnnotations: stringMap.default({}),
    externalURL: z.string().optional(),
    alerts: z.array(AlertmanagerAlert),
  })
  .passthrough();

// ---- Grafana unified alerting webhook ----

// Grafana's alert is Alertmanager's with links and the value that fired it.
const GrafanaAlert = AlertmanagerAlert.extend({
  silenceURL: z.string().optional(),
  dashboardURL: z.string().optional(),
  panelURL: z.string().optional(),
  valueString: z.string().optional(),
});

export const GrafanaPayload = z
  .object({
    receiver: z.string(),
    status,
    orgId: z.number().int().optional(),
    alerts: z.array(GrafanaAlert),
    groupLabels: stringMap.default({}),
    commonLabels: stringMap.default({}),
    commonAnnotations: stringMap.default({}),
    externalURL: z.string().optional(),
    version: z.string().optional(),
    groupKey: z.string().optional(),
    truncatedAlerts: z.number().int().nonnegative().optional(),
    title: z.string().optional(),
    state: z.string().optional(),
    message: z.string().optional(),
  })
  .passthrough();

// ---- PagerDuty webhook v3 ----

const reference = z.object({ id: z.string().optional(), summary: z.string().optional() }).passthrough();

export const PagerDutyPayload = z.object({
  event: z
    .object({
      id: z.string().min(1),
      event_type: z.string().min(1),
      resource_type: z.string().min(1),
      occurred_at: z.string().min(1),
      data: z
        .object({
          id: z.string().min(1),
          type: z.string().min(1),
          title: z.string().optional(),
          status: z.string().optional(),
          incident_key: z.string().nullish(),
          number: z.number().optional(),
          html_url: z.string().optional(),
          service: reference.optional(),
          priority: reference.nullish(),
          urgency: z.string().optional(),
        })
        .passthrough(),
    })
    .passthrough()
    .superRefine((ev, ctx) => {
      if (ev.resource_type === 'incident' && !ev.data.title) {
        ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['data', 'title'], message: 'Required for incident events' });
      }
    }),
});

// ---- our generic format ----

/** `{"alertname": "CacheFailure", "status": "firing", "target": "alfred"}`; see docs/receiver.md. */
export const GenericPayload = z
  .object({
    alertname: z.string().min(1),
    status: status.default('firing'),
    target: z.string().min(1).optional(),
    severity: z.union([z.number().int().min(1).max(4), z.string().min(1)]).optional(),
    labels: stringMap.default({}),
    annotations: stringMap.default({}),
    fingerprint: z.string().optional(),
    startsAt: z.string().optional(),
  })
  .strict();

export type ParseResult = { ok: true; items: ParsedItem[] } | { ok: false; issues: string[] };

function summaryOf(annotations: Record<string, string>): string | undefined {
  return annotations.summary ?? annotations.description ?? annotations.message;
}

/** Whitespace runs (newlines included) become one space, so a rule's `.*` spans the whole text. */
function oneLine(text: string): string | undefined {
  return text.replace(/\s+/g, ' ').trim() || undefined;
}

/**
 * Every annotation as `key: value`, in the sender's order. Keys are kept because senders put a
 * measurement under its own key (`cache_hit_rate_pct: 0.0`) as often as in a sentence.
 */
function detailsOf(annotations: Record<string, string>): string | undefined {
  return oneLine(
    Object.entries(annotations)
      .map(([k, v]) => `${k}: ${v}`)
      .join('; '),
  );
}

function fromLabelled(
  source: SourceName,
  a: {
    status: 'firing' | 'resolved';
    labels: Record<string, string> & { alertname: string };
    annotations: Record<string, string>;
    startsAt?: string;
    fingerprint?: string;
  },
): IncomingAlert {
  const summary = summaryOf(a.annotations);
  const details = detailsOf(a.annotations);
  return {
    source,
    name: a.labels.alertname,
    status: a.status,
    labels: { ...a.labels },
    annotations: { ...a.annotations },
    ...(a.fingerprint ? { fingerprint: a.fingerprint } : {}),
    ...(a.startsAt ? { startsAt: a.startsAt } : {}),
    ...(summary ? { summary } : {}),
    ...(details ? { details } : {}),
  };
}

/** PagerDuty event types that carry an alert state; every other type is answered and ignored. */
const PAGERDUTY_STATUS: Record<string, 'firing' | 'resolved'> = {
  'incident.triggered': 'firing',
  'incident.reopened': 'firing',
  'incident.resolved': 'resolved',
};

function compact(obj: Record<string, string | number | null | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(obj)) if (v !== undefined && v !== null && v !== '') out[k] = String(v);
  return out;
}

/** Validates one source's payload and normalises it; `issues` name the field paths. */
export function parsePayload(source: SourceName, body: unknown): ParseResult {
  switch (source) {
    case 'alertmanager': {
      const r = AlertmanagerPayload.safeParse(body);
      if (!r.success) return { ok: false, issues: formatIssues(r.error) };
      return { ok: true, items: r.data.alerts.map((a) => fromLabelled(source, a)) };
    }
    case 'grafana': {
      const r = GrafanaPayload.safeParse(body);
      if (!r.success) return { ok: false, issues: formatIssues(r.error) };
      return { ok: true, items: r.data.alerts.map((a) => fromLabelled(source, a)) };
    }
    case 'pagerduty': {
      const r = PagerDutyPayload.safeParse(body);
      if (!r.success) return { ok: false, issues: formatIssues(r.error) };
      const ev = r.data.event;
      const name = ev.data.title ?? ev.data.id;
      const mapped = ev.resource_type === 'incident' ? PAGERDUTY_STATUS[ev.event_type] : undefined;
      if (!mapped) {
        return {
          ok: true,
          items: [{ ignored: true, name, reason: `event type ${ev.event_type} carries no alert state` }],
        };
      }
      const labels = compact({
        alertname: name,
        service: ev.data.service?.summary,
        service_id: ev.data.service?.id,
        priority: ev.data.priority?.summary,
        urgency: ev.data.urgency,
        incident_number: ev.data.number,
        pagerduty_incident_id: ev.data.id,
      });
      const annotations = compact({ summary: ev.data.title, html_url: ev.data.html_url, event_id: ev.id });
      // A v3 incident event carries no alert body or custom details, only the title, which PagerDuty
      // takes from the triggering event's summary: the title is all the detail a rule can see.
      const details = oneLine(ev.data.title ?? '');
      return {
        ok: true,
        items: [
          {
            source,
            name,
            status: mapped,
            labels: labels as IncomingAlert['labels'],
            annotations,
            fingerprint: ev.data.incident_key ?? ev.data.id,
            startsAt: ev.occurred_at,
            summary: name,
            ...(details ? { details } : {}),
          },
        ],
      };
    }
    case 'generic': {
      const r = GenericPayload.safeParse(body);
      if (!r.success) return { ok: false, issues: formatIssues(r.error) };
      const g = r.data;
      const labels: Record<string, string> = { ...g.labels, alertname: g.alertname };
      if (g.target) labels.target = g.target;
      if (g.severity !== undefined) labels.severity = String(g.severity);
      const summary = summaryOf(g.annotations);
      const details = detailsOf(g.annotations);
      return {
        ok: true,
        items: [
          {
            source,
            name: g.alertname,
            status: g.status,
            labels,
            annotations: g.annotations,
            ...(g.fingerprint ? { fingerprint: g.fingerprint } : {}),
            ...(g.startsAt ? { startsAt: g.startsAt } : {}),
            ...(summary ? { summary } : {}),
            ...(details ? { details } : {}),
          },
        ],
      };
    }
  }
}
