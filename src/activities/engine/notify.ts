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

export interface Notification {
  incidentId: string;
  kind: 'approval-needed' | 'escalation' | 'status' | 'resolved' | 'expired';
  severity: number;
  tier?: string;
  contacts?: string[];
  title: string;
  text: string;
  /** For status-page updates: investigating, identified, monitoring, resolved. */
  stage?: string;
}

type Entry = Notification & { at: string };

interface Sink {
  name: string;
  deliver(entry: Entry): Promise<void>;
}

/** Slack's mrkdwn: *bold* rather than Markdown's **bold**. */
export function slackMessage(e: Entry, opts: { username: string; channel?: string }): Record<string, unknown> {
  const mrkdwn = (s: string): string => s.replace(/\*\*(.+?)\*\*/g, '*$1*');
  const who = e.contacts?.length ? ` ${e.contacts.join(' ')}` : '';
  return {
    username: opts.username,
    ...(opts.channel ? { channel: opts.channel } : {}),
    text: `*${mrkdwn(e.title)}*${who}\n${mrkdwn(e.text)}\n_${e.incidentId} · SEV-${e.severity} · ${e.kind}_`,
  };
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
          // The URL holds a token: it is read here and appears in no message or log.
          const url = readSecret(slack.webhook);
          if (!url) throw new Error('the Slack webhook secret is empty');
          const body = JSON.stringify(slackMessage(e, { username: slack.username, ...(slack.channel ? { channel: slack.channel } : {}) }));
          let last = '';
          for (let attempt = 1; attempt <= slack.attempts; attempt++) {
            try {
              const res = await doFetch(url, {
                method: 'POST',
                headers: { 'content-type': 'application/json' },
                body,
                signal: AbortSignal.timeout(slack.timeoutMs),
              });
              if (res.ok) return;
              last = `HTTP ${res.status}`;
              // 4xx other than 429 will not get better by asking again.
              if (res.status >= 400 && res.status < 500 && res.status !== 429) break;
            } catch (err) {
              last = (err as Error).name === 'TimeoutError' ? `no answer in ${slack.timeoutMs} ms` : 'connection failed';
            }
            if (attempt < slack.attempts) await sleep(250 * 2 ** (attempt - 1));
          }
          throw new Error(`Slack webhook refused the message: ${last}`);
        },
      });
    }
    return list;
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
  return { notify };
}
