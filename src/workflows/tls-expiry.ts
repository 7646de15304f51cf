/**
 * INC-13 Certificate expiry / TLS failure (seed 002). A real handshake with the configured endpoint
 * says what clients see: notAfter, days left, the chain. An expiring certificate is renewed with the
 * configured command (auto) or, without one, replaced by an emergency self-signed certificate valid
 * one day (approve); then the proxy is reloaded (approve). A daily schedule (tls-expiry-check.ts)
 * opens this incident before the certificate expires.
 */
import { patched } from '@temporalio/workflow';
import { acts, buildSteps, longActs, runIncident, type Check, type Plan, type Runbook, type RunbookContext } from './kernel';
import type { IncidentInput, IncidentRecord } from './contracts';
import type { CertificateFile, ServedCertificate } from '../activities/tls/tls';
import { defineRunbook, type Decision, type StepIdOf } from './shape';

/** What this runbook is: the catalog, routes, the client script and the README's table read it. */
export const meta = defineRunbook({
  name: 'tlsExpiry',
  scenario: 'INC-13',
  title: 'Certificate expiry / TLS failure',
  severity: 1,
  source: 'seed 002',
  alerts: ['TlsCertificateExpiring', 'TlsCertificateExpiry'],
  diagnostics: [
    'TLS handshake to the configured endpoint: notAfter, days left, chain (subject / issuer)',
    'the certificate file the proxy reads',
    'daily check (Temporal Schedule, `remediate schedules apply`) opens the incident before expiry',
  ],
  steps: [
    { id: 'renew-certificate', title: 'Run the configured renewal command', risk: 'auto' },
    { id: 'issue-emergency-certificate', title: 'No renewal configured: emergency self-signed certificate valid 1 day (RSA-2048, SHA-256, made in-process)', risk: 'approve' },
    { id: 'reload-proxy', title: 'Reload the proxy (SIGHUP), restart it if it still serves the old certificate', risk: 'approve' },
  ],
  verify: 'the served certificate expires in the future: beyond the threshold, or it is the emergency one',
});

export type TlsStep = StepIdOf<typeof meta>;

export interface TlsFacts {
  served: ServedCertificate;
  file: CertificateFile;
  minDaysLeft: number;
  renewConfigured: boolean;
  component: string;
  /** A failed handshake or a missing file is unknown, not a verdict (absent in facts of incidents begun before this rule). */
  evidenceRule?: boolean;
}

/** A signal that could not be observed, and why (naming the settings that point at it). */
export interface Unobserved {
  check: string;
  why: string;
}

/** Pure: what these facts could not observe. Facts of incidents begun before this rule have nothing. */
export function unobservedTls(f: TlsFacts): Unobserved[] {
  if (!f.evidenceRule) return [];
  const out: Unobserved[] = [];
  if (!f.served.ok) out.push({ check: `certificate served on ${f.served.endpoint}`, why: `the TLS handshake failed: ${f.served.error ?? 'unknown error'} (setting tlsEndpoint)` });
  if (!f.file.exists) out.push({ check: `certificate file the ${f.component} reads`, why: `no file at ${f.file.path} (settings tls.certDir, tls.certFile)` });
  return out;
}

/** seed 002 INC-13: "openssl req -x509 -nodes -days 1 -newkey rsa:2048", made in-process without the binary (one day: long enough for a human to renew properly). */
const EMERGENCY_DAYS = 1;

