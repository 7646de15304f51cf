/**
 * What an incident tells people: notifications (delivered in the background, retried, never awaited by
 * a mitigation), seed 002's first five minutes (the PagerDuty acknowledgement, the incident channel,
 * the announcement in #incidents), status-page updates at the severity's cadence, and the messages
 * of the close (resolution, summary, post-mortem date).
 *
 * One per incident. Messages sent once the incident has a channel wait for it to be opened.
 */
import { condition } from '@temporalio/workflow';
import type { Notification } from '../../activities/engine/notify';
import {
  DEFAULT_CADENCE_MS,
  SEVERITY_MATRIX,
  currentStage,
  initialResponse,
  resolutionSummary,
  statusPage,
  type StatusStage,
} from '../../comms/templates';
import type { IncidentInput, IncidentOutcome, IncidentPolicy, IncidentRecord } from '../contracts';
import { failureMessage, nowIso } from './common';
import { ackActs, notifyActs } from './proxies';

const DEFAULT_ANNOUNCE_CHANNEL = '#incidents';
const POSTMORTEM_WITHIN_MS = 48 * 3600_000;

/**
 * `#inc-YYYY-MM-DD-<short-name>` (seed 002), the short name being the target and the runbook:
 * `#inc-2026-12-02-alfred-cache-failure`. Slack's rules: lowercase, digits, `-`, at most 80 characters.
 */
export function incidentChannel(rec: Pick<IncidentRecord, 'openedAt' | 'target' | 'runbook'>): string {
  const kebab = rec.runbook.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
  const name = `inc-${rec.openedAt.slice(0, 10)}-${rec.target}-${kebab}`.replace(/[^a-z0-9-]/g, '-').slice(0, 80);
  return `#${name}`;
}

export interface CommsDeps {
  /** The incident's record: what the messages say, and where the counts of updates are kept. */
  record: IncidentRecord;
  /** The policy the incident runs under now (announcement channel, contacts, cadence). */
  policy: () => IncidentPolicy;
  /** The incident's input (the alert it came from, the customer's name). */
  input: () => IncidentInput;
  /** Adds a line to the timeline. */
  note: (event: string) => void;
  /** Seed 002's first five minutes and post-incident steps apply (patch `first-five-minutes`). */
  firstMinutes: () => boolean;
}

export type Comms = ReturnType<typeof createComms>;

