/**
 * Notifications: approval requests, escalations, status updates, resolutions. Delivered to every
 * configured sink: a JSON-lines file, stdout, and a Slack-compatible incoming webhook.
 *
 * Delivery never blocks a mitigation: the kernel does not await notifications in a step, and a
 * failing sink is retried (a few quick attempts here, then Temporal's retry policy). A sink that
 * already took a message is not sent it again on a retry: delivered sinks are kept in the activity's
 * heartbeat details, which the next attempt reads back.
 */
import { Context } from '@temporalio/activity';
import { appendFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { readSecret } from '../../config';
import type { ActivityDeps } from './deps';
import { ErrorType, permanent } from './errors';

export interface Notification {
  incidentId: string;
  kind: 'approval-needed' | 'escalation' | 'status' | 'resolved' | 'expired' | 'announcement';
  severity: number;
  tier?: string;
  contacts?: string[];
  title: string;
  text: string;
  /** For status-page updates: investigating, identified, monitoring, resolved. */
  stage?: string;
  /** The chat channel the message belongs in (the incident's, or the announcement channel); else the sink's own. */
  channel?: string;
  /** The step an approval request asks about: the Slack message carries Approve / Reject buttons for it. */
  stepId?: string;
}

type SlackConfig = NonNullable<ActivityDeps['config']['notify']['slack']>;

type Entry = Notification & { at: string };

interface Sink {
  name: string;
  deliver(entry: Entry): Promise<void>;
}

/**
 * Slack's mrkdwn: *bold* rather than Markdown's **bold**. An approval request (or its escalation)
 * carries Block Kit Approve / Reject buttons; the codec server's /slack/interactions counts a press
 * for the operator the Slack user is mapped to (src/codec-server/slack.ts).
 */
export function slackMessage(e: Entry, opts: { username: string; channel?: string }): Record<string, unknown> {
  const mrkdwn = (s: string): string => s.replace(/\*\*(.+?)\*\*/g, '*$1*');
  const who = e.contacts?.length ? ` ${e.contacts.join(' ')}` : '';
  const text = `*${mrkdwn(e.title)}*${who}\n${mrkdwn(e.text)}\n_${e.incidentId} · SEV-${e.severity} · ${e.kind}_`;
  const buttons = e.stepId && (e.kind === 'approval-needed' || e.kind === 'escalation');
  return {
    username: opts.username,
    ...(opts.channel ? { channel: opts.channel } : {}),
    text,
    ...(buttons
      ? {
          blocks: [
            { type: 'section', text: { type: 'mrkdwn', text: text.slice(0, 3000) } },
            {
              type: 'actions',
              block_id: 'remediation-decision',
              elements: [
                { type: 'button', action_id: 'approve', style: 'primary', text: { type: 'plain_text', text: 'Approve' }, value: decisionValue(e.incidentId, e.stepId as string) },
                {
                  type: 'button',
                  action_id: 'reject',
                  style: 'danger',
                  text: { type: 'plain_text', text: 'Reject' },
                  value: decisionValue(e.incidentId, e.stepId as string),
                  confirm: {
                    title: { type: 'plain_text', text: 'Reject this step?' },
                    text: { type: 'mrkdwn', text: `${e.stepId} will not run and the incident escalates.` },
                    confirm: { type: 'plain_text', text: 'Reject' },
                    deny: { type: 'plain_text', text: 'Cancel' },
                  },
                },
              ],
            },
          ],
        }
      : {}),
  };
}

/** What a button carries: the incident and the step it decides (the interaction endpoint reads it back). */
export function decisionValue(incidentId: string, stepId: string): string {
  return JSON.stringify({ incidentId, stepId });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function createNotifyActivities(deps: ActivityDeps) {
  const cfg = deps.config.notify;
  const doFetch = deps.fetch ?? fetch;

  function sinks(): Sink[] {
    const list: Sink[] = [];
    if (cfg.file) {
      const file = path.resolve(cfg.file);
      list.push({
        name: 'file',
        async deliver(e) {
          await mkdir(path.dirname(file), { recursive: true });
          await appendFile(file, `${JSON.stringify(e)}\n`);
        },
      });
    }
    if (cfg.stdout) list.push({ name: 'stdout', deliver: async (e) => void process.stdout.write(`${JSON.stringify(e)}\n`) });
    const slack = cfg.slack;
    if (slack) {
      list.push({
        name: 'slack',
        async deliver(e) {
          // Secrets (the webhook URL, the bot token) are read here and appear in no message or log.
          const token = readSecret(slack.botToken);
          if (token) {
            // The Web API needs a channel: the message's, else the configured one, else #incidents.
            const channel = e.channel ?? slack.channel ?? cfg.announce.channel;
            await slackApi(slack, token, 'chat.postMessage', slackMessage(e, { username: slack.username, channel }));
            return;
          }
          const url = readSecret(slack.webhook);
          if (!url) throw new Error('the Slack webhook secret is empty');
          const channel = e.channel ?? slack.channel;
          await postWithRetries(slack, url, slackMessage(e, { username: slack.username, ...(channel ? { channel } : {}) }));
        },
      });
    }
    return list;
  }

  /** Posts to the webhook, a few quick attempts; a 4xx other than 429 will not get better by asking again. */
  async function postWithRetries(slack: SlackConfig, url: string, message: Record<string, unknown>): Promise<void> {
    let last = '';
    for (let attempt = 1; attempt <= slack.attempts; attempt++) {
      try {
        const res = await doFetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(message),
          signal: AbortSignal.timeout(slack.timeoutMs),
        });
        if (res.ok) return;
        last = `HTTP ${res.status}`;
        if (res.status >= 400 && res.status < 500 && res.status !== 429) break;
      } catch (err) {
        last = (err as Error).name === 'TimeoutError' ? `no answer in ${slack.timeoutMs} ms` : 'connection failed';
      }
      if (attempt < slack.attempts) await sleep(250 * 2 ** (attempt - 1));
    }
    throw new Error(`Slack webhook refused the message: ${last}`);
  }

  /**
   * One Slack Web API call. Slack answers HTTP 200 with `ok: false` and an error code; the code is
   * returned to the caller, who knows which ones are expected (`name_taken`).
   */
  async function slackApi(slack: SlackConfig, token: string, method: string, body: Record<string, unknown>): Promise<{ ok: boolean; error?: string; [k: string]: unknown }> {
    let res: Response;
    try {
      res = await doFetch(`${slack.apiUrl.replace(/\/$/, '')}/${method}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json; charset=utf-8', authorization: `Bearer ${token}` },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(slack.timeoutMs),
      });
    } catch (err) {
      throw new Error(`Slack ${method}: ${(err as Error).name === 'TimeoutError' ? `no answer in ${slack.timeoutMs} ms` : 'connection failed'}`);
    }
    if (res.status === 429) throw new Error(`Slack ${method}: rate limited (retry after ${res.headers.get('retry-after') ?? '?'} s)`);
    if (!res.ok) throw new Error(`Slack ${method}: HTTP ${res.status}`);
    const answer = (await res.json().catch(() => undefined)) as { ok?: unknown; error?: unknown } | undefined;
    if (!answer || typeof answer.ok !== 'boolean') throw new Error(`Slack ${method}: the answer is not Slack's ({"ok": ...})`);
    if (answer.ok) return answer as { ok: true };
    const error = typeof answer.error === 'string' ? answer.error : 'unknown_error';
    if (method === 'conversations.create' && error === 'name_taken') return { ok: false, error };
    // Bad credentials, missing scopes, a bad channel: asking again changes nothing.
    throw permanent(ErrorType.Refused, `Slack ${method} refused: ${error}`);
  }

  /**
   * Opens the incident's channel (seed 002: "Open an incident channel: `#inc-YYYY-MM-DD-<short-name>`").
   * Idempotent: a channel of that name that exists already is the incident's (a retried activity, or
   * the same incident replayed). Without a bot token the channel cannot be created by the engine: the
   * answer says so, and the announcement names the channel for people to open.
   */
  async function openIncidentChannel(req: { name: string }): Promise<{ opened: boolean; detail: string }> {
    const slack = cfg.slack;
    const token = readSecret(slack?.botToken);
    if (!slack || !token) return { opened: false, detail: `#${req.name} not opened: no Slack bot token (notify.slack.botToken)` };
    const r = await slackApi(slack, token, 'conversations.create', { name: req.name });
    return r.ok ? { opened: true, detail: `#${req.name} opened` } : { opened: true, detail: `#${req.name} exists already` };
  }

  async function notify(n: Notification): Promise<{ delivered: string[] }> {
    const ctx = Context.current();
    const entry: Entry = { at: new Date().toISOString(), ...n };
    const already = new Set<string>((ctx.info.heartbeatDetails as string[] | undefined) ?? []);
    if (already.size === 0) deps.logger.info({ notification: entry }, `notify ${n.kind}: ${n.title}`);
    const failures: string[] = [];
    for (const sink of sinks()) {
      if (already.has(sink.name)) continue;
      try {
        await sink.deliver(entry);
        already.add(sink.name);
        ctx.heartbeat([...already]);
      } catch (err) {
        failures.push(`${sink.name}: ${(err as Error).message}`);
      }
    }
    if (failures.length > 0) {
      deps.logger.warn({ incidentId: n.incidentId, failures }, 'notification not delivered everywhere; retrying');
      throw new Error(`notification not delivered: ${failures.join('; ')}`);
    }
    return { delivered: [...already] };
  }
  return { notify, openIncidentChannel };
}
