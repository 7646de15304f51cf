/**
 * SMTP activities (seed 004, "Email delivery issues"): which relay a target's mail component is
 * configured with (read from its container env), a real probe of a relay (connect, greeting, EHLO,
 * MAIL FROM, RCPT TO, then RSET: no DATA, so no mail is ever sent), and the switch of the component
 * to another configured relay (a recreate with the selecting env changed).
 *
 * A probe that fails is a finding, not an error: it returns what the relay answered. Only bad input
 * and missing configuration throw.
 */
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import type Docker from 'dockerode';
import type { TargetConfig } from '../../config';
import type { ActivityDeps } from '../engine/deps';
import { targetConfig } from '../engine/deps';
import { createDockerActivities, type ActionOutcome } from '../containers/docker';
import { ErrorType, describeError, permanent } from '../engine/errors';
import { inspectComponent as inspectOwn } from '../containers/containers';

export type SmtpRelayName = 'primary' | 'sandbox';
type SmtpConfig = NonNullable<TargetConfig['smtp']>;

export interface SmtpRelayInUse {
  /** Which configured relay the component's env selects; `other` for an address that is neither. */
  relay: SmtpRelayName | 'other';
  component: string;
  running: boolean;
  /** host:port as the component is given it. */
  address: string;
  /** False when the component's env names no relay and the primary is assumed (the app's default). */
  fromEnv: boolean;
  /** The variable read for the host (`smtp.hostEnv`); absent in results recorded before. */
  hostEnv?: string;
}

export type SmtpStage = 'connect' | 'greeting' | 'ehlo' | 'mail' | 'rcpt' | 'done';

export interface SmtpProbe {
  relay: SmtpRelayName | 'other';
  /** host:port the probe connected to. */
  address: string;
  ok: boolean;
  /** The stage that failed, or `done`. */
  stage: SmtpStage;
  connectMs: number | null;
  /** The greeting, e.g. `220 mail.example.com ESMTP ready`. */
  banner: string | null;
  /** EHLO keywords (SIZE, 8BITMIME, PIPELINING, ...). */
  extensions: string[];
  recipient: string;
  /** The refusing reply's code and text, when the relay answered with one. */
  code: number | null;
  text: string | null;
  /** A network failure (ECONNREFUSED, timeout), when there was no reply. */
  error: string | null;
}

interface Reply {
  code: number;
  lines: string[];
}

// A mailbox without anything that could end an SMTP command line early.
const MAILBOX = /^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9.-]{1,253}$/;

/** One SMTP conversation over a socket: sends a command line, reads the (multi-line) reply. */
class SmtpConversation {
  private buffer = '';
  private lines: string[] = [];
  private replies: Reply[] = [];
  private waiting: { resolve: (r: Reply) => void; reject: (e: Error) => void } | undefined;
  private failure: Error | undefined;

