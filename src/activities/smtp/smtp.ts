/**
 * SMTP activities (seed 004, "Email delivery issues"): which relay a target's mail component is
 * configured with (read from its container env), a real probe of a relay, and the switch of the
 * component to another configured relay (a recreate with the selecting env changed).
 *
 * The probe speaks what a relay on the submission port requires: connect, greeting, EHLO, STARTTLS
 * (the socket upgraded with node:tls, the certificate verified), EHLO again, AUTH (PLAIN or LOGIN),
 * then MAIL FROM, RCPT TO and RSET: no DATA, so no mail is ever sent. A relay that offers no
 * STARTTLS keeps the plain conversation unless TLS is required (always, when AUTH is configured):
 * credentials never travel in plain text.
 *
 * A probe that fails is a finding, not an error: it returns what the relay answered, or that it
 * could not be reached (`unreached`: nothing was learned about it). Only bad input and missing
 * configuration throw. The password is read here, sent only inside TLS, and appears in no result,
 * log or error: replies are scrubbed of it before they are kept.
 */
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { StringDecoder } from 'node:string_decoder';
import tls from 'node:tls';
import type Docker from 'dockerode';
import { readSecret, type TargetConfig } from '../../config';
import type { ActivityDeps } from '../engine/deps';
import { targetConfig } from '../engine/deps';
import { createDockerActivities, type ActionOutcome } from '../containers/docker';
import { ErrorType, describeError, permanent } from '../engine/errors';
import { inspectComponent as inspectOwn } from '../containers/containers';

export type SmtpRelayName = 'primary' | 'sandbox';
type SmtpConfig = NonNullable<TargetConfig['smtp']>;
type SmtpRelayConfig = SmtpConfig['primary'];

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

export type SmtpStage = 'connect' | 'greeting' | 'ehlo' | 'starttls' | 'auth' | 'mail' | 'rcpt' | 'done';
export type SmtpAuthMechanism = 'PLAIN' | 'LOGIN';

