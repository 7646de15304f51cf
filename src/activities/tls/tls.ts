/**
 * TLS activities (INC-13): what certificate an endpoint really serves (a handshake with node:tls),
 * the certificate file behind it, renewal by the configured command, an emergency self-signed
 * certificate made with openssl, and reloading the component that serves it.
 *
 * Only public certificate data leaves these activities; the private key is written to the
 * certificate directory with mode 600 and never read back.
 */
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { promisify } from 'node:util';
import type { ActivityDeps } from '../engine/deps';
import { dockerFor, targetConfig } from '../engine/deps';
import { createDockerActivities } from '../containers/docker';
import { ErrorType, describeError, permanent } from '../engine/errors';
import { makeSelfSignedCertificate, parseAltNames } from './self-signed';

const run = promisify(execFile);
const DAY_MS = 86_400_000;
/** Organisation name that marks a certificate as an emergency one issued by this engine. */
export const EMERGENCY_ORG = 'remediation-engine emergency';

export interface ChainEntry {
  subject: string;
  issuer: string;
  notAfter: string;
}

export interface ServedCertificate {
  ok: boolean;
  error?: string;
  endpoint: string;
  /** Whether the chain verifies against the system's trust store (a self-signed one does not). */
  authorized?: boolean;
  authorizationError?: string;
  subject?: string;
  notAfter?: string;
  daysLeft?: number;
  fingerprint256?: string;
  /** subjectAltName in openssl's `-addext` form, e.g. `IP:127.0.0.1,DNS:localhost`. */
  altNames?: string;
  commonName?: string;
  chain: ChainEntry[];
  /** The incident that issued this certificate, if it is an emergency one. */
  emergencyFor?: string;
}

export interface CertificateFile {
  exists: boolean;
  path: string;
  notAfter?: string;
  daysLeft?: number;
  fingerprint256?: string;
  emergencyFor?: string;
}

function daysLeft(notAfter: string, now = Date.now()): number {
  return Math.floor(((Date.parse(notAfter) - now) / DAY_MS) * 100) / 100;
}

