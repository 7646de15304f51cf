/**
 * The receiver's Prometheus metrics, on a registry of its own (several receivers may share a process in
 * tests). Every name carries the `remediation_receiver_` prefix, so the receiver's series never clash
 * with those of the services it watches, scraped by the same Prometheus.
 */
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export const METRIC_PREFIX = 'remediation_receiver_';

export function createReceiverMetrics(opts: { defaultMetrics?: boolean } = {}) {
  const registry = new Registry();
  if (opts.defaultMetrics) collectDefaultMetrics({ register: registry, prefix: METRIC_PREFIX });
  const registers = [registry];
  const counter = <L extends string>(name: string, help: string, labelNames: readonly L[]) =>
    new Counter<L>({ name: `${METRIC_PREFIX}${name}`, help, labelNames, registers });
  return {
    registry,
    received: counter('alerts_received_total', 'Alerts received (one per alert in a webhook), by source.', ['source']),
    rejected: counter(
      'alerts_rejected_total',
      'Webhook requests refused, by source and reason (unauthenticated, too_large, not_json, invalid, body_timeout, lane_full, ...).',
      ['source', 'reason'],
    ),
    started: counter('incidents_started_total', 'Incident workflows started by an alert, by runbook.', ['runbook']),
    deduplicated: counter(
      'alerts_deduplicated_total',
      'Firing alerts that joined an incident already running, by runbook.',
      ['runbook'],
    ),
    resolved: counter(
      'alerts_resolved_total',
      'Resolved alerts, by runbook and whether an incident was running to signal (signalled, no_incident).',
      ['runbook', 'outcome'],
    ),
    coalesced: counter(
      'alerts_coalesced_total',
      'Alerts that reached their incident in a signal shared with other repeats (sent while a call for the incident was in flight), by runbook.',
      ['runbook'],
    ),
    unrouted: counter('alerts_unrouted_total', 'Alerts no route matched (recorded, not acted on), by source.', [
      'source',
    ]),
    refused: counter(
      'alerts_refused_total',
      'Routed alerts refused because their target is missing or not configured, by runbook.',
      ['runbook'],
    ),
    ignored: counter(
      'alerts_ignored_total',
      'Events that carry no alert state (e.g. PagerDuty acknowledgements), by source.',
      ['source'],
    ),
    invalid: counter(
      'alerts_invalid_total',
      'Alerts of a group refused on their own (recorded, answered with the reason) while the rest of the group was handled, by source.',
      ['source'],
    ),
    truncated: counter(
      'alerts_truncated_total',
      'Alerts the sender left out of its webhooks (Alertmanager and Grafana `truncatedAlerts`), by source.',
      ['source'],
    ),
    laneOverflow: counter(
      'lane_overflow_total',
      'Alerts answered 503 because the dispatcher lanes were full, by runbook and bound (incidents, per_incident).',
      ['runbook', 'bound'],
    ),
    recordRotations: counter(
      'unrouted_file_rotations_total',
      'Rotations of unrouted-alerts.jsonl past unroutedFile.maxBytes.',
      [],
    ),
    recordDropped: counter(
      'unrouted_files_deleted_total',
      'Old unrouted-alerts.jsonl files deleted past unroutedFile.keep.',
      [],
    ),
    connectionsDropped: counter(
      'connections_dropped_total',
      'Connections closed on arrival because maxConnections were already open.',
      [],
    ),
    clientErrors: counter(
      'client_errors_total',
      'Requests refused before they could be parsed (malformed request line or headers, header timeout), by status.',
      ['status'],
    ),
    duration: new Histogram({
      name: `${METRIC_PREFIX}request_duration_seconds`,
      help: 'HTTP request duration, by route and status code.',
      labelNames: ['route', 'code'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
  };
}

export type ReceiverMetrics = ReturnType<typeof createReceiverMetrics>;
