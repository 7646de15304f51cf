/**
 * INC-14 Data breach / PII exposure (seed 002). Diagnoses from what the target recorded: PII in the
 * api's recent logs (counts and redacted samples only), keys leaked in clear text, export / read
 * actions in the audit log, key usage anomalies. Then: preserve evidence first (auto), notify the
 * owner, security and legal (auto), rotate the leaked keys (approve), erase the user named in a GDPR
 * request (approve). It closes only when a human confirms the resolution checklist with the
 * `checklist` signal, since "attack vector closed" and "users notified" are not machine facts.
 *
 * Nothing personal reaches this workflow's history: activities return counts, user ids, redacted
 * lines and key fingerprints. The erasure email, if any, is the requester's own input.
 */
import { condition, defineSignal, patched, setHandler, workflowInfo } from '@temporalio/workflow';
import { acts, buildSteps, longActs, runIncident, type Check, type Plan, type Runbook, type RunbookContext } from './kernel';
import type { IncidentInput, IncidentRecord } from './contracts';
import { dataIncidentNotice } from '../comms/templates';
import type { AuditAccess, KeyUsage, PiiScan } from '../activities/postgres/security';
import { defineRunbook, type Decision, type StepIdOf, type StepRef } from './shape';

/** What this runbook is: the catalog, routes, the client script and the README's table read it. */
export const meta = defineRunbook({
  name: 'dataBreach',
  scenario: 'INC-14',
  title: 'Data breach / PII exposure',
  severity: 1,
  source: 'seed 002',
  alerts: ['PiiInLogs', 'DataBreach'],
  diagnostics: [
    'PII patterns in recent api logs (counts per kind and redacted samples only)',
    'API keys in clear text in the logs, matched to their users by hash',
    'export / read actions in the audit log, last 24 h',
    'key usage anomalies (requests per key, last 24 h)',
  ],
  steps: [
    { id: 'preserve-evidence', title: 'Export recent api logs and audit rows with a sha256 manifest', risk: 'auto' },
    { id: 'notify-owner-security-legal', title: 'Notify the owner, the security lead and legal', risk: 'auto' },
    { id: 'rotate-compromised-keys', title: 'Rotate the leaked keys; the new ones go to the key store', risk: 'approve' },
    { id: 'gdpr-erasure', title: 'GDPR erasure of the user named in the request', risk: 'approve' },
  ],
  verify: 'leaked keys refused, and a human confirms the checklist (signal "checklist")',
});

export type BreachStep = StepIdOf<typeof meta>;

/** The seed's resolution criteria; each must be confirmed by a person. */
export const CHECKLIST_ITEMS = ['keysRotated', 'vectorClosed', 'documented', 'usersNotified'] as const;
export type ChecklistItem = (typeof CHECKLIST_ITEMS)[number];

export interface ChecklistConfirmation {
  by: string;
  items: Record<ChecklistItem, boolean>;
  note?: string;
}

/**
 * A person confirms the resolution checklist:
 * `{"by":"<name>","items":{"keysRotated":true,"vectorClosed":true,"documented":true,"usersNotified":true}}`.
 */
export const checklistSignal = defineSignal<[ChecklistConfirmation]>('checklist');

export interface BreachFacts {
  since: string;
  pii: PiiScan;
  access: AuditAccess;
  usage: KeyUsage;
  /** Leaked keys that still open an account, by user. */
  compromised: { userId: number; fingerprint: string }[];
  erasure?: { requested: true; userId: number | null };
  contacts: string[];
  keyStoreConfigured: boolean;
  /** When the diagnosis ran: the date of the users' notice (absent in facts of earlier incidents). */
  identifiedAt?: string;
  /** Only observed signals count (absent in facts of incidents begun before this rule). */
  evidenceRule?: boolean;
}

/** A signal that could not be observed, and why (naming the setting that points at it). */
export interface Unobserved {
  check: string;
  why: string;
}