async function diagnose(ctx: RunbookContext): Promise<TlsFacts> {
  const [settings, served, file] = await Promise.all([
    acts.tlsSettings({ target: ctx.target }),
    acts.tlsServedCertificate({ target: ctx.target }),
    acts.tlsCertificateFile({ target: ctx.target }),
  ]);
  const facts: TlsFacts = { served, file, minDaysLeft: settings.minDaysLeft, renewConfigured: settings.renewConfigured, component: settings.component };
  // A handshake that fails or a file that is not there shows no certificate. (Incidents recorded
  // before this rule read them as findings, and replay so.)
  if (patched('evidence-before-conclusions')) {
    facts.evidenceRule = true;
    for (const u of unobservedTls(facts)) ctx.unknown(u.check, u.why);
  }
  if (!served.ok) {
    if (!facts.evidenceRule) ctx.finding(`TLS handshake with ${served.endpoint}`, false, `failed: ${served.error ?? 'unknown error'}`);
  } else {
    const days = served.daysLeft ?? 0;
    ctx.finding(
      `TLS handshake with ${served.endpoint}`,
      days >= settings.minDaysLeft,
      `notAfter ${served.notAfter}, ${days} days left (threshold ${settings.minDaysLeft})` +
        `${served.authorized ? ', chain trusted' : `, chain not trusted (${served.authorizationError ?? 'unknown'})`}`,
    );
    ctx.finding('certificate chain', true, served.chain.map((c) => `${c.subject} ← ${c.issuer}`).join(' | ') || 'empty');
  }
  if (file.exists || !facts.evidenceRule) {
    ctx.finding(
      'certificate file the proxy reads',
      file.exists && (file.daysLeft ?? 0) >= settings.minDaysLeft,
      file.exists ? `valid until ${file.notAfter} (${file.daysLeft} days)${file.fingerprint256 === served.fingerprint256 ? ', the one served' : ', not the one served'}` : 'missing',
    );
  }
  return facts;
}

/** Pure decision over the findings. */
export function planTlsExpiry(f: TlsFacts, target: string): Decision<TlsStep> {
  const s = f.served;
  const unseen = unobservedTls(f);
  if (unseen.length > 0) {
    const list = unseen.map((u) => `could not observe the ${u.check}: ${u.why}`).join('; ');
    return { diagnosis: list, ...(s.ok ? {} : { rootCause: 'TLS endpoint unreachable or not speaking TLS' }), escalate: list, steps: [] };
  }
  if (!s.ok) {
    return {
      diagnosis: `TLS handshake with ${s.endpoint} fails: ${s.error ?? 'unknown error'}`,
      rootCause: 'TLS endpoint unreachable or not speaking TLS',
      escalate: `the TLS endpoint of ${target} does not complete a handshake (${s.error ?? 'unknown'}): not a certificate expiry this runbook can fix`,
      steps: [],
    };
  }
  const days = s.daysLeft ?? 0;
  const state = days <= 0 ? `expired at ${s.notAfter}` : `expires ${s.notAfter} (${days} days left, threshold ${f.minDaysLeft})`;
  if (days >= f.minDaysLeft) {
    return { diagnosis: `certificate valid until ${s.notAfter}: ${days} days left (threshold ${f.minDaysLeft})`, falseAlarm: true, steps: [] };
  }
  const fileFresh = f.file.exists && (f.file.daysLeft ?? 0) >= f.minDaysLeft && f.file.fingerprint256 !== s.fingerprint256;
  if (fileFresh) {
    return {
      diagnosis: `served certificate ${state}; a renewed one (until ${f.file.notAfter}) is on disk but not loaded`,
      rootCause: 'the certificate was renewed but the proxy was not reloaded',
      steps: ['reload-proxy'],
    };
  }
  if (s.emergencyFor && !f.renewConfigured) {
    return {
      diagnosis: `served certificate is an emergency one (from ${s.emergencyFor}) and ${state}`,
      rootCause: 'certificate renewal failed and no renewal is configured',
      escalate: `an emergency certificate is still in place on ${target}: a real certificate must be issued by hand`,
      steps: [],
    };
  }
  return {
    diagnosis: `certificate ${state}`,
    rootCause: days <= 0 ? 'certificate expired: renewal did not run or failed' : 'certificate about to expire: renewal did not run or failed',
    steps: f.renewConfigured ? ['renew-certificate', 'reload-proxy'] : ['issue-emergency-certificate', 'reload-proxy'],
  };
}