  constructor(
    private readonly socket: net.Socket,
    private readonly timeoutMs: number,
  ) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.onData(chunk));
    socket.on('error', (err) => this.fail(err));
    socket.on('close', () => this.fail(new Error('connection closed by the relay')));
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    let nl: number;
    while ((nl = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, nl).replace(/\r$/, '');
      this.buffer = this.buffer.slice(nl + 1);
      this.lines.push(line);
      // "250-..." continues a reply, "250 ..." (or a bare code) ends it.
      if (/^\d{3}(?: |$)/.test(line)) {
        this.replies.push({ code: Number(line.slice(0, 3)), lines: this.lines.map((l) => l.slice(4)) });
        this.lines = [];
      }
    }
    this.deliver();
  }

  private fail(err: Error): void {
    this.failure ??= err;
    this.deliver();
  }

  private deliver(): void {
    if (!this.waiting) return;
    const next = this.replies.shift();
    if (next) this.waiting.resolve(next);
    else if (this.failure) this.waiting.reject(this.failure);
    else return;
    this.waiting = undefined;
  }

  reply(): Promise<Reply> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting = undefined;
        reject(new Error(`no reply within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      this.waiting = {
        resolve: (r) => (clearTimeout(timer), resolve(r)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      };
      this.deliver();
    });
  }

  async command(line: string): Promise<Reply> {
    this.socket.write(`${line}\r\n`);
    return this.reply();
  }
}

function connect(host: string, port: number, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`connect to ${host}:${port} timed out after ${timeoutMs} ms`)));
    socket.once('connect', () => {
      socket.setTimeout(0);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

/** Talks to a relay up to RCPT TO and backs out with RSET; never sends DATA. */
export async function probeSmtp(opts: {
  relay: SmtpRelayName | 'other';
  host: string;
  port: number;
  heloName: string;
  from: string;
  to: string;
  timeoutMs: number;
}): Promise<SmtpProbe> {
  const result: SmtpProbe = {
    relay: opts.relay,
    address: `${opts.host}:${opts.port}`,
    ok: false,
    stage: 'connect',
    connectMs: null,
    banner: null,
    extensions: [],
    recipient: opts.to,
    code: null,
    text: null,
    error: null,
  };
  const started = performance.now();
  let socket: net.Socket;
  try {
    socket = await connect(opts.host, opts.port, opts.timeoutMs);
  } catch (err) {
    result.error = describeError(err);
    return result;
  }
  result.connectMs = Math.round(performance.now() - started);
  const talk = new SmtpConversation(socket, opts.timeoutMs);
  const refused = (stage: SmtpStage, r: Reply): SmtpProbe => ({ ...result, stage, code: r.code, text: r.lines.join(' ') });
  try {
    result.stage = 'greeting';
    const greeting = await talk.reply();
    result.banner = `${greeting.code} ${greeting.lines.join(' ')}`;
    if (greeting.code !== 220) return refused('greeting', greeting);
    result.stage = 'ehlo';
    const ehlo = await talk.command(`EHLO ${opts.heloName}`);
    if (ehlo.code !== 250) return refused('ehlo', ehlo);
    result.extensions = ehlo.lines.slice(1).filter(Boolean);
    result.stage = 'mail';
    const mail = await talk.command(`MAIL FROM:<${opts.from}>`);
    if (mail.code !== 250) return refused('mail', mail);
    result.stage = 'rcpt';
    const rcpt = await talk.command(`RCPT TO:<${opts.to}>`);
    if (rcpt.code !== 250 && rcpt.code !== 251) return refused('rcpt', rcpt);
    await talk.command('RSET');
    return { ...result, ok: true, stage: 'done' };
  } catch (err) {
    result.error = describeError(err);
    return result;
  } finally {
    // Polite when the relay still listens; the socket goes either way.
    if (!socket.destroyed) socket.end('QUIT\r\n');
    setTimeout(() => socket.destroy(), 1000).unref();
  }
}

export function createSmtpActivities(deps: ActivityDeps) {
  const docker = createDockerActivities(deps);

  function smtpConfig(target: string): SmtpConfig {
    const smtp = targetConfig(deps, target).smtp;
    if (!smtp) throw permanent(ErrorType.NotConfigured, `target "${target}" has no smtp section in its configuration`);
    return smtp;
  }

  const inspectComponent = (target: string, component: string): Promise<Docker.ContainerInspectInfo> => inspectOwn(deps, target, component);

  function envValue(env: string[], name: string): string | undefined {
    const entry = env.find((kv) => kv.startsWith(`${name}=`));
    return entry === undefined ? undefined : entry.slice(name.length + 1);
  }

  /** The relay the component's container env selects (SMTP_HOST / SMTP_PORT by default). */
  async function smtpRelayInUse(input: { target: string }): Promise<SmtpRelayInUse> {
    const smtp = smtpConfig(input.target);
    const info = await inspectComponent(input.target, smtp.component);
    const env = info.Config.Env ?? [];
    const host = envValue(env, smtp.hostEnv);
    const port = envValue(env, smtp.portEnv);
    const base = { component: smtp.component, running: info.State.Running, hostEnv: smtp.hostEnv };
    if (host === undefined) return { ...base, relay: 'primary', address: `${smtp.primary.host}:${smtp.primary.port}`, fromEnv: false };
    const address = `${host}:${port ?? String(smtp.defaultPort)}`;
    const named = (['primary', 'sandbox'] as const).find((r) => `${smtp[r].host}:${smtp[r].port}` === address);
    return { ...base, relay: named ?? 'other', address, fromEnv: true };
  }

  /** How the engine reaches a configured relay. */
  function probeAddress(smtp: SmtpConfig, relay: SmtpRelayName): { relay: SmtpRelayName; host: string; port: number } {
    const r = smtp[relay];
    return { relay, host: r.probeHost ?? r.host, port: r.probePort ?? r.port };
  }

  /** The relay in use: a configured one as the engine reaches it, any other address as the component has it. */
  async function inUseAddress(target: string, smtp: SmtpConfig): Promise<{ relay: SmtpRelayName | 'other'; host: string; port: number }> {
    const inUse = await smtpRelayInUse({ target });
    if (inUse.relay !== 'other') return probeAddress(smtp, inUse.relay);
    const i = inUse.address.lastIndexOf(':');
    return { relay: 'other', host: inUse.address.slice(0, i), port: Number(inUse.address.slice(i + 1)) };
  }

  /** Probes a configured relay, or the one in use; `recipient` replaces the configured RCPT TO. */
  async function probeSmtpRelay(input: { target: string; relay: SmtpRelayName | 'in-use'; recipient?: string }): Promise<SmtpProbe> {
    const smtp = smtpConfig(input.target);
    const to = input.recipient ?? smtp.probe.to;
    for (const [what, box] of [['recipient', to], ['sender', smtp.probe.from]] as const) {
      if (!MAILBOX.test(box)) throw permanent(ErrorType.BadInput, `${what} "${box.slice(0, 80)}" is not a plain mailbox`);
    }
    const { relay, host, port } = input.relay === 'in-use' ? await inUseAddress(input.target, smtp) : probeAddress(smtp, input.relay);
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw permanent(ErrorType.BadInput, `${smtp.component}'s ${smtp.portEnv} is not a port number`);
    }
    return probeSmtp({ relay, host, port, heloName: smtp.probe.heloName, from: smtp.probe.from, to, timeoutMs: smtp.timeoutMs });
  }

  /** Recreates the mail component with the env that selects `relay`. Idempotent. */
  async function switchSmtpRelay(input: { target: string; relay: SmtpRelayName }): Promise<ActionOutcome> {
    const smtp = smtpConfig(input.target);
    const want = smtp[input.relay];
    const r = await docker.recreateContainer({
      target: input.target,
      component: smtp.component,
      env: { [smtp.hostEnv]: want.host, [smtp.portEnv]: String(want.port) },
    });
    const now = await smtpRelayInUse({ target: input.target });
    if (now.relay !== input.relay || !now.running) {
      throw new Error(`${smtp.component} was recreated but uses ${now.relay} (${now.address})${now.running ? '' : ' and is not running'}`);
    }
    const what = `${smtp.component} uses the ${input.relay} relay ${now.address} (${smtp.hostEnv}/${smtp.portEnv})`;
    return { performed: r.performed, detail: r.performed ? `${r.detail}; ${what}` : `already: ${what}` };
  }

  return { smtpRelayInUse, probeSmtpRelay, switchSmtpRelay };
}