/**
 * Pure: what these facts could not observe. No log line to scan (not even the engine's own GET
 * /health), access actions the audit log has never recorded, and no request in 24 h are not "no
 * exposure". Facts of incidents begun before this rule have none.
 */
export function unobservedBreach(f: BreachFacts): Unobserved[] {
  if (!f.evidenceRule) return [];
  const out: Unobserved[] = [];
  if (f.pii.linesScanned === 0) out.push({ check: piiCheck(f), why: `no ${COMPONENT} log line since ${f.since}, not even the engine's own GET /health` });
  if (f.access.recordedActions?.length === 0) {
    out.push({ check: accessCheck, why: 'the audit log has never recorded any of the configured access actions (setting security.accessActions)' });
  }
  if (f.usage.users === 0) out.push({ check: usageCheck, why: `no request in request_logs in the last ${LOOKBACK_HOURS} h` });
  return out;
}

const COMPONENT = 'api';
/** seed 002 INC-14: "created_at > now() - interval '24 hours'" (the audit and API-key usage checks). */
const LOOKBACK_HOURS = 24;

const piiCheck = (f: { since: string }): string => `PII in ${COMPONENT} logs since ${f.since}`;
const accessCheck = `export / read actions in the audit log (${LOOKBACK_HOURS} h)`;
const usageCheck = `key usage (${LOOKBACK_HOURS} h)`;

function piiSummary(p: PiiScan): string {
  const kinds = Object.entries(p.counts).filter(([, n]) => n > 0);
  return kinds.length ? kinds.map(([k, n]) => `${n} ${k}`).join(', ') : 'none';
}

async function diagnose(ctx: RunbookContext): Promise<BreachFacts> {
  const settings = await acts.securitySettings({ target: ctx.target });
  const params = ctx.input.params ?? {};
  const openedMs = Date.parse(workflowInfo().startTime.toISOString());
  const since = typeof params.since === 'string' ? params.since : new Date(openedMs - settings.logWindowMinutes * 60_000).toISOString();
  const email = typeof params.erasureUserEmail === 'string' ? params.erasureUserEmail : undefined;
  // A request of the engine's own first: a readable log then has at least its line to scan.
  // (Incidents begun before this rule did not, and replay so.)
  const evidence = patched('evidence-before-conclusions');
  if (evidence) await acts.httpHealth({ target: ctx.target });
  const [pii, access, usage, erasureUser] = await Promise.all([
    acts.scanLogsForPii({ target: ctx.target, component: COMPONENT, since }),
    acts.auditAccess({ target: ctx.target, hours: LOOKBACK_HOURS }),
    acts.keyUsage({ target: ctx.target, hours: LOOKBACK_HOURS }),
    email ? acts.findUserByEmail({ target: ctx.target, email }) : Promise.resolve(undefined),
  ]);
  const owned = pii.leakedKeys.filter((k): k is { fingerprint: string; userId: number } => k.userId !== null);
  const { valid } = await acts.leakedKeysValid({ target: ctx.target, keys: owned });

  const facts: BreachFacts = {
    since,
    pii,
    access,
    usage,
    compromised: valid,
    ...(email ? { erasure: { requested: true as const, userId: erasureUser?.userId ?? null } } : {}),
    contacts: [...settings.contacts.owner, ...settings.contacts.security, ...settings.contacts.legal],
    identifiedAt: new Date().toISOString(),
    keyStoreConfigured: settings.keyStoreConfigured,
    ...(evidence ? { evidenceRule: true } : {}),
  };
  const unknown = new Map(unobservedBreach(facts).map((u) => [u.check, u.why]));
  const record = (check: string, ok: boolean, detail: string): void => {
    const why = unknown.get(check);
    if (why !== undefined) ctx.unknown(check, why);
    else ctx.finding(check, ok, detail);
  };
  record(
    piiCheck(facts),
    pii.linesWithPii === 0,
    `${pii.linesWithPii} of ${pii.linesScanned} lines: ${piiSummary(pii)}; ${pii.distinctEmails} distinct emails`,
  );
  pii.samples.forEach((s, i) => ctx.finding(`redacted sample ${i + 1}`, false, s));
  ctx.finding(
    'keys in clear text',
    pii.leakedKeys.length === 0,
    pii.leakedKeys.length ? pii.leakedKeys.map((k) => `${k.fingerprint} → ${k.userId === null ? 'no current user' : `user ${k.userId}`}`).join(', ') : 'none',
  );
  record(
    accessCheck,
    access.byNonAdmins === 0,
    access.count
      ? `${access.count} (${access.byNonAdmins} not by admins): ${Object.entries(access.byAction).map(([a, n]) => `${a} ×${n}`).join(', ')} by users ${access.actors.join(', ')}`
      : 'none',
  );
  record(
    usageCheck,
    usage.anomalies.length === 0,
    `${usage.users} keys used, median ${usage.medianRequests} requests` +
      (usage.anomalies.length ? `; anomalous: ${usage.anomalies.map((a) => `user ${a.userId} (${a.requests})`).join(', ')}` : '; no anomalies'),
  );
  if (email) ctx.finding('GDPR erasure request', erasureUser?.userId != null, erasureUser?.userId != null ? `user ${erasureUser.userId}` : 'no user holds that email');
  return facts;
}

