/**
 * SMTP delivery (seed 004, "Email delivery issues": no verification emails, `Connection refused` from
 * SMTP). Probes the relay the mail component is configured with (connect, greeting, EHLO, STARTTLS
 * and AUTH where the relay's settings ask for them, MAIL FROM, RCPT TO, RSET; no message is sent) and
 * the sandbox relay. A relay that gives no answer is unknown, never taken for down or healthy. When the relay in use refuses and the
 * sandbox accepts, the component is switched to the sandbox after approval (seed 004 step 4: sandbox
 * mode by SMTP_HOST/SMTP_PORT); verification probes the relay then in use. Anything else escalates.
 */
import { patched } from '@temporalio/workflow';
import { acts, buildSteps, longActs, runIncident, type Check, type Plan, type Runbook, type RunbookContext } from './kernel';
import type { IncidentInput, IncidentRecord, Severity } from './contracts';
import type { SmtpProbe, SmtpRelayInUse, SmtpStage } from '../activities/smtp/smtp';
import { renderSupportReport, type ReportStatus, type SupportCheck } from './support-report';
import { recordChecks } from './support-evidence';
import { defineRunbook, type Decision, type StepIdOf } from './shape';

/** What this runbook is: the catalog, routes, the client script and the README's table read it. */
export const meta = defineRunbook({
  name: 'smtpDelivery',
  scenario: 'SUP-SMTP',
  title: 'Email delivery: the SMTP relay refuses mail',
  severity: 3,
  source: 'seed 004',
  alerts: [],
  diagnostics: [
    "relay in use, from the mail component's SMTP_HOST / SMTP_PORT (Docker inspect)",
    'SMTP probe of that relay: connect time, greeting, EHLO extensions, STARTTLS with the certificate verified and AUTH where configured, MAIL FROM / RCPT TO then RSET (no message sent), the refusing reply',
    'the same probe of the sandbox relay',
  ],
  steps: [{ id: 'switch-to-sandbox-relay', title: 'Recreate the mail component with the sandbox relay as its SMTP host/port', risk: 'approve' }],
  verify: 'the probe of the relay now in use succeeds',
});

export interface SmtpFacts {
  inUse: SmtpRelayInUse;
  /** The probe of the relay in use. */
  probe: SmtpProbe;
  /** The probe of the sandbox relay, when another relay is in use. */
  sandbox: SmtpProbe | null;
  /**
   * A relay the component's environment does not name is unknown, never the primary; a relay that
   * accepts mail for a component that is not running is no working delivery (absent in facts of
   * incidents started before this rule).
   */
  evidenceRule?: boolean;
}

export type SmtpStep = StepIdOf<typeof meta>;

export interface SmtpDecision extends Decision<SmtpStep> {
  status: ReportStatus;
}

/** Switch the mail component to the sandbox relay. */
export const SWITCH_STEP = 'switch-to-sandbox-relay' satisfies SmtpStep;

async function diagnose(ctx: RunbookContext): Promise<SmtpFacts> {
  const recipient = recipientOf(ctx);
  const inUse = await acts.smtpRelayInUse({ target: ctx.target });
  const probe = await acts.probeSmtpRelay({ target: ctx.target, relay: 'in-use', ...(recipient ? { recipient } : {}) });
  const sandbox = inUse.relay === 'sandbox' ? null : await acts.probeSmtpRelay({ target: ctx.target, relay: 'sandbox', ...(recipient ? { recipient } : {}) });
  // Incidents recorded before this rule assumed the primary relay, and replay so.
  const facts: SmtpFacts = { inUse, probe, sandbox, ...(patched('evidence-before-conclusions') ? { evidenceRule: true } : {}) };
  recordChecks(ctx, checksOf(facts));
  return facts;
}

function recipientOf(ctx: RunbookContext): string | undefined {
  const r = ctx.input.params?.recipient;
  return typeof r === 'string' && r !== '' ? r : undefined;
}

function describeInUse(u: SmtpRelayInUse): string {
  const how = u.fromEnv ? 'from its environment' : 'no relay in its environment: the primary is assumed';
  return `${u.component} uses the ${u.relay} relay ${u.address} (${how})${u.running ? '' : '; the container is not running'}`;
}

