/** The receiver's Prometheus metrics, on a registry of its own (several receivers may share a process in tests). */
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export function createReceiverMetrics(opts: { defaultMetrics?: boolean } = {}) {
  const registry = new Registry();
  if (opts.defaultMetrics) collectDefaultMetrics({ register: registry, prefix: 'receiver_' });
  const registers = [registry];
  return {
    registry,
    received: new Counter({
      name: 'alerts_received_total',
      help: 'Alerts received (one per alert in a webhook), by source.',
      labelNames: ['source'] as const,
      registers,
    }),
    rejected: new Counter({
      name: 'alerts_rejected_total',
      help: 'Webhook requests refused, by source and reason (unauthenticated, too_large, not_json, invalid, ...).',
      labelNames: ['source', 'reason'] as const,
      registers,
    }),
    started: new Counter({
      name: 'incidents_started_total',
      help: 'Incident workflows started by an alert, by runbook.',
      labelNames: ['runbook'] as const,
      registers,
    }),
    deduplicated: new Counter({
      name: 'alerts_deduplicated_total',
      help: 'Firing alerts that joined an incident already running, by runbook.',
      labelNames: ['runbook'] as const,
      registers,
    }),
    resolved: new Counter({
      name: 'alerts_resolved_total',
      help: 'Resolved alerts, by runbook and whether an incident was running to signal (signalled, no_incident).',
      labelNames: ['runbook', 'outcome'] as const,
      registers,
    }),
    coalesced: new Counter({
      name: 'alerts_coalesced_total',
      help: 'Alerts that reached their incident in a signal shared with other repeats (sent while a call for the incident was in flight), by runbook.',
      labelNames: ['runbook'] as const,
      registers,
    }),
    unrouted: new Counter({
      name: 'alerts_unrouted_total',
      help: 'Alerts no route matched (recorded, not acted on), by source.',
      labelNames: ['source'] as const,
      registers,
    }),
    refused: new Counter({
      name: 'alerts_refused_total',
      help: 'Routed alerts refused because their target is missing or not configured, by runbook.',
      labelNames: ['runbook'] as const,
      registers,
    }),
    ignored: new Counter({
      name: 'alerts_ignored_total',
      help: 'Events that carry no alert state (e.g. PagerDuty acknowledgements), by source.',
      labelNames: ['source'] as const,
      registers,
    }),
    duration: new Histogram({
      name: 'receiver_request_duration_seconds',
      help: 'HTTP request duration, by route and status code.',
      labelNames: ['route', 'code'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
  };
}

export type ReceiverMetrics = ReturnType<typeof createReceiverMetrics>;