/** The Markdown report kept in the incident record: what a security lead forwards to legal. */
function report(f: BreachFacts): string {
  const lines = ['## Data exposure assessment', '', `Logs scanned since ${f.since}: ${f.pii.linesScanned} lines, ${f.pii.linesWithPii} with PII.`, ''];
  lines.push('| kind | occurrences |', '|---|---|', ...Object.entries(f.pii.counts).map(([k, n]) => `| ${k} | ${n} |`));
  lines.push('', `Distinct email addresses exposed: ${f.pii.distinctEmails}.`);
  if (f.pii.samples.length) lines.push('', 'Redacted samples:', '', ...f.pii.samples.map((s) => `- \`${s.replace(/`/g, "'")}\``));
  lines.push('', `Keys in clear text: ${f.pii.leakedKeys.length}; still valid: ${f.compromised.map((k) => `user ${k.userId} (${k.fingerprint})`).join(', ') || 'none'}.`);
  lines.push(`Export / read actions (24 h): ${f.access.count}, ${f.access.byNonAdmins} by non-admins. Anomalous key usage: ${f.usage.anomalies.length}.`);
  return lines.join('\n');
}

/** Pure decision over the findings. */
export function planDataBreach(f: BreachFacts): Decision<BreachStep> {
  const exposed = f.pii.linesWithPii > 0 || f.access.byNonAdmins > 0;
  const erase = f.erasure?.userId != null;
  const unknown = unobservedBreach(f);
  if (!exposed && !erase && unknown.length > 0) {
    const list = unknown.map((u) => `could not observe ${u.check}: ${u.why}`).join('; ');
    return { diagnosis: `no exposure seen, but ${unknown.map((u) => u.check).join(', ')} could not be observed`, escalate: list, steps: [] };
  }
  if (!exposed && !erase) {
    const anomalies = f.usage.anomalies.length ? `; ${f.usage.anomalies.length} key usage anomalies reported for review` : '';
    return {
      diagnosis: `no PII in ${f.pii.linesScanned} log lines since ${f.since}, no export / read actions by non-admins in 24 h${anomalies}`,
      falseAlarm: true,
      steps: [],
    };
  }
  const what = [
    f.pii.linesWithPii ? `PII in ${f.pii.linesWithPii} api log lines (${piiSummary(f.pii)})` : '',
    f.access.byNonAdmins ? `${f.access.byNonAdmins} export / read actions by non-admins in the audit log` : '',
    f.compromised.length ? `${f.compromised.length} keys leaked and still valid` : '',
  ].filter(Boolean);
  const steps: StepRef<BreachStep>[] = ['preserve-evidence', 'notify-owner-security-legal'];
  if (f.compromised.length) steps.push('rotate-compromised-keys');
  if (erase) steps.push('gdpr-erasure');
  const escalate =
    f.compromised.length && !f.keyStoreConfigured ? 'leaked keys must be rotated but no key store (security.keyStoreDir) is configured' : undefined;
  return {
    diagnosis: what.length ? what.join('; ') : 'GDPR erasure requested',
    ...(f.pii.linesWithPii ? { rootCause: 'personal data and credentials written to application logs' } : {}),
    ...(f.erasure && f.erasure.userId === null ? { rootCause: 'erasure requested for an email no user holds' } : {}),
    ...(escalate ? { escalate } : {}),
    severity: 1,
    report: `${report(f)}\n\n${userNoticeSection(f)}`,
    steps,
  };
}

