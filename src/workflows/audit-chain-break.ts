/**
 * INC-09 Audit log chain break (seed 002). Chain verify gives `first_break_at`; the broken entry and
 * its neighbours are read and the break is classified from the data itself:
 * - entries without hashes (a migration wrote them) → recompute the hashes forward from the break
 *   (two-person);
 * - an entry whose content no longer matches its hash (tampering), or a link to nothing known →
 *   preserve evidence (every entry exported with a sha256 manifest) and notify security. Entries are
 *   never updated or deleted: the chain stays broken and the incident stays open for security;
 * - an entry linked to its predecessor's predecessor (two writers raced on the chain head) →
 *   explained and escalated: re-linking would rewrite every later hash, a decision for people.
 * Verify: chain verify valid.
 */
import { patched } from '@temporalio/workflow';
import { acts, buildSteps, longActs, runIncident, type Check, type Plan, type Runbook, type RunbookContext } from './kernel';
import type { IncidentInput, IncidentRecord } from './contracts';
import type { AuditEntryView, AuditNeighbourhood, AuditVerdict } from '../activities/postgres/audit-chain';
import { readsTargetApiSettings } from './target-api';
import { defineRunbook, type Decision, type StepIdOf } from './shape';

/** What this runbook is: the catalog, routes, the client script and the README's table read it. */
export const meta = defineRunbook({
  name: 'auditChainBreak',
  scenario: 'INC-09',
  title: 'Audit log chain break',
  severity: 2,
  source: 'seed 002',
  alerts: ['AuditChainBreak', 'AuditChainInvalid'],
  diagnostics: [
    'chain verify → first_break_at',
    'the broken entry and its neighbours (hashes recomputed)',
    'classification from the data: missing hashes (migration), content mismatch (tampering), prev-hash race',
  ],
  steps: [
    { id: 'preserve-evidence', title: 'Tampering: export every entry with a sha256 manifest, notify security; never update or delete entries', risk: 'auto' },
    { id: 'rehash-chain', title: 'Migration error: recompute hashes forward from the break', risk: 'two-person' },
  ],
  verify: 'chain verify valid (tampering stays open for security; a race is explained and escalated)',
});

/**
 * Seed 002: "notify Sergey Bar + Security Lead immediately": the target's security and owner contacts
 * (`security.contacts`). Incidents started before those reached the workflow named these.
 */
export function securityContacts(ctx: RunbookContext): string[] {
  const c = ctx.policy.roleContacts;
  return c ? [...c.security, ...c.owner] : ['@security-lead', '@ledger-owner'];
}

export type BreakClass = 'missing-hash' | 'tampering' | 'race' | 'unexplained';

/** The target's chain verify, as the auditChainVerify activity reads it. */
export type ChainVerdict = AuditVerdict;

export interface AuditFacts {
  verdict: ChainVerdict;
  neighbourhood?: AuditNeighbourhood;
  /**
   * Incidents that check the hash definition (`audit.hash`) against the entries before the break
   * before choosing anything that rests on it (absent in incidents recorded before).
   */
  hashRule?: boolean;
  /** The chain verification could not be read (incidents with `hashRule`): why. */
  verdictUnread?: string;
}

/** What an activity failure says (its cause holds the activity's own message). */
function failureText(err: unknown): string {
  const e = err as { message?: string; cause?: { message?: string } } | null;
  return e?.cause?.message ?? e?.message ?? String(err);
}

export type AuditStep = StepIdOf<typeof meta>;

export interface AuditDecision extends Decision<AuditStep> {
  /** How the broken entry came about, once its hashes can be trusted. */
  classification?: BreakClass;
}

/** The target's audit chain verdict (POST /v1/admin/audit-logs/verify), also read by INC-08. */
export async function chainVerdict(target: string): Promise<ChainVerdict> {
  if (readsTargetApiSettings()) return acts.auditChainVerify({ target });
  const r = await acts.adminRequest({ target, method: 'POST', path: '/v1/admin/audit-logs/verify' });
  const b = (r.body && typeof r.body === 'object' ? r.body : {}) as Record<string, unknown>;
  return {
    valid: b.valid === true,
    firstBreakAt: b.first_break_at === null || b.first_break_at === undefined ? null : String(b.first_break_at),
    breakKind: typeof b.break_kind === 'string' ? b.break_kind : null,
    breaks: typeof b.breaks === 'number' ? b.breaks : 0,
    total: typeof b.total === 'number' ? b.total : 0,
  };
}