/** What a probe saw, one check per stage it reached. */
export function probeChecks(p: SmtpProbe): SupportCheck[] {
  const name = `${p.relay} relay ${p.address}`;
  // No answer from the relay at a stage: nothing is known of it there (older results never say so).
  const unseen = (stage: SmtpStage): boolean => p.unreached === true && p.stage === stage;
  const out: SupportCheck[] = [
    {
      check: `${name}: connect`,
      ok: p.connectMs !== null,
      detail: p.connectMs !== null ? `connected in ${p.connectMs} ms` : `no connection: ${p.error ?? 'unknown error'}`,
      ...(unseen('connect') ? { unknown: true } : {}),
    },
  ];
  if (p.connectMs === null) return out;
  out.push({
    check: `${name}: greeting`,
    ok: p.banner?.startsWith('220') ?? false,
    detail: p.banner ?? `no greeting: ${p.error ?? 'unknown error'}`,
    ...(unseen('greeting') ? { unknown: true } : {}),
  });
  if (p.stage !== 'greeting' && p.banner) {
    out.push({
      check: `${name}: EHLO`,
      ok: p.stage !== 'ehlo',
      detail: p.stage === 'ehlo' ? failure(p) : `extensions: ${p.extensions.join(', ') || 'none'}`,
      ...(unseen('ehlo') ? { unknown: true } : {}),
    });
  }
  const past = (stage: SmtpStage): boolean => STAGES.indexOf(p.stage) > STAGES.indexOf(stage);
  // Results recorded before the probe spoke STARTTLS carry no `tls`, and show no such check.
  if (p.tls !== undefined && (p.stage === 'starttls' || past('starttls'))) {
    out.push({
      check: `${name}: STARTTLS`,
      ok: p.stage !== 'starttls',
      detail:
        p.stage === 'starttls'
          ? failure(p)
          : p.tls
            ? `${p.tls.protocol}, certificate ${p.tls.subject} (issuer ${p.tls.issuer}) verified, valid until ${p.tls.validTo}`
            : 'not offered; TLS not required, the conversation stays in plain text',
      ...(unseen('starttls') ? { unknown: true } : {}),
    });
  }
  if (p.auth !== undefined && (p.stage === 'auth' || (past('auth') && p.auth !== null))) {
    out.push({
      check: `${name}: AUTH`,
      ok: p.stage !== 'auth',
      detail: p.stage === 'auth' ? failure(p) : `AUTH ${p.auth ?? ''} accepted`,
      ...(unseen('auth') ? { unknown: true } : {}),
    });
  }
  if (p.stage === 'mail' || p.stage === 'rcpt' || p.stage === 'done') {
    out.push({
      check: `${name}: MAIL FROM / RCPT TO <${p.recipient}>`,
      ok: p.ok,
      detail: p.ok ? 'accepted (then RSET: no message sent)' : `${p.stage === 'mail' ? 'sender' : 'recipient'} refused: ${failure(p)}`,
      ...(unseen('mail') || unseen('rcpt') ? { unknown: true } : {}),
    });
  }
  return out;
}

const STAGES: readonly SmtpStage[] = ['connect', 'greeting', 'ehlo', 'starttls', 'auth', 'mail', 'rcpt', 'done'];

function failure(p: SmtpProbe): string {
  if (p.problem) return p.problem;
  return p.code !== null ? `${p.code} ${p.text ?? ''}`.trim() : (p.error ?? 'unknown error');
}

/** Why the relay the component uses is not known (its environment names none), or undefined. Pure. */
export function relayUnobserved(u: SmtpRelayInUse): string | undefined {
  if (u.fromEnv) return undefined;
  const env = u.hostEnv ?? 'the host variable';
  return `${env} is not in the container environment of ${u.component}, so the relay it uses is not known (setting smtp.hostEnv)`;
}

export function checksOf(f: SmtpFacts): SupportCheck[] {
  const unseen = f.evidenceRule ? relayUnobserved(f.inUse) : undefined;
  return [
    unseen ? { check: 'relay in use', ok: false, unknown: true, detail: unseen } : { check: 'relay in use', ok: f.inUse.running, detail: describeInUse(f.inUse) },
    ...probeChecks(f.probe),
    ...(f.sandbox ? probeChecks(f.sandbox) : []),
  ];
}