/** The draft of seed 002's notice to the affected users, and who they are, as far as the engine knows. */
function userNoticeSection(f: BreachFacts): string {
  const keys = f.compromised.length > 0;
  const notice = dataIncidentNotice({
    date: (f.identifiedAt ?? f.since).slice(0, 10),
    description: [
      f.pii.linesWithPii ? `Personal data (${piiSummary(f.pii)}) was written to our application logs.` : '',
      keys ? 'API keys appeared in clear text in those logs.' : '',
      f.access.byNonAdmins ? 'User data was exported or read by accounts that should not have.' : '',
    ]
      .filter(Boolean)
      .join(' '),
    done: ['preserved the evidence', ...(keys ? ['revoked the exposed API keys and issued new ones'] : []), 'informed our security and legal teams'],
    youShould: keys ? ['use the new API key we issued and remove the old one from your clients'] : ['review the recent activity of your account'],
  });
  const who = [
    ...(keys ? [`the users whose keys leaked: ${f.compromised.map((k) => `user ${k.userId}`).join(', ')}`] : []),
    ...(f.pii.distinctEmails ? [`the owners of the ${f.pii.distinctEmails} email addresses in the preserved logs`] : []),
    ...(f.access.byNonAdmins ? ['the users whose data the audit log shows exported or read'] : []),
  ];
  return [
    '## Notice to affected users (draft, seed 002 §6)',
    '',
    `To: ${who.join('; ') || 'to be determined by legal'}. Legal decides whether GDPR Article 34 applies; a person sends it.`,
    '',
    `> **${notice.title}**`,
    '>',
    ...notice.text.split('\n').map((l) => (l ? `> ${l}` : '>')),
  ].join('\n');
}

/** The checklist as this incident received it; registered before the runbook's first await. */
class Checklist {
  confirmed?: ChecklistConfirmation;

  listen(ctx: RunbookContext): void {
    setHandler(checklistSignal, (c) => {
      const why = this.refusal(ctx, c);
      if (why) {
        ctx.note(`refused checklist from ${String(c?.by)}: ${why}`);
        return;
      }
      this.confirmed = c;
      ctx.note(`checklist confirmed by ${c.by}${c.note ? `: ${c.note}` : ''}`);
    });
  }

  private refusal(ctx: RunbookContext, c: ChecklistConfirmation): string | undefined {
    if (!c || typeof c.by !== 'string' || !c.items || typeof c.items !== 'object') return 'expected {"by": "<name>", "items": {...}}';
    if (c.by === ctx.input.requestedBy) return `${c.by} opened this incident and cannot confirm it`;
    if (!ctx.policy.approvers.includes(c.by)) return `${c.by} is not an allowed approver`;
    const open = CHECKLIST_ITEMS.filter((i) => c.items[i] !== true);
    return open.length ? `not confirmed: ${open.join(', ')}` : undefined;
  }
}

