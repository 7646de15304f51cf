/**
 * Webhook payloads of each source, validated with zod and normalised into one shape. Unknown
 * fields are kept out of the way (senders add fields between versions); the fields the receiver
 * relies on are required, and a missing one is reported with its path.
 *
 * A group (Alertmanager, Grafana) is checked in two parts: its envelope, then each alert on its own.
 * An invalid alert becomes an `InvalidAlert` item beside the valid ones, because a sender does not
 * retry a 4xx and refusing the whole group would lose its valid alerts. Only an invalid envelope, or
 * a group whose every alert is invalid, refuses the payload.
 */
import { z } from 'zod';
import { formatIssues, formatPath, type SourceName } from './config';

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

/** An alert of a group that failed validation: recorded and answered on its own. */
export interface InvalidAlert {
  invalid: true;
  source: SourceName;
  /** `labels.alertname` when it is a string, else `alerts[<index>]`. */
  name: string;
  /** The issues, each naming its path in the payload (`alerts[1].labels.alertname: Required`). */
  issues: string[];
  /** The alert as received. */
  received: unknown;
}

export type ParsedItem = IncomingAlert | IgnoredEvent | InvalidAlert;

export function isIgnored(item: ParsedItem): item is IgnoredEvent {
  return 'ignored' in item;
}

export function isInvalid(item: ParsedItem): item is InvalidAlert {
  return 'invalid' in item;
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

/** The group without its alerts, which are checked one by one. */
const AlertmanagerEnvelope = AlertmanagerPayload.extend({ alerts: z.array(z.unknown()) });

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

const GrafanaEnvelope = GrafanaPayload.extend({ alerts: z.array(z.unknown()) });

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

export type ParseResult =
  | {
      ok: true;
      items: ParsedItem[];
      /** Alerts the sender left out of the group (`truncatedAlerts`), when it says so. */
      truncatedAlerts?: number;
    }
  | { ok: false; issues: string[] };

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

function nameOf(raw: unknown, index: number): string {
  const labels = (raw as { labels?: unknown } | null)?.labels;
  const name = (labels as { alertname?: unknown } | null | undefined)?.alertname;
  return typeof name === 'string' && name !== '' ? name : `alerts[${index}]`;
}

/**
 * A group's envelope, then each alert on its own. The payload is refused when the envelope is
 * invalid (its issues and every alert's are reported) or when no alert of a non-empty group is valid.
 */
function parseGroup(
  source: 'alertmanager' | 'grafana',
  envelope: z.ZodTypeAny,
  alert: typeof AlertmanagerAlert | typeof GrafanaAlert,
  body: unknown,
): ParseResult {
  const env = envelope.safeParse(body);
  const rawAlerts = (body as { alerts?: unknown } | null)?.alerts;
  const items: Array<IncomingAlert | InvalidAlert> = [];
  const alertIssues: string[] = [];
  if (Array.isArray(rawAlerts)) {
    rawAlerts.forEach((raw: unknown, i) => {
      const r = alert.safeParse(raw);
      if (r.success) {
        items.push(fromLabelled(source, r.data));
        return;
      }
      const issues = r.error.issues.map((issue) => `${formatPath(['alerts', i, ...issue.path])}: ${issue.message}`);
      alertIssues.push(...issues);
      items.push({ invalid: true, source, name: nameOf(raw, i), issues, received: raw });
    });
  }
  if (!env.success) return { ok: false, issues: [...formatIssues(env.error), ...alertIssues] };
  if (items.length > 0 && items.every((i) => 'invalid' in i)) return { ok: false, issues: alertIssues };
  const truncated = (env.data as { truncatedAlerts?: number }).truncatedAlerts;
  return { ok: true, items, ...(truncated ? { truncatedAlerts: truncated } : {}) };
}

/** Validates one source's payload and normalises it; `issues` name the field paths. */
export function parsePayload(source: SourceName, body: unknown): ParseResult {
  switch (source) {
    case 'alertmanager':
      return parseGroup(source, AlertmanagerEnvelope, AlertmanagerAlert, body);
    case 'grafana':
      return parseGroup(source, GrafanaEnvelope, GrafanaAlert, body);
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
