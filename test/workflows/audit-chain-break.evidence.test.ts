/**
 * INC-09 decides and writes only with a hash definition (`audit.hash`) shown to be the target's: it
 * must reproduce the stored hashes of the entries before the break. The reference hashes here are the
 * drill's own (drill/src/faults/replica-formats.ts, the replica's formula), not the engine's.
 */
import { auditHashDefinition, type AuditHashDefinition } from '../../src/config';
import { checkDefinition, hashEntry, type StoredEntry } from '../../src/activities/postgres/audit-hash';
import { planAuditChainBreak, type AuditFacts } from '../../src/workflows/audit-chain-break';
import { auditHash as replicaHash, GENESIS_HASH } from '../../drill/src/faults/replica-formats';
import { auditChainBreakEntryBase } from '../fixtures/healthy-facts';

const def = (over: Record<string, unknown> = {}): AuditHashDefinition => auditHashDefinition.parse(over);

const content = (id: number, details: unknown = { ip: '10.0.0.7', nested: { b: 1, a: [2, { z: 1, y: null }] } }) => ({
  id: String(id),
  actor_user_id: id % 3 === 0 ? null : '7',
  action: 'user_read',
  target_type: 'user',
  target_id: '42',
  details: id % 4 === 0 ? null : details,
  created_at: new Date(Date.UTC(2026, 2, 1, 10, 0, id, 123)),
});

/** Entries 1..n hashed by the replica's own code, as they sit before a break. */
function replicaChain(n: number): StoredEntry[] {
  let previous = GENESIS_HASH;
  const out: StoredEntry[] = [];
  for (let id = 1; id <= n; id++) {
    const c = content(id);
    const hash = replicaHash(previous, c);
    out.push({ id: String(id), previous_hash: previous, hash, content: c });
    previous = hash;
  }
  return out.reverse();
}