export function createComms(deps: CommsDeps) {
  const { record: rec, note, firstMinutes } = deps;
  const notifications: Promise<void>[] = [];
  let announced = false;
  /** Opening the incident's channel; messages sent meanwhile wait for it. */
  let channelOpening: Promise<void> | undefined;
  /** Where messages go once the incident's channel is open (else each sink's own channel). */
  let messageChannel: string | undefined;
  let stopUpdates = false;
  let updatesLoop: Promise<void> | undefined;

  const send = (n: Omit<Notification, 'incidentId' | 'severity'>): void => {
    const deliver = () => notifyActs.notify({ ...(messageChannel ? { channel: messageChannel } : {}), ...n, incidentId: rec.incidentId, severity: rec.severity });
    // Once the incident has a channel, messages wait for it to be opened (incidents recorded before
    // incident channels scheduled each message at once, and replay so).
    notifications.push(
      (channelOpening ? channelOpening.then(deliver) : deliver()).then(
        () => undefined,
        (err: unknown) => note(`notification "${n.title}" failed: ${failureMessage(err)}`),
      ),
    );
  };

  function cadenceMs(): number {
    const policy = deps.policy();
    const key = String(rec.severity) as keyof typeof DEFAULT_CADENCE_MS;
    return policy.updateCadenceMs?.[key] ?? DEFAULT_CADENCE_MS[key];
  }

  function customer(): { customer?: string } {
    const name = deps.input().params?.customerName;
    return typeof name === 'string' ? { customer: name } : {};
  }

  /**
   * Seed 002, "First 5 Minutes": acknowledge the PagerDuty alert within 2 minutes. In the background:
   * triage does not wait for PagerDuty, and the incident does not close before the answer is in.
   */
  function acknowledgePagerDuty(): void {
    const input = deps.input();
    const id = input.alert?.source === 'pagerduty' ? input.alert.labels?.pagerduty_incident_id : undefined;
    if (!id) return;
    notifications.push(
      ackActs.acknowledgePagerDuty({ pagerdutyIncidentId: id }).then(
        (r) => note(r.detail),
        (err: unknown) => note(`PagerDuty incident ${id} not acknowledged within 2 minutes: ${failureMessage(err)}`),
      ),
    );
  }

  /**
   * Seed 002, "First 5 Minutes": open the incident channel `#inc-YYYY-MM-DD-<short-name>` and announce
   * "INC opened — SEV-X — [brief description]" in #incidents. Once per incident, when it turns out to
   * need people (not for a false alarm); later messages go to the incident's channel.
   */
  function announce(): void {
    if (!firstMinutes() || announced) return;
    const policy = deps.policy();
    announced = true;
    if (SEVERITY_MATRIX[rec.severity].ticketOnly) {
      note('SEV-4: ticket only (seed 002): no incident channel, no announcement');
      return;
    }
    const channel = incidentChannel(rec);
    rec.channel = channel;
    channelOpening = notifyActs.openIncidentChannel({ name: channel.slice(1) }).then(
      (r) => {
        if (r.opened) messageChannel = channel;
        note(r.detail);
      },
      (err: unknown) => note(`incident channel ${channel} not opened: ${failureMessage(err)}`),
    );
    notifications.push(channelOpening);
    send({
      kind: 'announcement',
      channel: policy.announceChannel ?? DEFAULT_ANNOUNCE_CHANNEL,
      title: `INC opened — SEV-${rec.severity} — ${rec.scenario} ${rec.title} on ${rec.target}`,
      text: `${rec.diagnosis ?? rec.summary ?? ''} Incident channel: ${rec.channel}. Response: ${SEVERITY_MATRIX[rec.severity].response}.`,
      contacts: severityContacts(),
    });
    note(`announced in ${policy.announceChannel ?? DEFAULT_ANNOUNCE_CHANNEL}; incident channel ${rec.channel}`);
  }

  /** Who the severity engages (seed 002's matrix, or the configured handles). */
  function severityContacts(): string[] {
    const policy = deps.policy();
    return policy.severityContacts?.[String(rec.severity) as '1'] ?? SEVERITY_MATRIX[rec.severity].contacts;
  }

  /** One status-page post: rendered from the record, delivered in the background, counted. */
  function postStatus(stage: StatusStage, text?: string): void {
    const m = statusPage(stage, rec, { cadenceMs: cadenceMs(), now: nowIso() });
    send({ kind: 'status', stage, title: m.title, text: text ?? m.text });
    rec.comms = { ...(rec.comms ?? { updates: 0 }), lastStage: stage };
    rec.comms.updates += 1;
    note(`status update posted: ${m.title}`);
  }

  /** Durable timers: an update at the severity's cadence until the incident finishes. */
  async function scheduledUpdates(): Promise<void> {
    for (;;) {
      const every = cadenceMs();
      if (every <= 0 || (await condition(() => stopUpdates, every))) return;
      postStatus(currentStage(rec));
    }
  }

  /** A real problem, once diagnosed: tell people what is known, then keep them updated at the severity's cadence. */
  function engage(): void {
    announce();
    rec.comms = { updates: 0, initialResponse: initialResponse(rec, { cadenceMs: cadenceMs(), now: nowIso(), ...customer() }).text };
    if (firstMinutes() && rec.severity === 4) {
      note('SEV-4: ticket only, no status page (seed 002)');
    } else {
      postStatus(rec.rootCause ? 'identified' : 'investigating');
      updatesLoop = scheduledUpdates();
    }
  }

  /**
   * The messages of the close, once the outcome is known: the updates stop, the status page says
   * resolved, the summary goes to #incidents with the post-mortem date; returns once every message
   * of the incident has been delivered or has failed.
   */
  async function closeOut(outcome: IncidentOutcome): Promise<void> {
    stopUpdates = true;
    if (updatesLoop) await updatesLoop;
    if (rec.comms && (outcome === 'resolved' || outcome === 'escalated')) {
      // Whoever closed an escalated incident handled it: the public story ends either way.
      postStatus('resolved');
      rec.comms.resolution = resolutionSummary(rec, customer()).text;
    }
    if (outcome === 'resolved' || outcome === 'false-alarm') {
      send({ kind: 'resolved', title: `${rec.scenario} ${rec.title} on ${rec.target}: ${outcome}`, text: rec.diagnosis ?? '' });
    }
    if (announced) {
      const policy = deps.policy();
      // Seed 002, "Within 1 Hour of Resolution": a summary in #incidents, the post-mortem within 48 hours.
      rec.postmortemDueBy = new Date(Date.parse(rec.closedAt as string) + POSTMORTEM_WITHIN_MS).toISOString();
      send({
        kind: 'announcement',
        channel: policy.announceChannel ?? DEFAULT_ANNOUNCE_CHANNEL,
        title: `INC closed — SEV-${rec.severity} — ${rec.scenario} ${rec.title} on ${rec.target}: ${outcome}`,
        text: `${rec.diagnosis ?? ''}${rec.rootCause ? ` Root cause: ${rec.rootCause}.` : ''} Post-mortem due by ${rec.postmortemDueBy} (within 48 hours).`,
      });
      note(`post-mortem due by ${rec.postmortemDueBy}`);
    }
    await Promise.allSettled(notifications);
  }

  return {
    send,
    acknowledgePagerDuty,
    announce,
    severityContacts,
    postStatus,
    engage,
    closeOut,
    /** Whether the incident was announced (seed 002): its escalations also engage the severity's contacts. */
    announced: (): boolean => announced,
  };
}