/** Pure: how the broken entry came about, from its stored values alone. */
export function classifyBreak(e: AuditEntryView): BreakClass {
  if (e.hashMissing) return 'missing-hash';
  if (e.linksToPrevious) return e.contentMatches ? 'unexplained' : 'tampering';
  return e.linksToPreviousPrevious ? 'race' : 'unexplained';
}

/** `hashesChecked`: the hash definition reproduced the entries before the break, so `contentMatches` means something. */
function describeEntry(e: AuditEntryView, hashesChecked = true): string {
  if (e.hashMissing) return 'no hash';
  const link = e.linksToPrevious ? 'linked' : e.linksToPreviousPrevious ? "linked to its predecessor's predecessor" : 'links to nothing known';
  if (!hashesChecked) return `${link}, content not checked (hash definition unconfirmed)`;
  return `${link}, content ${e.contentMatches ? 'matches' : 'does not match'} its hash`;
}

/** False when the incident checks the hash definition and it did not reproduce the entries before the break. */
function hashesChecked(f: AuditFacts): boolean {
  return !f.hashRule || f.neighbourhood?.definition?.reproduced === true;
}

/** Markdown for people: the broken entry and its neighbours. */
export function neighbourhoodReport(f: AuditFacts, cls: BreakClass | undefined): string {
  const rows = (f.neighbourhood?.entries ?? []).map(
    (e) => `| ${e.id === f.verdict.firstBreakAt ? `**${e.id}**` : e.id} | ${e.action} | ${e.createdAt} | ${e.previousHash ?? 'NULL'} | ${e.hash ?? 'NULL'} | ${describeEntry(e, hashesChecked(f))} |`,
  );
  return [
    `### Audit chain break at entry ${f.verdict.firstBreakAt ?? '?'} (${cls ?? 'unclassified'})`,
    '',
    `Chain verify: ${f.verdict.breaks ?? '?'} breaks in ${f.verdict.total ?? '?'} entries; the target calls the first one \`${f.verdict.breakKind ?? '?'}\`.${f.verdict.unreadable ? ` (${f.verdict.unreadable})` : ''}`,
    '',
    '| id | action | created_at | previous_hash | hash | finding |',
    '|---|---|---|---|---|---|',
    ...rows,
  ].join('\n');
}

async function diagnose(ctx: RunbookContext): Promise<AuditFacts> {
  // Incidents recorded before this rule failed their diagnosis on an unreadable verdict, and decided
  // from hashes without checking the definition; they replay so.
  const hashRule = patched('evidence-before-conclusions');
  let verdict: ChainVerdict;
  try {
    verdict = await chainVerdict(ctx.target);
  } catch (err) {
    if (!hashRule) throw err;
    const why = `POST /v1/admin/audit-logs/verify: ${failureText(err)}`;
    ctx.unknown('chain verify', why);
    return { verdict: { valid: false, firstBreakAt: null, breakKind: null, breaks: null, total: null, unreadable: why }, hashRule, verdictUnread: why };
  }
  ctx.finding(
    'chain verify',
    verdict.valid,
    (verdict.valid
      ? `valid (${verdict.total ?? '?'} entries)`
      : `first_break_at ${verdict.firstBreakAt ?? '?'} (${verdict.breakKind ?? '?'}), ${verdict.breaks ?? '?'} breaks in ${verdict.total ?? '?'} entries`) +
      (verdict.unreadable ? `; ${verdict.unreadable}` : ''),
  );
  if (verdict.valid || !verdict.firstBreakAt) return { verdict };
  const neighbourhood = await acts.auditNeighbourhood({ target: ctx.target, id: verdict.firstBreakAt, around: 2 });
  const b = neighbourhood.broken;
  const def = neighbourhood.definition;
  const checked = hashesChecked({ verdict, neighbourhood, ...(hashRule ? { hashRule } : {}) });
  if (hashRule) {
    if (!def) ctx.unknown('hash definition', 'the neighbourhood read gave no check of the hash definition (setting audit.hash)');
    else if (def.checked === 0) ctx.unknown('hash definition', def.detail);
    else ctx.finding('hash definition', def.reproduced, def.detail);
  }
  ctx.finding('broken entry', false, b ? `${b.id} ${b.action} at ${b.createdAt}: ${describeEntry(b, checked)}` : `${verdict.firstBreakAt} not found`);
  ctx.finding(
    'neighbours',
    true,
    neighbourhood.entries.filter((e) => e.id !== b?.id).map((e) => `${e.id}: ${describeEntry(e, checked)}`).join('; ') || 'none',
  );
  if (b?.hashMissing) ctx.finding('entries without hashes', false, `${neighbourhood.missingRun} consecutive from ${b.id}`);
  return { verdict, neighbourhood, ...(hashRule ? { hashRule } : {}) };
}