/** Why a probe failed, in the terms of seed 004. */
export function refusalCause(p: SmtpProbe): string {
  const at = `the ${p.relay} relay ${p.address}`;
  const reply = failure(p);
  switch (p.stage) {
    case 'connect':
      return `${at} accepts no connection (${reply}): it is down or unreachable from here.`;
    case 'greeting':
      if (p.code === null) return `${at} accepted the connection but sent no greeting (${reply}).`;
      return p.code >= 500
        ? `${at} refuses every session at the greeting (${reply}): the provider blocks this account or host; check its status page and dashboard.`
        : `${at} turns sessions away for now (${reply}): a temporary refusal, e.g. the provider is overloaded.`;
    case 'ehlo':
      return `${at} rejects EHLO (${reply}).`;
    case 'starttls':
      return `${at} offers no trusted TLS (${reply}): the mail component cannot send through it securely; check the relay's TLS settings and certificate.`;
    case 'auth':
      return `${at} refuses the login (${reply}): validate the SMTP credentials against the provider dashboard.`;
    case 'mail':
      return `${at} refuses the sender (${reply}): check the SMTP credentials and the sending domain against the provider dashboard.`;
    case 'rcpt':
      return `${at} refuses the recipient (${reply}): look for suppression or spam blocking in the provider's logs.`;
    default:
      return `${at} works.`;
  }
}

/** Pure decision over the probes. */
export function planSmtpDelivery(f: SmtpFacts): SmtpDecision {
  const relay = `the ${f.probe.relay} relay ${f.probe.address}`;
  const unseen = f.evidenceRule ? relayUnobserved(f.inUse) : undefined;
  if (unseen) {
    return {
      status: 'escalated',
      diagnosis: `the relay ${f.inUse.component} uses could not be determined: ${unseen}`,
      rootCause: 'Not determined: the relay in use is not known.',
      escalate: `could not observe the relay in use: ${unseen}`,
      steps: [],
    };
  }
  if (f.evidenceRule && !f.inUse.running) {
    return {
      status: 'escalated',
      diagnosis: `${f.inUse.component} is not running: it sends no mail${f.probe.ok ? `, although ${relay} accepts mail` : `, and ${relay} fails at ${f.probe.stage}: ${failure(f.probe)}`}`,
      rootCause: `The ${f.inUse.component} container that sends the mail is not running.`,
      escalate: `${f.inUse.component}, which sends the mail, is not running: start it, then re-run`,
      steps: [],
    };
  }
  if (f.probe.unreached) {
    // No answer from the relay is no evidence about it: no switch is chosen from it.
    const seen = `${relay} could not be reached (${failure(f.probe)}, at ${f.probe.stage})`;
    return {
      status: 'escalated',
      diagnosis: `${seen}: nothing is known of it`,
      rootCause: 'Not determined: the relay in use gave no answer to the probe from the engine.',
      escalate: `could not observe ${relay}: ${failure(f.probe)} (no answer at ${f.probe.stage})`,
      steps: [],
    };
  }
  if (f.probe.ok) {
    const ms = f.probe.connectMs ?? 0;
    return { status: 'nothing-wrong', diagnosis: `SMTP works: ${relay} accepted EHLO, MAIL FROM and RCPT TO (connected in ${ms} ms)`, falseAlarm: true, steps: [] };
  }
  const rootCause = refusalCause(f.probe);
  const refused = `${relay} fails at ${f.probe.stage}: ${failure(f.probe)}`;
  if (f.inUse.relay === 'sandbox') {
    return { status: 'escalated', diagnosis: `${refused}; the sandbox relay is already in use`, rootCause, escalate: `the sandbox relay in use fails too (${failure(f.probe)}); no other relay to switch to`, steps: [] };
  }
  if (!f.sandbox?.ok) {
    const sandbox = !f.sandbox
      ? 'the sandbox relay was not probed'
      : f.sandbox.unreached
        ? `the sandbox relay could not be reached (${failure(f.sandbox)})`
        : `the sandbox relay fails as well (${failure(f.sandbox)})`;
    return { status: 'escalated', diagnosis: `${refused}; ${sandbox}`, rootCause, escalate: `no working relay: ${refused}; ${sandbox}`, steps: [] };
  }
  return { status: 'mitigation-proposed', diagnosis: `${refused}; the sandbox relay ${f.sandbox.address} accepts mail`, rootCause, steps: [SWITCH_STEP] };
}

