/**
 * Approve from Slack: the interaction endpoint behind the Approve / Reject buttons of an approval
 * request (the notify activity's Block Kit message).
 *
 *   POST /slack/interactions   application/x-www-form-urlencoded, `payload=<block_actions JSON>`
 *
 * A request counts only if Slack signed it: `X-Slack-Signature` is `v0=` HMAC-SHA256 of
 * `v0:<X-Slack-Request-Timestamp>:<raw body>` under the app's signing secret (secrets file, `slack`),
 * compared in constant time, with the timestamp within five minutes of now; a signature seen before is
 * a replay and is refused. The Slack user is mapped to an operator identity by the secrets file
 * (`slack.users`); an unmapped user decides nothing. The decision then takes the authenticated path
 * every decision takes: sealed for that identity (`via: slack`) and sent as the incident's "decide"
 * update, whose validator applies the incident's policy (allowed approver, not the requester, two
 * people for a two-person step). Slack gets its answer at once; the outcome replaces the message (or,
 * for a refusal, is shown to the presser only) through the interaction's `response_url`.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { Client, Connection, WorkflowUpdateFailedError } from '@temporalio/client';
import type { Logger } from 'pino';
import { sealingCodecs } from '../lib/codec/index';
import type { CodecSecrets, SlackSettings } from '../lib/codec/secrets';
import type { CodecServerConfig } from './config';

export const SLACK_PATH = '/slack/interactions';
/** Interaction payloads are small; a larger body is not Slack's. */
export const SLACK_BODY_LIMIT = 64 * 1024;
const ID = /^[\w.:/-]{1,200}$/;
const MAX_SEEN = 10_000;

export interface SlackDecision {
  incidentId: string;
  stepId: string;
  decision: 'approve' | 'reject';
}

/** What the "decide" update answers. */
export interface DecideResult {
  stepId: string;
  state: string;
  approvals: string[];
}

/** Sends a decision sealed for `operator`; throws `WorkflowUpdateFailedError` when the incident refuses it. */
export type SendDecision = (operator: string, d: SlackDecision) => Promise<DecideResult>;

export interface SlackAnswer {
  status: number;
  json?: Record<string, unknown>;
  /** Work that continues after the answer (the decision, then the message's update). */
  after?: Promise<void>;
}

/** `v0=<hex>`: Slack's request signature. */
export function slackSignature(secret: Buffer, timestamp: string, body: Buffer): string {
  return `v0=${createHmac('sha256', secret).update(`v0:${timestamp}:`).update(body).digest('hex')}`;
}