/** Pure decision over the findings. */
export function planAuditChainBreak(f: AuditFacts): AuditDecision {
  if (f.hashRule && f.verdictUnread) {
    return { diagnosis: 'the audit chain verification could not be read', escalate: `could not observe chain verify: ${f.verdictUnread}`, steps: [] };
  }
  if (f.verdict.valid) return { diagnosis: `audit chain valid (${f.verdict.total ?? '?'} entries)`, falseAlarm: true, steps: [] };
  const b = f.neighbourhood?.broken;
  if (!b) {
    return {
      diagnosis: `chain verify reports a break at ${f.verdict.firstBreakAt ?? '?'} but the entry cannot be read`,
      escalate: 'the broken audit entry could not be inspected',
      steps: [],
    };
  }
  const at = `entry ${b.id} (${b.action}, ${b.createdAt})`;
  const def = f.neighbourhood?.definition;
  if (f.hashRule && !def?.reproduced) {
    // Whether an entry matches its hash, and every hash a repair would write, rest on the definition:
    // one that does not reproduce the entries that verify decides nothing and writes nothing.
    const why = def ? def.detail : 'no check of the hash definition (setting audit.hash) was made';
    const unobserved = !def || def.checked === 0;
    return {
      diagnosis: `audit chain break at ${at}: ${unobserved ? 'the hash definition could not be checked' : 'the hash definition does not match the target\'s entries'}`,
      report: neighbourhoodReport(f, undefined),
      escalate: unobserved
        ? `could not observe the hash definition: ${why}; nothing written`
        : `${why}; nothing written: set audit.hash to the target's own definition before the chain is repaired`,
      steps: [],
    };
  }
  const cls = classifyBreak(b);
  const report = neighbourhoodReport(f, cls);
  if (cls === 'missing-hash') {
    return {
      diagnosis: `audit chain break at ${at}: ${f.neighbourhood?.missingRun ?? 1} entries written without hashes (migration error)`,
      rootCause: 'audit entries written without their hash chain (migration error)',
      report,
      classification: cls,
      steps: ['rehash-chain'],
    };
  }
  if (cls === 'race') {
    return {
      diagnosis: `audit chain break at ${at}: it links to its predecessor's previous_hash, so two writers computed their hash from the same chain head (race)`,
      rootCause: 'concurrent audit writers read the same chain head',
      report,
      classification: cls,
      escalate:
        `entry ${b.id} was written concurrently with ${(f.neighbourhood?.entries ?? []).filter((e) => Number(e.id) < Number(b.id)).pop()?.id ?? 'its predecessor'}: ` +
        'both contents are intact; re-linking rewrites every later hash, which people must decide (and the writer lock must be fixed)',
      steps: [],
    };
  }
  return {
    diagnosis:
      cls === 'tampering'
        ? `audit chain break at ${at}: its content no longer matches its hash (tampering)`
        : `audit chain break at ${at}: it links to no known entry (deleted or inserted entries)`,
    rootCause: cls === 'tampering' ? 'an audit entry was modified after it was written' : 'the audit chain was altered (entries missing or inserted)',
    report,
    classification: cls,
    steps: ['preserve-evidence'],
  };
}

/** Why an altered chain goes to security, with the state of the evidence preserved for them. */
async function evidenceHandOff(incidentId: string, at: string | null): Promise<string> {
  const e = await acts.checkIncidentEvidence({ incidentId });
  return `chain stays broken at ${at ?? '?'}: entries are evidence and are not changed; evidence ${e.ok ? 'intact' : 'NOT intact'} (${e.detail}); security must review`;
}