export interface SmtpTlsSession {
  /** e.g. `TLSv1.3`. */
  protocol: string;
  /** The relay's certificate subject, e.g. `CN=smtp.example.com`. */
  subject: string;
  issuer: string;
  validTo: string;
}

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
  /** EHLO keywords (SIZE, 8BITMIME, PIPELINING, ...); after STARTTLS, those of the second EHLO. */
  extensions: string[];
  recipient: string;
  /** The refusing reply's code and text, when the relay answered with one. */
  code: number | null;
  text: string | null;
  /** A network failure (ECONNREFUSED, timeout), when there was no reply. */
  error: string | null;
  /**
   * The conversation after STARTTLS; null when it stayed in plain text (STARTTLS not offered and not
   * required). Absent in results recorded before the probe spoke STARTTLS.
   */
  tls?: SmtpTlsSession | null;
  /** The AUTH mechanism the relay accepted; null when no AUTH is configured. Absent in older results. */
  auth?: SmtpAuthMechanism | null;
  /** What is wrong, in one line, when the relay showed it: `STARTTLS not offered`, `AUTH failed (535 ...)`. */
  problem?: string;
  /**
   * The probe failed without an answer from the relay (no connection, a reset, a timeout): nothing
   * is known about it, neither health nor a fault. Absent in results recorded before this rule.
   */
  unreached?: boolean;
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
  private socket!: net.Socket;
  private decoder = new StringDecoder('utf8');
  private readonly onData = (chunk: Buffer): void => this.read(this.decoder.write(chunk));
  private readonly onError = (err: Error): void => this.fail(err);
  private readonly onClose = (): void => this.fail(new Error('connection closed by the relay'));

  constructor(
    socket: net.Socket,
    private readonly timeoutMs: number,
  ) {
    this.attach(socket);
  }

  get current(): net.Socket {
    return this.socket;
  }

  private attach(socket: net.Socket): void {
    this.socket = socket;
    socket.on('data', this.onData);
    socket.on('error', this.onError);
    socket.on('close', this.onClose);
  }

  /**
   * Hands the socket over to TLS (after a 220 to STARTTLS) and goes on over the TLS socket once
   * `secure` resolves. Anything the relay sent before the handshake is discarded (RFC 3207).
   */
  async upgrade(secure: (plain: net.Socket) => Promise<tls.TLSSocket>): Promise<tls.TLSSocket> {
    const plain = this.socket;
    plain.off('data', this.onData);
    plain.off('close', this.onClose);
    plain.off('error', this.onError);
    // The TLS socket reports the connection's failures from here on; the plain one must not throw them.
    plain.on('error', () => undefined);
    this.buffer = '';
    this.lines = [];
    this.replies = [];
    this.decoder = new StringDecoder('utf8');
    const s = await secure(plain);
    this.attach(s);
    return s;
  }

  private read(text: string): void {
    this.buffer += text;
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

/** `{CN: 'a', O: 'b'}` → `CN=a, O=b`. */
function dn(name: object | undefined): string {
  return Object.entries(name ?? {})
    .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join('+') : String(v)}`)
    .join(', ');
}

/** A TLS handshake over the plain socket; the certificate is checked afterwards, so its fault can be named. */
function handshake(plain: net.Socket, opts: { name: string; ca?: string; timeoutMs: number }): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const secure = tls.connect({
      socket: plain,
      // The name the certificate is checked against (without it node checks "localhost"); SNI
      // carries host names only, an address is checked against the certificate's IP entries.
      host: opts.name,
      ...(net.isIP(opts.name) ? {} : { servername: opts.name }),
      // A configured CA is trusted besides the system's, not instead of them.
      ...(opts.ca ? { ca: [...tls.rootCertificates, opts.ca] } : {}),
      rejectUnauthorized: false,
    });
    const timer = setTimeout(() => secure.destroy(new Error(`TLS handshake timed out after ${opts.timeoutMs} ms`)), opts.timeoutMs);
    secure.once('secureConnect', () => {
      clearTimeout(timer);
      resolve(secure);
    });
    secure.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/** Why the relay's certificate is not trusted, or undefined when it is (chain and name). */
function untrusted(secure: tls.TLSSocket, name: string): string | undefined {
  const cert = secure.getPeerCertificate();
  const subject = cert?.subject ? `subject ${dn(cert.subject)}` : 'no certificate';
  const names = cert?.subjectaltname ? `, names ${cert.subjectaltname}` : '';
  const mismatch = secure.authorized ? tls.checkServerIdentity(name, cert) : undefined;
  const code = secure.authorized ? (mismatch ? 'ERR_TLS_CERT_ALTNAME_INVALID' : undefined) : String(secure.authorizationError);
  if (!code) return undefined;
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') return `${code}: not issued for ${name} (${subject}${names})`;
  return `${code} (${subject})`;
}

function sessionOf(secure: tls.TLSSocket): SmtpTlsSession {
  const raw = secure.getPeerCertificate().raw;
  const x = new X509Certificate(raw);
  return {
    protocol: secure.getProtocol() ?? 'TLS',
    subject: x.subject.split('\n').join(', '),
    issuer: x.issuer.split('\n').join(', '),
    validTo: new Date(x.validTo).toISOString(),
  };
}

/** The mechanisms in `AUTH PLAIN LOGIN` (or the old `AUTH=LOGIN`) of the EHLO keywords. */
function authMechanisms(extensions: string[]): string[] {
  return extensions.filter((e) => /^AUTH[ =]/i.test(e)).flatMap((e) => e.slice(5).trim().toUpperCase().split(/\s+/));
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
  /**
   * STARTTLS: used whenever the relay offers it; `required` makes its absence a problem. `name` is
   * what the certificate must be issued for (default: `host`); `ca` a PEM trusted besides the system's.
   */
  tls?: { required: boolean; name?: string; ca?: string };
  /** AUTH after STARTTLS; `mechanism` forces one, else PLAIN when offered, then LOGIN. */
  auth?: { user: string; password: string; mechanism?: SmtpAuthMechanism };
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
    tls: null,
    auth: null,
  };
  const secrets = opts.auth ? secretForms(opts.auth) : [];
  const scrub = (text: string): string => secrets.reduce((t, s) => t.split(s).join('[redacted]'), text);
  const started = performance.now();
  let socket: net.Socket;
  try {
    socket = await connect(opts.host, opts.port, opts.timeoutMs);
  } catch (err) {
    return { ...result, error: describeError(err), unreached: true };
  }
  result.connectMs = Math.round(performance.now() - started);
  const talk = new SmtpConversation(socket, opts.timeoutMs);
  const refused = (stage: SmtpStage, r: Reply, problem?: string): SmtpProbe => {
    const text = scrub(r.lines.join(' '));
    return { ...result, stage, code: r.code, text, ...(problem ? { problem: `${problem} (${r.code} ${text})`.replace(/ \)$/, ')') } : {}) };
  };
  const problem = (stage: SmtpStage, what: string): SmtpProbe => ({ ...result, stage, problem: what });
  const requireTls = opts.tls?.required ?? Boolean(opts.auth);
  try {
    result.stage = 'greeting';
    const greeting = await talk.reply();
    result.banner = scrub(`${greeting.code} ${greeting.lines.join(' ')}`);
    if (greeting.code !== 220) return refused('greeting', greeting);
    result.stage = 'ehlo';
    let ehlo = await talk.command(`EHLO ${opts.heloName}`);
    if (ehlo.code !== 250) return refused('ehlo', ehlo);
    result.extensions = ehlo.lines.slice(1).filter(Boolean);

    result.stage = 'starttls';
    if (result.extensions.some((e) => e.toUpperCase() === 'STARTTLS')) {
      const go = await talk.command('STARTTLS');
      if (go.code !== 220) return refused('starttls', go, 'STARTTLS refused');
      const name = opts.tls?.name ?? opts.host;
      let secure: tls.TLSSocket;
      try {
        secure = await talk.upgrade((plain) => handshake(plain, { name, timeoutMs: opts.timeoutMs, ...(opts.tls?.ca ? { ca: opts.tls.ca } : {}) }));
      } catch (err) {
        // A TLS alert is the relay's answer; a reset or a timeout says nothing about it.
        const code = (err as { code?: unknown }).code;
        if (typeof code === 'string' && code.startsWith('ERR_SSL')) return problem('starttls', `TLS handshake failed (${describeError(err)})`);
        return { ...result, error: describeError(err), unreached: true };
      }
      const why = untrusted(secure, name);
      if (why) return problem('starttls', `certificate not trusted: ${why}`);
      result.tls = sessionOf(secure);
      ehlo = await talk.command(`EHLO ${opts.heloName}`);
      if (ehlo.code !== 250) return refused('starttls', ehlo, 'EHLO after STARTTLS refused');
      result.extensions = ehlo.lines.slice(1).filter(Boolean);
    } else if (requireTls) {
      return problem('starttls', opts.auth ? 'STARTTLS not offered: credentials are not sent in plain text' : 'STARTTLS not offered');
    }

    if (opts.auth) {
      result.stage = 'auth';
      const offered = authMechanisms(result.extensions);
      const mechanism = opts.auth.mechanism ?? (['PLAIN', 'LOGIN'] as const).find((m) => offered.includes(m));
      if (!mechanism || !offered.includes(mechanism)) {
        const wanted = opts.auth.mechanism ?? 'PLAIN or LOGIN';
        return problem('auth', offered.length ? `AUTH ${wanted} not offered (the relay offers ${offered.join(', ')})` : 'AUTH not offered');
      }
      const reply = await authenticate(talk, mechanism, opts.auth);
      if (reply.code !== 235) return refused('auth', reply, 'AUTH failed');
      result.auth = mechanism;
    }

    result.stage = 'mail';
    const mail = await talk.command(`MAIL FROM:<${opts.from}>`);
    if (mail.code !== 250) return refused('mail', mail);
    result.stage = 'rcpt';
    const rcpt = await talk.command(`RCPT TO:<${opts.to}>`);
    if (rcpt.code !== 250 && rcpt.code !== 251) return refused('rcpt', rcpt);
    await talk.command('RSET');
    return { ...result, ok: true, stage: 'done' };
  } catch (err) {
    // No reply (the relay closed the connection or went silent): nothing learned at this stage.
    return { ...result, error: scrub(describeError(err)), unreached: true };
  } finally {
    // Polite when the relay still listens; the socket goes either way.
    const last = talk.current;
    if (!last.destroyed) last.end('QUIT\r\n');
    setTimeout(() => last.destroy(), 1000).unref();
  }
}

/** The password and each encoding of it that goes on the wire, for scrubbing replies. */
function secretForms(auth: { user: string; password: string }): string[] {
  const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');
  return [b64(`\0${auth.user}\0${auth.password}`), b64(auth.password), auth.password].filter((s) => s.length >= 4);
}

/** AUTH PLAIN with the initial response (RFC 4954), or AUTH LOGIN's two challenges. */
async function authenticate(talk: SmtpConversation, mechanism: SmtpAuthMechanism, auth: { user: string; password: string }): Promise<Reply> {
  const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');
  if (mechanism === 'PLAIN') return talk.command(`AUTH PLAIN ${b64(`\0${auth.user}\0${auth.password}`)}`);
  const user = await talk.command('AUTH LOGIN');
  if (user.code !== 334) return user;
  const pass = await talk.command(b64(auth.user));
  if (pass.code !== 334) return pass;
  return talk.command(b64(auth.password));
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
    const settings = relay === 'other' ? undefined : { name: relay, conf: smtp[relay] };
    return probeSmtp({
      relay,
      host,
      port,
      heloName: smtp.probe.heloName,
      from: smtp.probe.from,
      to,
      timeoutMs: smtp.timeoutMs,
      ...(settings ? await securityOf(settings.name, settings.conf) : {}),
    });
  }

  /** The STARTTLS and AUTH settings of a configured relay, with its CA file and password read. */
  async function securityOf(name: SmtpRelayName, r: SmtpRelayConfig): Promise<Pick<Parameters<typeof probeSmtp>[0], 'tls' | 'auth'>> {
    let ca: string | undefined;
    if (r.caFile) {
      try {
        ca = await readFile(path.resolve(r.caFile), 'utf8');
      } catch (err) {
        throw permanent(ErrorType.NotConfigured, `smtp.${name}.caFile cannot be read (${(err as { code?: string }).code ?? 'error'}: ${path.resolve(r.caFile)})`);
      }
    }
    let auth: { user: string; password: string; mechanism?: SmtpAuthMechanism } | undefined;
    if (r.auth) {
      let password: string | undefined;
      try {
        password = readSecret(r.auth.password);
      } catch (err) {
        // ConfigError names the file, never its content.
        throw permanent(ErrorType.NotConfigured, `smtp.${name}.auth.password: ${describeError(err)}`);
      }
      if (!password) throw permanent(ErrorType.NotConfigured, `smtp.${name}.auth.password is empty${r.auth.password.env ? ` (${r.auth.password.env} is not set)` : ''}`);
      auth = { user: r.auth.user, password, ...(r.auth.mechanism ? { mechanism: r.auth.mechanism } : {}) };
    }
    return {
      tls: { required: r.requireTls ?? Boolean(r.auth), name: r.tlsName ?? r.host, ...(ca ? { ca } : {}) },
      ...(auth ? { auth } : {}),
    };
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