export function createSlackInteractions(opts: {
  settings: SlackSettings;
  config: CodecServerConfig;
  logger: Logger;
  send: SendDecision;
  fetch?: typeof fetch;
  now?: () => number;
}) {
  const { settings, config, logger } = opts;
  const doFetch = opts.fetch ?? fetch;
  const now = opts.now ?? Date.now;
  /** Signatures already handled, until their timestamp leaves the window. */
  const seen = new Map<string, number>();

  function header(h: IncomingHttpHeaders, name: string): string | undefined {
    const v = h[name];
    return typeof v === 'string' ? v : undefined;
  }

  /** Before the body is read: a request without Slack's headers is not Slack's. */
  function precheck(h: IncomingHttpHeaders): SlackAnswer | undefined {
    if (!header(h, 'x-slack-signature') || !header(h, 'x-slack-request-timestamp'))
      return { status: 401, json: { error: 'not signed by Slack: X-Slack-Signature and X-Slack-Request-Timestamp are required' } };
    return undefined;
  }

  function verify(h: IncomingHttpHeaders, body: Buffer): SlackAnswer | undefined {
    const pre = precheck(h);
    if (pre) return pre;
    const ts = header(h, 'x-slack-request-timestamp') as string;
    const sig = header(h, 'x-slack-signature') as string;
    const skewMs = Math.abs(now() - Number(ts) * 1000);
    if (!/^\d{1,12}$/.test(ts) || skewMs > config.slack.maxSkew)
      return { status: 401, json: { error: `stale or malformed X-Slack-Request-Timestamp: more than ${Math.round(config.slack.maxSkew / 1000)} s from now` } };
    const want = Buffer.from(slackSignature(settings.signingSecret, ts, body));
    const given = Buffer.from(sig);
    if (given.length !== want.length || !timingSafeEqual(given, want)) return { status: 401, json: { error: 'the Slack signature does not verify' } };
    const t = now();
    for (const [s, until] of seen) if (until <= t) seen.delete(s);
    if (seen.has(sig)) return { status: 409, json: { error: 'this Slack request was already handled (a replay)' } };
    if (seen.size >= MAX_SEEN) seen.delete(seen.keys().next().value as string);
    seen.set(sig, Number(ts) * 1000 + config.slack.maxSkew);
    return undefined;
  }

  const ephemeral = (text: string): SlackAnswer => ({ status: 200, json: { response_type: 'ephemeral', replace_original: false, text } });

  /** Posts to the interaction's response_url, if it is Slack's (or a configured prefix): never anywhere else. */
  async function respond(url: string | undefined, message: Record<string, unknown>): Promise<void> {
    if (!url || !config.slack.responseUrlPrefixes.some((p) => url.startsWith(p))) {
      logger.warn({ responseUrl: url?.slice(0, 40) }, 'slack response_url not among slack.responseUrlPrefixes: outcome not posted');
      return;
    }
    try {
      const res = await doFetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(message),
        signal: AbortSignal.timeout(5000),
      });
      if (!res.ok) logger.warn({ status: res.status }, 'slack response_url refused the outcome');
    } catch (err) {
      logger.warn({ err: { message: (err as Error).message } }, 'slack response_url unreachable');
    }
  }

  /** Handles a verified, parsed interaction. */
  function interaction(payload: Record<string, unknown>): SlackAnswer {
    const user = payload.user as { id?: unknown } | undefined;
    const action = (payload.actions as { action_id?: unknown; value?: unknown }[] | undefined)?.[0];
    if (payload.type !== 'block_actions' || !action) return ephemeral('Only the Approve and Reject buttons of an approval request are handled here.');
    const decision = action.action_id === 'approve' || action.action_id === 'reject' ? action.action_id : undefined;
    let target: { incidentId?: unknown; stepId?: unknown } = {};
    try {
      target = JSON.parse(String(action.value)) as typeof target;
    } catch {
      // not one of ours
    }
    if (!decision || typeof target.incidentId !== 'string' || !ID.test(target.incidentId) || typeof target.stepId !== 'string' || !ID.test(target.stepId))
      return ephemeral('This button is not an approval of the remediation engine; nothing was sent.');
    const slackUser = typeof user?.id === 'string' ? user.id : '';
    const operator = settings.users.get(slackUser);
    if (!operator) {
      logger.warn({ slackUser, incidentId: target.incidentId, stepId: target.stepId }, 'slack decision from an unmapped user refused');
      return ephemeral(`Your Slack user (${slackUser || 'unknown'}) is not mapped to an approver of the remediation engine: nothing was sent.`);
    }
    const d: SlackDecision = { incidentId: target.incidentId, stepId: target.stepId, decision };
    const responseUrl = typeof payload.response_url === 'string' ? payload.response_url : undefined;
    const original = ((payload.message as { blocks?: { type?: string }[] } | undefined)?.blocks ?? []).filter((b) => b.type === 'section');
    const after = (async () => {
      try {
        const r = await opts.send(operator, d);
        logger.info({ operator, slackUser, ...d, state: r.state }, 'slack decision counted');
        const verb = d.decision === 'approve' ? 'Approved' : 'Rejected';
        const text = `${verb} by ${operator} (Slack): ${d.stepId} is now ${r.state} (${r.approvals.length} approval(s)${r.approvals.length ? `: ${r.approvals.join(', ')}` : ''})`;
        await respond(responseUrl, {
          replace_original: true,
          text,
          blocks: [...original, { type: 'context', elements: [{ type: 'mrkdwn', text }] }],
        });
      } catch (err) {
        const why = err instanceof WorkflowUpdateFailedError ? (err.cause?.message ?? err.message) : `the engine could not be reached: ${(err as Error).message}`;
        logger.warn({ operator, slackUser, ...d, why }, 'slack decision not counted');
        await respond(responseUrl, { response_type: 'ephemeral', replace_original: false, text: `Not counted: ${why}` });
      }
    })();
    // Never a rejection left unhandled: every failure above is logged where it happens.
    return { status: 200, after: after.catch(() => undefined) };
  }

  return {
    precheck,
    /** A request whose body has been read (at most SLACK_BODY_LIMIT bytes). */
    handle(h: IncomingHttpHeaders, body: Buffer): SlackAnswer {
      const refused = verify(h, body);
      if (refused) {
        logger.warn({ status: refused.status, why: refused.json?.error }, 'slack request refused');
        return refused;
      }
      const raw = new URLSearchParams(body.toString('utf8')).get('payload');
      let payload: unknown;
      try {
        payload = raw ? JSON.parse(raw) : undefined;
      } catch {
        payload = undefined;
      }
      if (!payload || typeof payload !== 'object' || Array.isArray(payload)) return { status: 400, json: { error: 'expected a form field "payload" holding a Slack interaction (JSON)' } };
      return interaction(payload as Record<string, unknown>);
    },
  };
}

/**
 * Sends decisions to Temporal as the "decide" update, sealed for the operator: one connection, one
 * client per operator (each with codecs that seal for that identity).
 */
export function temporalSender(config: CodecServerConfig, secrets: CodecSecrets): { send: SendDecision; close(): Promise<void> } {
  let connection: Promise<Connection> | undefined;
  const clients = new Map<string, Client>();
  async function clientFor(operator: string): Promise<Client> {
    connection ??= Connection.connect({ address: config.temporal.address });
    const conn = await connection;
    let c = clients.get(operator);
    if (!c) {
      c = new Client({ connection: conn, namespace: config.temporal.namespace, dataConverter: { payloadCodecs: sealingCodecs(secrets, operator, 'slack') } });
      clients.set(operator, c);
    }
    return c;
  }
  return {
    async send(operator, d) {
      const client = await clientFor(operator);
      return client.workflow.getHandle(d.incidentId).executeUpdate<DecideResult, [SlackDecision]>('decide', { args: [d] });
    },
    async close() {
      if (connection) await (await connection).close();
    },
  };
}