const runbook: Runbook<TlsFacts> = {
  meta,
  diagnose,
  plan(f, ctx): Plan {
    const p = planTlsExpiry(f, ctx.target);
    const target = ctx.target;
    const resource = f.component;
    const fileExpiring = async (): Promise<Check> => {
      const file = await acts.tlsCertificateFile({ target });
      const days = file.daysLeft ?? 0;
      const mine = file.emergencyFor === ctx.incidentId;
      return { ok: !mine && days < f.minDaysLeft, detail: file.exists ? `certificate file valid until ${file.notAfter} (${days} days${mine ? ', emergency one of this incident' : ''})` : 'certificate file missing' };
    };
    const steps = buildSteps(meta, p.steps, {
      'renew-certificate': () => ({
        resource,
        describe: `run the configured renewal command for ${target}`,
        precondition: fileExpiring,
        run: async () => {
          const r = await longActs.runTlsRenewal({ target });
          const file = await acts.tlsCertificateFile({ target });
          if ((file.daysLeft ?? 0) < f.minDaysLeft) throw new Error(`${r.detail}, but the certificate file still expires ${file.notAfter}`);
          return `${r.detail}; certificate file valid until ${file.notAfter}`;
        },
      }),
      'issue-emergency-certificate': () => ({
        resource,
        describe: `write a self-signed certificate for ${f.served.commonName ?? 'the endpoint'} valid ${EMERGENCY_DAYS} day where the ${f.component} reads it (clients will warn)`,
        precondition: fileExpiring,
        run: async () => {
          const r = await longActs.issueEmergencyCertificate({
            target,
            incidentId: ctx.incidentId,
            commonName: f.served.commonName ?? 'localhost',
            ...(f.served.altNames ? { altNames: f.served.altNames } : {}),
            days: EMERGENCY_DAYS,
          });
          return `${r.performed ? 'issued' : 'already issued'} emergency certificate valid until ${r.notAfter} (${r.fingerprint256.slice(0, 23)}…)`;
        },
      }),
      'reload-proxy': () => ({
        resource,
        describe: `SIGHUP the ${f.component} container of ${target} (restart it if it still serves the old certificate)`,
        precondition: async () => {
          const [served, file] = await Promise.all([acts.tlsServedCertificate({ target }), acts.tlsCertificateFile({ target })]);
          return { ok: file.exists && served.fingerprint256 !== file.fingerprint256, detail: `served until ${served.notAfter ?? 'n/a'}, file until ${file.notAfter ?? 'missing'}` };
        },
        run: async (notBefore) => (await longActs.reloadTlsTerminator({ target, notBefore })).detail,
      }),
    });
    return { ...p, steps };
  },
  async verify(ctx, f): Promise<Check> {
    return verifyServed(await acts.tlsServedCertificate({ target: ctx.target }), f, ctx.incidentId);
  },
};

/**
 * Pure: the served certificate valid long enough, or this incident's emergency one valid at all. A
 * handshake that fails shows no certificate: recovery is not observed (incidents begun before this
 * rule called it a failed verification).
 */
export function verifyServed(s: ServedCertificate, f: TlsFacts, incidentId: string): Check {
  if (!s.ok && f.evidenceRule) {
    return { ok: false, detail: `handshake failed: ${s.error ?? 'unknown'}`, unknown: `the certificate served on ${s.endpoint}: the TLS handshake failed: ${s.error ?? 'unknown error'}` };
  }
  if (!s.ok) return { ok: false, detail: `handshake failed: ${s.error ?? 'unknown'}` };
  const days = s.daysLeft ?? 0;
  const emergency = s.emergencyFor === incidentId;
  return {
    ok: days > 0 && (days >= f.minDaysLeft || emergency),
    detail: `served certificate valid until ${s.notAfter} (${days} days${emergency ? ', emergency certificate of this incident' : ''})`,
  };
}

/** INC-13: certificate expiry / TLS failure. */
export async function tlsExpiry(input: IncidentInput): Promise<IncidentRecord> {
  return runIncident(runbook, input);
}