const runbook: Runbook<AuditFacts> = {
  meta,
  diagnose,
  plan(f, ctx): Plan {
    const t = ctx.target;
    const p = planAuditChainBreak(f);
    const from = f.verdict.firstBreakAt ?? '';
    const verdict: Record<string, unknown> = { ...f.verdict, classification: p.classification ?? null, incident: ctx.incidentId };
    const steps = buildSteps(meta, p.steps, {
      'preserve-evidence': () => ({
        resource: 'db',
        describe: 'export every audit entry and the chain verdict to the evidence directory with a sha256 manifest; entries are not changed',
        run: async () => {
          const e = await acts.exportAuditEvidence({ target: t, incidentId: ctx.incidentId, verdict });
          const files = e.files.map((x) => `${x.name} sha256 ${x.sha256}`).join(', ');
          ctx.notify({
            title: `Audit chain ${p.classification === 'tampering' ? 'tampering' : 'alteration'} on ${t}`,
            text: `${p.diagnosis}. Evidence preserved in ${e.dir}: ${files}. Audit entries were not changed (${ctx.incidentId}).`,
            contacts: securityContacts(ctx),
            kind: 'escalation',
          });
          return `evidence ${e.reused ? 'already preserved' : 'preserved'} in ${e.dir}: ${files}`;
        },
      }),
      'rehash-chain': () => ({
        resource: 'db',
        describe: `fill the missing hashes from entry ${from} on and re-link the entries after them (refused if any entry does not match its own hash)`,
        precondition: async () => {
          const v = await chainVerdict(t);
          // The break is still the one diagnosed: the target calls it a missing hash, or names no kind
          // (an unreadable kind is not a cleared break) and still breaks at the same entry.
          const still = v.breakKind === 'missing_hash' || (v.breakKind === null && v.firstBreakAt === from);
          return { ok: !v.valid && still, detail: v.valid ? 'chain valid' : `break at ${v.firstBreakAt ?? '?'} (${v.breakKind ?? '?'})` };
        },
        run: async () => {
          const r = await longActs.rehashAuditChain({ target: t, fromId: from });
          return `recomputed hashes of ${r.updated.length} entries${r.updated.length ? ` (${r.updated[0]}–${r.updated[r.updated.length - 1]})` : ''}`;
        },
      }),
    });
    const altered = p.classification === 'tampering' || p.classification === 'unexplained';
    // Seed 002: "SEV-2 (SEV-1 if during compliance audit)"; the person or route starting it says so.
    const duringAudit = ctx.input.params?.complianceAudit === true && !f.verdict.valid;
    return {
      ...p,
      ...(duringAudit ? { severity: 1 as const } : {}),
      steps,
      // Altered entries are evidence: nothing will make the chain valid, so security takes over now.
      ...(altered ? { handOffAfterSteps: () => evidenceHandOff(ctx.incidentId, f.verdict.firstBreakAt) } : {}),
    };
  },
  async verify(ctx, f): Promise<Check> {
    let v: ChainVerdict;
    try {
      v = await chainVerdict(ctx.target);
    } catch (err) {
      if (!f.hashRule) throw err;
      return { ok: false, detail: `chain verify unreadable: ${failureText(err)}`, unknown: `chain verify: POST /v1/admin/audit-logs/verify: ${failureText(err)}` };
    }
    if (v.valid) return { ok: true, detail: `chain verify valid (${v.total ?? '?'} entries)` };
    const cls = f.neighbourhood?.broken ? classifyBreak(f.neighbourhood.broken) : undefined;
    if (cls === 'tampering' || cls === 'unexplained') {
      // By design the chain stays broken: altered entries are evidence, and security decides.
      const e = await acts.checkIncidentEvidence({ incidentId: ctx.incidentId });
      return { ok: false, detail: `chain stays broken at ${v.firstBreakAt ?? '?'}: entries are evidence and are not changed; evidence ${e.ok ? 'intact' : 'NOT intact'} (${e.detail}); security must review` };
    }
    return { ok: false, detail: `chain still broken at ${v.firstBreakAt ?? '?'} (${v.breakKind ?? '?'})` };
  },
};

/** INC-09: audit log chain break. */
export async function auditChainBreak(input: IncidentInput): Promise<IncidentRecord> {
  return runIncident(runbook, input);
}