/** `CN=a\nO=b` (X509Certificate) or {CN, O} (getPeerCertificate) → `CN=a, O=b`. */
function dn(name: string | Record<string, unknown> | undefined): string {
  if (!name) return '';
  if (typeof name === 'string') return name.split('\n').join(', ');
  return Object.entries(name)
    .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join('+') : String(v)}`)
    .join(', ');
}

function field(dnText: string, key: string): string | undefined {
  return new RegExp(`(?:^|, )${key}=([^,]+)`).exec(dnText)?.[1];
}

function emergencyIncident(subject: string): string | undefined {
  return field(subject, 'O') === EMERGENCY_ORG ? field(subject, 'OU') : undefined;
}

/** `IP Address:127.0.0.1, DNS:localhost` → `IP:127.0.0.1,DNS:localhost`. */
export function altNamesForOpenssl(subjectaltname: string | undefined): string | undefined {
  if (!subjectaltname) return undefined;
  const parts = subjectaltname
    .split(',')
    .map((p) => p.trim().replace(/^IP Address:/, 'IP:'))
    .filter((p) => /^(DNS|IP):[\w.:*-]+$/.test(p));
  return parts.length ? parts.join(',') : undefined;
}

function splitEndpoint(endpoint: string): { host: string; port: number } {
  const i = endpoint.lastIndexOf(':');
  const port = Number(endpoint.slice(i + 1));
  if (i <= 0 || !Number.isInteger(port)) throw permanent(ErrorType.BadInput, `tlsEndpoint "${endpoint}" is not host:port`);
  return { host: endpoint.slice(0, i), port };
}

function chainOf(cert: tls.DetailedPeerCertificate): ChainEntry[] {
  const out: ChainEntry[] = [];
  const seen = new Set<string>();
  let c: tls.DetailedPeerCertificate | undefined = cert;
  // A self-signed certificate is its own issuer: stop at the first one seen twice.
  while (c && c.fingerprint256 && !seen.has(c.fingerprint256)) {
    seen.add(c.fingerprint256);
    out.push({ subject: dn(c.subject as unknown as Record<string, unknown>), issuer: dn(c.issuer as unknown as Record<string, unknown>), notAfter: new Date(c.valid_to).toISOString() });
    c = c.issuerCertificate;
  }
  return out;
}

export function createTlsActivities(deps: ActivityDeps) {
  const docker = createDockerActivities(deps);

  function tlsConf(target: string) {
    const t = targetConfig(deps, target);
    if (!t.tlsEndpoint || !t.tls) throw permanent(ErrorType.NotConfigured, `target "${target}" has no tlsEndpoint / tls configured`);
    return { endpoint: t.tlsEndpoint, ...t.tls };
  }

  /** What a workflow may know of the target's TLS settings (no paths or commands). */
  async function tlsSettings(input: { target: string }): Promise<{ endpoint: string; component: string; minDaysLeft: number; renewConfigured: boolean; checkHourUtc: number }> {
    const c = tlsConf(input.target);
    return { endpoint: c.endpoint, component: c.component, minDaysLeft: c.minDaysLeft, renewConfigured: Boolean(c.renewCommand), checkHourUtc: c.checkHourUtc };
  }

  /** Handshake with the endpoint; an expired or self-signed certificate is inspected, not refused. */
  async function tlsServedCertificate(input: { target: string; timeoutMs?: number }): Promise<ServedCertificate> {
    const { endpoint } = tlsConf(input.target);
    const { host, port } = splitEndpoint(endpoint);
    return new Promise((resolve) => {
      const socket = tls.connect({
        host,
        port,
        rejectUnauthorized: false,
        ...(net.isIP(host) ? {} : { servername: host }),
      });
      const done = (r: ServedCertificate): void => {
        socket.destroy();
        resolve(r);
      };
      socket.setTimeout(input.timeoutMs ?? 5000, () => done({ ok: false, endpoint, error: 'handshake timed out', chain: [] }));
      socket.once('error', (err) => done({ ok: false, endpoint, error: describeError(err), chain: [] }));
      socket.once('secureConnect', () => {
        const cert = socket.getPeerCertificate(true);
        if (!cert || !cert.valid_to) {
          done({ ok: false, endpoint, error: 'the endpoint presented no certificate', chain: [] });
          return;
        }
        const subject = dn(cert.subject as unknown as Record<string, unknown>);
        const notAfter = new Date(cert.valid_to).toISOString();
        const emergencyFor = emergencyIncident(subject);
        const altNames = altNamesForOpenssl(cert.subjectaltname);
        const commonName = field(subject, 'CN');
        done({
          ok: true,
          endpoint,
          authorized: socket.authorized,
          ...(socket.authorizationError ? { authorizationError: String(socket.authorizationError) } : {}),
          subject,
          notAfter,
          daysLeft: daysLeft(notAfter),
          fingerprint256: cert.fingerprint256,
          ...(altNames ? { altNames } : {}),
          ...(commonName ? { commonName } : {}),
          chain: chainOf(cert),
          ...(emergencyFor ? { emergencyFor } : {}),
        });
      });
    });
  }

  /** The certificate file the terminator reads (it may differ from what it serves until reloaded). */
  async function tlsCertificateFile(input: { target: string }): Promise<CertificateFile> {
    const { certDir, certFile } = tlsConf(input.target);
    const file = path.resolve(certDir, certFile);
    if (!existsSync(file)) return { exists: false, path: file };
    const x = new X509Certificate(await readFile(file));
    const notAfter = new Date(x.validTo).toISOString();
    const emergencyFor = emergencyIncident(dn(x.subject));
    return {
      exists: true,
      path: file,
      notAfter,
      daysLeft: daysLeft(notAfter),
      fingerprint256: x.fingerprint256,
      ...(emergencyFor ? { emergencyFor } : {}),
    };
  }

  /** Runs the configured renewal command on the engine's host; a non-zero exit is not retried. */
  async function runTlsRenewal(input: { target: string }): Promise<{ detail: string }> {
    const { renewCommand } = tlsConf(input.target);
    if (!renewCommand) throw permanent(ErrorType.NotConfigured, `target "${input.target}" has no tls.renewCommand`);
    const [cmd, ...args] = renewCommand as [string, ...string[]];
    try {
      const { stdout, stderr } = await run(cmd, args, { timeout: 5 * 60_000 });
      const tail = `${stdout}${stderr}`.trim().split('\n').slice(-2).join(' / ').slice(0, 200);
      return { detail: `${path.basename(cmd)} finished${tail ? `: ${tail}` : ''}` };
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      throw permanent(ErrorType.Refused, `renewal command ${path.basename(cmd)} failed (${String(code ?? describeError(err))})`);
    }
  }

  /**
   * A self-signed certificate valid for `days`, marked with the incident (O=EMERGENCY_ORG, OU=id) so
   * a retry sees its own certificate and does nothing, and verification can recognise it. The pair
   * is made beside the live one and renamed over it, so the terminator never reads half a pair.
   */
  async function issueEmergencyCertificate(input: {
    target: string;
    incidentId: string;
    commonName: string;
    altNames?: string;
    days: number;
  }): Promise<{ performed: boolean; notAfter: string; fingerprint256: string }> {
    if (!/^[\w.-]{1,64}$/.test(input.incidentId)) throw permanent(ErrorType.BadInput, 'incident id cannot name a certificate');
    if (!/^[\w.*-]{1,64}$/.test(input.commonName)) throw permanent(ErrorType.BadInput, 'common name must be a host name');
    if (!Number.isInteger(input.days) || input.days < 1 || input.days > 365) throw permanent(ErrorType.BadInput, 'days must be a whole number from 1 to 365');
    const conf = tlsConf(input.target);
    const dir = path.resolve(conf.certDir);
    const current = await tlsCertificateFile(input);
    if (current.emergencyFor === input.incidentId && current.notAfter && Date.parse(current.notAfter) > Date.now()) {
      return { performed: false, notAfter: current.notAfter, fingerprint256: current.fingerprint256 ?? '' };
    }
    if (input.altNames) {
      try {
        parseAltNames(input.altNames);
      } catch (err) {
        throw permanent(ErrorType.BadInput, `altNames: ${describeError(err)}`);
      }
    }
    // seed 002: `openssl req -x509 -nodes -days 1 -newkey rsa:2048`, made here without the binary.
    const pair = await makeSelfSignedCertificate({
      subject: [
        ['CN', input.commonName],
        ['O', EMERGENCY_ORG],
        ['OU', input.incidentId],
      ],
      ...(input.altNames ? { altNames: input.altNames } : {}),
      days: input.days,
    });
    const tmp = await mkdtemp(path.join(dir, '.emergency-'));
    try {
      await writeFile(path.join(tmp, conf.keyFile), pair.key, { mode: 0o600 });
      await writeFile(path.join(tmp, conf.certFile), pair.cert, { mode: 0o644 });
      // The umask may have narrowed the modes at creation: set them exactly.
      await chmod(path.join(tmp, conf.keyFile), 0o600);
      await chmod(path.join(tmp, conf.certFile), 0o644);
      await rename(path.join(tmp, conf.keyFile), path.join(dir, conf.keyFile));
      await rename(path.join(tmp, conf.certFile), path.join(dir, conf.certFile));
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
    const after = await tlsCertificateFile(input);
    return { performed: true, notAfter: after.notAfter ?? '', fingerprint256: after.fingerprint256 ?? '' };
  }

  async function servesFile(target: string, fingerprint: string | undefined, waitMs: number): Promise<boolean> {
    const until = Date.now() + waitMs;
    for (;;) {
      const served = await tlsServedCertificate({ target, timeoutMs: 3000 });
      if (served.ok && served.fingerprint256 === fingerprint) return true;
      if (Date.now() > until) return false;
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  /**
   * Makes the terminator serve the certificate file: `tls.reloadSignal` first (no dropped connections), a
   * restart if it still serves the old one. Nothing is done if it already serves the file.
   */
  async function reloadTlsTerminator(input: { target: string; notBefore: string }): Promise<{ performed: boolean; detail: string }> {
    const { component, reloadSignal } = tlsConf(input.target);
    const file = await tlsCertificateFile(input);
    if (!file.exists) throw permanent(ErrorType.Refused, `no certificate at ${file.path}: nothing to reload`);
    if (await servesFile(input.target, file.fingerprint256, 0)) {
      return { performed: false, detail: `${component} already serves the certificate (until ${file.notAfter})` };
    }
    const state = await docker.containerState({ target: input.target, component });
    if (state.running && reloadSignal !== 'none') {
      await dockerFor(deps, input.target).getContainer(state.id).kill({ signal: reloadSignal });
      if (await servesFile(input.target, file.fingerprint256, 5000)) {
        return { performed: true, detail: `${state.name} reloaded (${reloadSignal}); serves the certificate valid until ${file.notAfter}` };
      }
    }
    const restarted = await docker.restartContainer({ target: input.target, component, notBefore: input.notBefore });
    if (!(await servesFile(input.target, file.fingerprint256, 15_000))) {
      throw new Error(`${state.name} still does not serve the new certificate after a restart`);
    }
    return { performed: true, detail: `${restarted.detail}; serves the certificate valid until ${file.notAfter}` };
  }

  return { tlsSettings, tlsServedCertificate, tlsCertificateFile, runTlsRenewal, issueEmergencyCertificate, reloadTlsTerminator };
}