describe('audit hash definition check', () => {
  const chain = replicaChain(6);

  it('the default definition reproduces the replica\'s hashes (sorted keys at every level, NULL details as {}, ms timestamps)', () => {
    const check = checkDefinition(def(), chain);
    expect(check).toMatchObject({ reproduced: true, checked: 6 });
    for (const e of chain) expect(hashEntry(def(), e.previous_hash as string, e.content)).toBe(e.hash);
  });

  it.each<[string, Record<string, unknown>]>([
    ['another digest', { digest: 'sha512' }],
    ['another encoding', { encoding: 'base64' }],
    ['another column order (json in the listed order)', { serialise: 'json', columns: ['id', 'action', 'actor_user_id', 'created_at', { column: 'details', nullAs: {} }, 'target_id', 'target_type'] }],
    ['the values joined instead of JSON', { serialise: 'joined' }],
    ['the previous hash after the content', { previousHash: 'suffix' }],
    ['the previous hash as a field', { previousHash: 'field' }],
    ['a column left out', { columns: ['action', 'actor_user_id', 'created_at', { column: 'details', nullAs: {} }, 'id', 'target_id'] }],
    ['NULL details hashed as null', { columns: ['action', 'actor_user_id', 'created_at', 'details', 'id', 'target_id', 'target_type'] }],
    ['epoch timestamps', { timestamps: 'epoch-ms' }],
  ])('%s: not reproduced, naming the setting and the entry', (_name, over) => {
    const check = checkDefinition(def(over), chain);
    expect(check.reproduced).toBe(false);
    expect(check.checked).toBe(6);
    expect(check.mismatchAt).toBeDefined();
    expect(check.detail).toMatch(/the hash definition \(setting audit\.hash: .*\) does not match the target's entries: it does not reproduce the stored hash of entry \d+, before the break/);
  });

  it('a single entry that does not reproduce is enough to refuse', () => {
    const tampered = chain.map((e, i) => (i === 2 ? { ...e, hash: 'f'.repeat(64) } : e));
    expect(checkDefinition(def(), tampered)).toMatchObject({ reproduced: false, mismatchAt: tampered[2]?.id });
  });

  it('no entry with hashes before the break: nothing shows the definition to be the target\'s', () => {
    expect(checkDefinition(def(), [])).toMatchObject({ reproduced: false, checked: 0 });
    const unhashed = chain.map((e) => ({ ...e, hash: null, previous_hash: null }));
    expect(checkDefinition(def(), unhashed).detail).toMatch(/no entry before the break holds a hash to check the hash definition \(setting audit\.hash\) against/);
  });

  it('a definition set to another target\'s formula reproduces that target\'s chain', () => {
    const other = def({ serialise: 'joined', separator: ';', digest: 'sha384', previousHash: 'suffix', timestamps: 'epoch-s', columns: ['id', 'action', 'created_at'] });
    let previous = other.genesis;
    const entries: StoredEntry[] = [];
    for (let id = 1; id <= 3; id++) {
      const c = content(id);
      const hash = hashEntry(other, previous, c);
      entries.push({ id: String(id), previous_hash: previous, hash, content: c });
      previous = hash;
    }
    // sha384 of `<id>;user_read;<epoch s>` followed by the previous hash, in hex.
    expect(entries[0]?.hash).toHaveLength(96);
    expect(checkDefinition(other, entries)).toMatchObject({ reproduced: true, checked: 3 });
    expect(checkDefinition(def(), entries).reproduced).toBe(false);
  });
});

const view = (id: string, over: Record<string, unknown> = {}) => ({ id, ...auditChainBreakEntryBase, ...over });
const missing = view('30', { hashMissing: true, previousHash: null, hash: null, linksToPrevious: false, contentMatches: false });
const reproduced = { reproduced: true, checked: 20, detail: 'the hash definition (setting audit.hash) reproduces the stored hashes of the 20 entries before the break' };
const mismatched = {
  reproduced: false,
  checked: 20,
  mismatchAt: '29',
  detail: "the hash definition (setting audit.hash: sha512 hex of ...) does not match the target's entries: it does not reproduce the stored hash of entry 29, before the break",
};
const unchecked = { reproduced: false, checked: 0, detail: 'no entry before the break holds a hash to check the hash definition (setting audit.hash) against' };

const facts = (broken: ReturnType<typeof view>, definition?: typeof reproduced, hashRule = true): AuditFacts => ({
  verdict: { valid: false, firstBreakAt: broken.id, breakKind: broken.hashMissing ? 'missing_hash' : 'content_mismatch', breaks: 5, total: 50 },
  neighbourhood: { broken, entries: [view('29'), broken, view('31')], missingRun: 5, ...(definition ? { definition } : {}) },
  ...(hashRule ? { hashRule } : {}),
});

describe('auditChainBreak plan over the hash definition check', () => {
  it('migration error with a definition that does not match the target\'s entries: escalates, no step, nothing written', () => {
    const p = planAuditChainBreak(facts(missing, mismatched));
    expect(p.steps).toEqual([]);
    expect(p.falseAlarm).toBeUndefined();
    expect(p.escalate).toMatch(/hash definition .* does not match the target's entries.*nothing written/);
    expect(p.diagnosis).toMatch(/the hash definition does not match the target's entries/);
  });

  it('tampering is not concluded (nor evidence steps chosen) from hashes the definition cannot reproduce', () => {
    const p = planAuditChainBreak(facts(view('30', { contentMatches: false }), mismatched));
    expect(p.steps).toEqual([]);
    expect(p.escalate).toMatch(/does not match the target's entries/);
    expect(p.report).toMatch(/content not checked \(hash definition unconfirmed\)/);
  });

  it('no entry before the break to check against: could not observe, escalates without steps', () => {
    const p = planAuditChainBreak(facts(missing, unchecked));
    expect(p.steps).toEqual([]);
    expect(p.escalate).toMatch(/^could not observe the hash definition: no entry before the break holds a hash/);
  });

  it('the check missing from an incident that checks definitions: escalates', () => {
    const p = planAuditChainBreak(facts(missing, undefined));
    expect(p.steps).toEqual([]);
    expect(p.escalate).toMatch(/could not observe the hash definition/);
  });

  it('positive control: a definition that reproduces the entries before the break re-hashes forward (two-person step)', () => {
    const p = planAuditChainBreak(facts(missing, reproduced));
    expect(p.steps).toEqual(['rehash-chain']);
    expect(p.escalate).toBeUndefined();
    expect(p.diagnosis).toMatch(/5 entries written without hashes \(migration error\)/);
  });

  it('positive control: a valid chain is a false alarm', () => {
    const p = planAuditChainBreak({ verdict: { valid: true, firstBreakAt: null, breakKind: null, breaks: 0, total: 50 } });
    expect(p.falseAlarm).toBe(true);
    expect(p.steps).toEqual([]);
  });

  it('incidents recorded before the check decide as they did', () => {
    expect(planAuditChainBreak(facts(missing, undefined, false)).steps).toEqual(['rehash-chain']);
  });
});

describe('auditChainBreak with the chain verification unreadable', () => {
  it('escalates naming it, never a false alarm, no step', () => {
    const why = 'POST /v1/admin/audit-logs/verify: POST /v1/admin/audit-logs/verify answered without a boolean `valid`';
    const p = planAuditChainBreak({ verdict: { valid: false, firstBreakAt: null, breakKind: null, breaks: null, total: null, unreadable: why }, hashRule: true, verdictUnread: why });
    expect(p.falseAlarm).toBeUndefined();
    expect(p.steps).toEqual([]);
    expect(p.escalate).toBe(`could not observe chain verify: ${why}`);
  });
});