function makeRunbook(checklist: Checklist): Runbook<BreachFacts> {
  return {
    meta,
    async diagnose(ctx) {
      checklist.listen(ctx);
      return diagnose(ctx);
    },
    plan(f, ctx): Plan {
      const p = planDataBreach(f);
      const target = ctx.target;
      let evidence = 'not preserved';
      const stillCompromised = async (): Promise<Check> => {
        const { valid } = await acts.leakedKeysValid({ target, keys: f.compromised });
        return { ok: valid.length > 0, detail: `${valid.length} leaked keys still valid` };
      };
      const steps = buildSteps(meta, p.steps, {
        'preserve-evidence': () => ({
          resource: 'evidence',
          describe: `export the ${COMPONENT} logs since ${f.since} and the last ${LOOKBACK_HOURS} h of audit rows, with a sha256 manifest`,
          run: async () => {
            const info = workflowInfo();
            const r = await longActs.preserveBreachEvidence({ target, component: COMPONENT, since: f.since, evidenceId: `${info.workflowId}.${info.runId}` });
            evidence = r.dir;
            return `${r.reused ? 'evidence already preserved' : 'preserved'} ${r.files.map((x) => `${x.name} (${x.sha256.slice(0, 12)})`).join(', ')} in ${r.dir}`;
          },
        }),
        'notify-owner-security-legal': () => ({
          resource: 'notifications',
          describe: `notify ${f.contacts.join(', ') || 'the configured contacts'}`,
          run: async () => {
            ctx.notify({
              title: `SEV-1 data exposure on ${target}`,
              text:
                `${p.diagnosis}. Evidence: ${evidence}. Compromised keys: ${f.compromised.map((k) => `user ${k.userId}`).join(', ') || 'none'}. ` +
                'A draft of the notice to the affected users (seed 002 §6) is in the incident report.',
              contacts: f.contacts,
            });
            return `notified ${f.contacts.join(', ') || 'no configured contacts'}`;
          },
        }),
        'rotate-compromised-keys': () => ({
          resource: 'api-keys',
          describe: `rotate the keys of users ${f.compromised.map((k) => k.userId).join(', ')} through the admin API`,
          precondition: stillCompromised,
          run: async () => {
            const r = await longActs.rotateLeakedKeys({ target, keys: f.compromised, reason: `INC-14 ${ctx.incidentId}: key leaked in logs` });
            const done = r.rotated.map((x) => `user ${x.userId} → ${x.newFingerprint}`).join(', ') || 'none';
            return `rotated ${done}; new keys stored and signed in${r.skipped.length ? `; already rotated: ${r.skipped.join(', ')}` : ''}`;
          },
        }),
        'gdpr-erasure': () => ({
          resource: 'users',
          describe: `erase user ${f.erasure?.userId ?? '?'} (anonymise the email, revoke the key) through the GDPR endpoint`,
          precondition: async () => {
            const email = String(ctx.input.params?.erasureUserEmail ?? '');
            const u = await acts.findUserByEmail({ target, email });
            return { ok: u.userId !== null, detail: u.userId !== null ? `user ${u.userId} still holds the email` : 'no user holds the email any more' };
          },
          run: async () => (await acts.eraseUser({ target, userId: f.erasure?.userId ?? 0 })).detail,
        }),
      });
      return { ...p, steps };
    },
    async verify(ctx, f): Promise<Check> {
      const { valid } = await acts.leakedKeysValid({ target: ctx.target, keys: f.compromised });
      if (valid.length) return { ok: false, detail: `${valid.length} leaked keys still valid` };
      if (!checklist.confirmed) {
        // A person must confirm; as long as an approval would wait, through every tier.
        const waitMs = ctx.policy.tiers.reduce((sum, t) => sum + t.waitMs, 0);
        ctx.note(`waiting for the checklist (${CHECKLIST_ITEMS.join(', ')}): signal "checklist"`);
        await condition(() => checklist.confirmed !== undefined, waitMs);
      }
      const c = checklist.confirmed;
      return c
        ? { ok: true, detail: `leaked keys refused; checklist confirmed by ${c.by}` }
        : { ok: false, detail: 'nobody confirmed the checklist' };
    },
  };
}

/** INC-14: data breach / PII exposure. */
export async function dataBreach(input: IncidentInput): Promise<IncidentRecord> {
  return runIncident(makeRunbook(new Checklist()), input);
}