/** The ticket report. */
export function smtpReport(f: SmtpFacts, v: SmtpDecision, meta: { incidentId: string; at: string; severity: Severity; target: string }): string {
  const sandbox = f.sandbox?.address ?? 'the sandbox relay';
  const switchToSandbox = v.steps.includes(SWITCH_STEP);
  const next: string[] = [];
  if (switchToSandbox) {
    next.push(`Approve step ${SWITCH_STEP} to point ${f.inUse.component} at the sandbox relay ${sandbox}.`);
    next.push('The sandbox captures mail and delivers none: switch back to the primary relay once the provider accepts mail again.');
  }
  if (v.status !== 'nothing-wrong') {
    next.push("Check the provider's status page (outages are a common cause) and validate the SMTP credentials against its dashboard.");
    next.push("Inspect the provider's logs for suppression or spam-blocking events.");
  }
  return renderSupportReport({
    title: `SMTP delivery on ${meta.target}`,
    incidentId: meta.incidentId,
    at: meta.at,
    severity: meta.severity,
    issue: 'Emails (e.g. verification emails) are not delivered',
    status: v.status,
    // The cause belongs in the open report too: the renderer shows rootCause only in a resolution reply.
    verdict: v.rootCause ? `${v.diagnosis}.\n\n${v.rootCause}` : v.diagnosis,
    ...(v.rootCause ? { rootCause: v.rootCause } : {}),
    ...(switchToSandbox ? { solution: `Switch ${f.inUse.component} to the sandbox relay ${sandbox} (after approval), until the primary relay accepts mail again.` } : {}),
    verification: 'The relay in use is probed again (connect, EHLO, STARTTLS and AUTH where configured, MAIL FROM, RCPT TO; no message is sent).',
    facts: [
      ['relay in use', describeInUse(f.inUse)],
      ['probe recipient', f.probe.recipient],
    ],
    checks: checksOf(f),
    nextSteps: next,
  });
}

/** The relay in use still fails and is not yet the sandbox. (Re-checked right before acting.) */
async function stillRefused(target: string, recipient: string | undefined): Promise<Check> {
  const inUse = await acts.smtpRelayInUse({ target });
  if (inUse.relay === 'sandbox') return { ok: false, detail: `${inUse.component} already uses the sandbox relay ${inUse.address}` };
  const p = await acts.probeSmtpRelay({ target, relay: 'in-use', ...(recipient ? { recipient } : {}) });
  if (p.unreached) return { ok: true, detail: `the ${p.relay} relay ${p.address} still does not answer (${failure(p)})` };
  return { ok: !p.ok, detail: p.ok ? `the ${p.relay} relay ${p.address} accepts mail again` : `the ${p.relay} relay ${p.address} still fails at ${p.stage}: ${failure(p)}` };
}

const runbook: Runbook<SmtpFacts> = {
  meta,
  diagnose,
  plan(f, ctx): Plan {
    const p = planSmtpDelivery(f);
    const recipient = recipientOf(ctx);
    const steps = buildSteps(meta, p.steps, {
      'switch-to-sandbox-relay': () => ({
        resource: f.inUse.component,
        describe: `recreate the ${f.inUse.component} container of ${ctx.target} with the sandbox relay ${f.sandbox?.address ?? ''} as its SMTP host and port; mail is captured there, not delivered, until switched back`,
        precondition: () => stillRefused(ctx.target, recipient),
        run: async () => (await longActs.switchSmtpRelay({ target: ctx.target, relay: 'sandbox' })).detail,
      }),
    });
    return {
      diagnosis: p.diagnosis,
      ...(p.rootCause ? { rootCause: p.rootCause } : {}),
      ...(p.falseAlarm ? { falseAlarm: true } : {}),
      ...(p.escalate ? { escalate: p.escalate } : {}),
      report: smtpReport(f, p, { incidentId: ctx.incidentId, at: new Date().toISOString(), severity: ctx.input.severity ?? meta.severity, target: ctx.target }),
      steps,
    };
  },
  async verify(ctx, f): Promise<Check> {
    const recipient = recipientOf(ctx);
    const inUse = await acts.smtpRelayInUse({ target: ctx.target });
    const p = await acts.probeSmtpRelay({ target: ctx.target, relay: 'in-use', ...(recipient ? { recipient } : {}) });
    if (!inUse.running) return { ok: false, detail: `${inUse.component} is not running` };
    const unseen = f.evidenceRule ? relayUnobserved(inUse) : undefined;
    if (unseen) return { ok: false, detail: `the relay of ${inUse.component} is not known`, unknown: `the relay in use: ${unseen}` };
    if (p.unreached) {
      return { ok: false, detail: `the ${p.relay} relay ${p.address} in use did not answer`, unknown: `the ${p.relay} relay ${p.address}: ${failure(p)} (no answer at ${p.stage})` };
    }
    return {
      ok: p.ok,
      detail: p.ok ? `the ${p.relay} relay ${p.address} in use accepts mail (EHLO, MAIL FROM, RCPT TO)` : `the ${p.relay} relay ${p.address} in use fails at ${p.stage}: ${failure(p)}`,
    };
  },
};

/** Support: SMTP connect + EHLO probe of the relay in use; switch to the sandbox relay after approval. */
export async function smtpDelivery(input: IncidentInput): Promise<IncidentRecord> {
  return runIncident(runbook, input);
}
