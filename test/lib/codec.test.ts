/**
 * The engine's payload codecs with real crypto, through the SDK's own data converter: encryption at
 * rest (key rotation, tampering), seals made by the codec server and verified by the worker, and the
 * secrets file.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import {
  decodeArrayFromPayloads,
  encodeToPayloads,
  loadDataConverter,
} from '@temporalio/common/lib/internal-non-workflow';
import {
  decodeWith,
  encodeWith,
  engineCodecs,
  sealingCodecs,
  seal,
  sealIsFresh,
  sealOf,
  verifySeal,
  SEAL_METADATA,
} from '../../src/lib/codec';
import { decryptPayload, encryptPayload } from '../../src/lib/codec/encryption';
import {
  checkPassword,
  checkToken,
  hashPassword,
  loadSecrets,
  newKey,
  newToken,
  parseSecrets,
  SecretsError,
  type CodecSecrets,
} from '../../src/lib/codec/secrets';

const APPROVAL = { stepId: 'evict-cache', approver: 'alice', comment: 'pattern cache:* only' };

function secretsWith(
  opts: {
    enc?: Record<string, string>;
    encActive?: string;
    seal?: Record<string, string>;
    sealActive?: string;
    operators?: Array<Record<string, string>>;
  } = {},
): CodecSecrets {
  const enc = opts.enc ?? { k1: newKey() };
  const sealKeys = opts.seal ?? { s1: newKey() };
  return parseSecrets({
    encryption: { active: opts.encActive ?? Object.keys(enc)[0], keys: enc },
    seal: { active: opts.sealActive ?? Object.keys(sealKeys)[0], keys: sealKeys },
    operators: opts.operators ?? [],
  });
}

const text = (b: Uint8Array | null | undefined) => Buffer.from(b ?? new Uint8Array()).toString('utf8');
const meta = (p: Payload, k: string) => text(p.metadata?.[k]);

/** The decoded value of a payload (what a workflow handler receives). */
async function decodeOne(secrets: CodecSecrets, payload: Payload): Promise<Record<string, unknown>> {
  const conv = loadDataConverter({ payloadCodecs: engineCodecs(secrets) });
  const [value] = await decodeArrayFromPayloads(conv, [payload]);
  return value as Record<string, unknown>;
}

/** What the codec server's /encode makes of a value sent by `who`. */
async function sealedByServer(secrets: CodecSecrets, value: unknown, who = 'alice'): Promise<Payload> {
  const [p] = await encodeWith(sealingCodecs(secrets, who, 'session'), [defaultPayloadConverter.toPayload(value)]);
  return p as Payload;
}

describe('encryption through the SDK data converter', () => {
  const secrets = secretsWith();
  const conv = loadDataConverter({ payloadCodecs: engineCodecs(secrets) });

  test('values round-trip; what Temporal stores is encrypted under the active key', async () => {
    const values = [APPROVAL, 'plain string', 42, null, [1, 2, { nested: true }], new Uint8Array([0, 1, 2, 255])];
    const encoded = (await encodeToPayloads(conv, ...values)) ?? [];
    expect(encoded).toHaveLength(values.length);
    for (const p of encoded) {
      expect(meta(p, 'encoding')).toBe('binary/encrypted');
      expect(meta(p, 'encryption-key-id')).toBe('k1');
      expect(Object.keys(p.metadata ?? {}).sort()).toEqual(['encoding', 'encryption-key-id']);
    }
    expect(text(encoded[0]?.data)).not.toContain('evict-cache');
    expect(text(encoded[0]?.data)).not.toContain('json/plain');
    expect(await decodeArrayFromPayloads(conv, encoded)).toEqual(values);
  });

  test('the same value encrypts differently each time (random IV)', async () => {
    const [a] = (await encodeToPayloads(conv, APPROVAL)) ?? [];
    const [b] = (await encodeToPayloads(conv, APPROVAL)) ?? [];
    expect(Buffer.from(a?.data ?? []).equals(Buffer.from(b?.data ?? []))).toBe(false);
  });

  test('payloads recorded before encryption pass through unchanged', async () => {
    const plain = defaultPayloadConverter.toPayload(APPROVAL);
    const [decoded] = await decodeWith(engineCodecs(secrets), [plain]);
    expect(decoded).toEqual(plain);
    expect(await decodeArrayFromPayloads(conv, [plain])).toEqual([APPROVAL]);
  });
});

describe('key rotation', () => {
  const k0 = newKey();
  const k1 = newKey();
  const before = secretsWith({ enc: { k0 } });
  const after = secretsWith({ enc: { k1, k0 }, encActive: 'k1' });

  test('a payload encrypted with the old key still decodes after rotation; new payloads use the new key', async () => {
    const [old] = await encodeWith(engineCodecs(before), [defaultPayloadConverter.toPayload(APPROVAL)]);
    expect(meta(old as Payload, 'encryption-key-id')).toBe('k0');
    expect(await decodeOne(after, old as Payload)).toEqual(APPROVAL);
    const [fresh] = await encodeWith(engineCodecs(after), [defaultPayloadConverter.toPayload(APPROVAL)]);
    expect(meta(fresh as Payload, 'encryption-key-id')).toBe('k1');
    expect(await decodeOne(after, fresh as Payload)).toEqual(APPROVAL);
  });

  test('a key id that is no longer known is an error naming the id, not the content', async () => {
    const [fresh] = await encodeWith(engineCodecs(after), [defaultPayloadConverter.toPayload(APPROVAL)]);
    await expect(decodeOne(before, fresh as Payload)).rejects.toThrow(/encryption key "k1".*not among the keys \(k0\)/);
    await expect(decodeOne(before, fresh as Payload)).rejects.not.toThrow(/evict-cache/);
  });
});

describe('tampering with encrypted payloads', () => {
  const secrets = secretsWith({ enc: { k1: newKey(), k0: newKey() } });
  const encrypted = encryptPayload(defaultPayloadConverter.toPayload(APPROVAL), secrets.encryption);
  const size = encrypted.data?.length ?? 0;

  test.each([
    ['the IV', 0],
    ['the ciphertext', 20],
    ['the tag', size - 1],
  ])('a flipped byte in %s is an error naming the key id', (_where, index) => {
    const data = Buffer.from(encrypted.data ?? []);
    data[index] = (data[index] ?? 0) ^ 0x01;
    const tampered = { ...encrypted, data };
    expect(() => decryptPayload(tampered, secrets.encryption)).toThrow(/key "k1" fails authentication/);
    expect(() => decryptPayload(tampered, secrets.encryption)).not.toThrow(/evict-cache|alice/);
  });

  test('relabelling the ciphertext with another known key id fails authentication', () => {
    const relabelled = { ...encrypted, metadata: { ...encrypted.metadata, 'encryption-key-id': Buffer.from('k0') } };
    expect(() => decryptPayload(relabelled, secrets.encryption)).toThrow(/key "k0" fails authentication/);
  });

  test('a truncated payload or one without a key id is refused', () => {
    expect(() => decryptPayload({ ...encrypted, data: Buffer.alloc(10) }, secrets.encryption)).toThrow(/truncated/);
    expect(() =>
      decryptPayload(
        { metadata: { encoding: Buffer.from('binary/encrypted') }, data: encrypted.data },
        secrets.encryption,
      ),
    ).toThrow(/no encryption-key-id/);
  });

  test('the SDK data converter surfaces the failure', async () => {
    const data = Buffer.from(encrypted.data ?? []);
    data[30] = (data[30] ?? 0) ^ 0xff;
    await expect(decodeOne(secrets, { ...encrypted, data })).rejects.toThrow(/fails authentication/);
  });
});

describe('seals', () => {
  const secrets = secretsWith();

  test('a payload sealed by the codec server decodes with __sealedBy on the worker', async () => {
    const before = Date.now();
    const payload = await sealedByServer(secrets, APPROVAL);
    expect(meta(payload, 'encoding')).toBe('binary/encrypted');
    expect(Object.keys(payload.metadata ?? {}).some((k) => k.startsWith('seal-'))).toBe(false);
    const value = await decodeOne(secrets, payload);
    expect(value).toEqual({
      ...APPROVAL,
      __sealedBy: { by: 'alice', id: expect.any(String), at: expect.any(String), via: 'session' },
    });
    const s = sealOf(value);
    expect(s.kind).toBe('sealed');
    const seal1 = (s as { seal: { id: string; at: string } }).seal;
    expect(seal1.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(Date.parse(seal1.at)).toBeGreaterThanOrEqual(before - 1000);
  });

  test('every seal gets its own id', async () => {
    const a = sealOf(await decodeOne(secrets, await sealedByServer(secrets, APPROVAL)));
    const b = sealOf(await decodeOne(secrets, await sealedByServer(secrets, APPROVAL)));
    expect(a.kind === 'sealed' && b.kind === 'sealed' && a.seal.id !== b.seal.id).toBe(true);
  });

  /** A sealed payload, decrypted, changed by `change`, then encrypted again (what someone with the encryption key could do). */
  async function tampered(change: (p: Payload) => Payload, verifier = secrets): Promise<Record<string, unknown>> {
    const encrypted = await sealedByServer(secrets, APPROVAL);
    const inner = decryptPayload(encrypted, secrets.encryption);
    return decodeOne(verifier, encryptPayload(change(inner), verifier.encryption));
  }

  test('a forged mac is refused', async () => {
    const value = await tampered((p) => ({
      ...p,
      metadata: { ...p.metadata, [SEAL_METADATA.mac]: Buffer.from(Buffer.alloc(32, 1).toString('base64')) },
    }));
    expect(value.__sealedBy).toBeUndefined();
    expect(value.__sealRefused).toMatch(/does not match/);
    expect(value.stepId).toBe('evict-cache');
  });

  test('altered data is refused', async () => {
    const value = await tampered((p) => ({
      ...p,
      data: Buffer.from(JSON.stringify({ ...APPROVAL, stepId: 'restore-db' })),
    }));
    expect(value).toEqual({
      ...APPROVAL,
      stepId: 'restore-db',
      __sealRefused: expect.stringMatching(/does not match/),
    });
  });

  test('another name in seal-by is refused', async () => {
    const value = await tampered((p) => ({
      ...p,
      metadata: { ...p.metadata, [SEAL_METADATA.by]: Buffer.from('mallory') },
    }));
    expect(value.__sealedBy).toBeUndefined();
    expect(value.__sealRefused).toMatch(/does not match/);
  });

  test('a seal missing a field is refused', async () => {
    const value = await tampered((p) => {
      const m = { ...p.metadata };
      delete m[SEAL_METADATA.at];
      return { ...p, metadata: m };
    });
    expect(value.__sealRefused).toBe('incomplete seal: no seal-at');
  });

  test('a seal made with a key the worker does not have is refused, naming the key', async () => {
    const worker = parseSecrets({
      encryption: { active: 'k1', keys: { k1: secrets.encryption.keys.get('k1')?.toString('base64') } },
      seal: { active: 's9', keys: { s9: newKey() } },
    });
    const value = await tampered((p) => p, worker);
    expect(value.__sealRefused).toBe('seal key "s1" is unknown');
    expect(value.__sealedBy).toBeUndefined();
  });

  test('a worker without seal keys refuses every seal', async () => {
    const worker = parseSecrets({
      encryption: { active: 'k1', keys: { k1: secrets.encryption.keys.get('k1')?.toString('base64') } },
    });
    const value = await decodeOne(worker, await sealedByServer(secrets, APPROVAL));
    expect(value.__sealRefused).toBe('no seal keys are configured here');
  });

  test('__sealedBy or __sealRefused written by the sender of an unsealed payload is stripped', async () => {
    const forged = {
      ...APPROVAL,
      __sealedBy: { by: 'alice', id: 'x', at: new Date().toISOString(), via: 'session' },
      __sealRefused: 'no',
    };
    const conv = loadDataConverter({ payloadCodecs: engineCodecs(secrets) });
    const encoded = (await encodeToPayloads(conv, forged)) ?? [];
    expect(await decodeArrayFromPayloads(conv, encoded)).toEqual([APPROVAL]);
    // Also when it was never encrypted (sent straight to Temporal as json/plain).
    expect(await decodeOne(secrets, defaultPayloadConverter.toPayload(forged))).toEqual(APPROVAL);
    expect(sealOf(await decodeOne(secrets, defaultPayloadConverter.toPayload(forged)))).toEqual({ kind: 'unsealed' });
  });

  test('__sealedBy written inside a sealed payload is replaced by the real seal', async () => {
    const forged = { ...APPROVAL, __sealedBy: { by: 'bob', id: 'x', at: '2020-01-01T00:00:00.000Z', via: 'token' } };
    const value = await decodeOne(secrets, await sealedByServer(secrets, forged, 'alice'));
    expect((value.__sealedBy as { by: string }).by).toBe('alice');
    expect((value.__sealedBy as { via: string }).via).toBe('session');
  });

  test('decoding never looks at the clock: a seal from years ago still verifies', async () => {
    const ring = secrets.seal;
    if (!ring) throw new Error('no seal keys');
    const old = seal(
      defaultPayloadConverter.toPayload(APPROVAL),
      'alice',
      { via: 'token', at: new Date('2001-02-03T04:05:06Z') },
      ring,
    );
    expect(verifySeal(old, ring)).toEqual({
      status: 'valid',
      seal: { by: 'alice', id: expect.any(String), at: '2001-02-03T04:05:06.000Z', via: 'token' },
    });
    const value = await decodeOne(secrets, encryptPayload(old, secrets.encryption));
    expect(value.__sealedBy).toEqual({
      by: 'alice',
      id: expect.any(String),
      at: '2001-02-03T04:05:06.000Z',
      via: 'token',
    });
    // Freshness is the workflow's decision.
    expect(sealIsFresh(value.__sealedBy as never, Date.now(), 15 * 60_000)).toBe(false);
    expect(
      sealIsFresh({ by: 'a', id: 'i', at: new Date().toISOString(), via: 'session' }, Date.now(), 15 * 60_000),
    ).toBe(true);
  });

  test('payloads other than JSON objects are left as they are', async () => {
    for (const v of [['a', 'list'], 'text', 7, null]) {
      const p = defaultPayloadConverter.toPayload(v);
      const [out] = await decodeWith(engineCodecs(secrets), [p]);
      expect(out).toEqual(p);
    }
    const bin = defaultPayloadConverter.toPayload(new Uint8Array([123, 125]));
    expect((await decodeWith(engineCodecs(secrets), [bin]))[0]).toEqual(bin);
  });

  test('an unsealed JSON object is returned byte for byte', async () => {
    const p = {
      metadata: { encoding: Buffer.from('json/plain') },
      data: Buffer.from('{ "stepId" : "x",  "n": 1.50 }'),
    };
    const [out] = await decodeWith(engineCodecs(secrets), [p]);
    expect(text(out?.data)).toBe('{ "stepId" : "x",  "n": 1.50 }');
  });
});

describe('secrets file', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'codec-secrets-'));

  function write(name: string, content: string, mode = 0o600): string {
    const file = path.join(dir, name);
    writeFileSync(file, content, { mode });
    return file;
  }

  test('a missing file is an error naming the path', () => {
    expect(() => loadSecrets(path.join(dir, 'absent.yaml'))).toThrow(SecretsError);
    expect(() => loadSecrets(path.join(dir, 'absent.yaml'))).toThrow(
      `secrets file not found: ${path.join(dir, 'absent.yaml')}`,
    );
  });

  test('YAML and JSON load; a file others can read loads with a warning', () => {
    const k = newKey();
    const yaml = write('ok.yaml', `encryption: { active: k1, keys: { k1: "${k}" } }\n`);
    expect(loadSecrets(yaml).encryption.keys.get('k1')?.length).toBe(32);
    expect(loadSecrets(yaml).warnings).toEqual([]);
    const json = write('ok.json', JSON.stringify({ encryption: { active: 'k1', keys: { k1: k } } }), 0o644);
    const loaded = loadSecrets(json);
    expect(loaded.encryption.active).toBe('k1');
    expect(loaded.warnings).toEqual([expect.stringMatching(/mode 0644: others may read it/)]);
  });

  test('invalid documents are refused with the path of each problem, never the secret', () => {
    const shortKey = Buffer.alloc(16, 9).toString('base64');
    const file = write(
      'bad.yaml',
      [
        `encryption: { active: k2, keys: { k1: "${shortKey}" } }`,
        `seal: { active: s1, keys: { s1: "not base64!" } }`,
        `operators:`,
        `  - { name: alice, password: "plaintext-password" }`,
        `  - { name: bob }`,
        `  - { name: alice, token: "sha256$${'a'.repeat(64)}" }`,
      ].join('\n'),
    );
    let message = '';
    try {
      loadSecrets(file);
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toContain(`secrets file ${file} is invalid`);
    expect(message).toContain('encryption.keys.k1: must be the base64 of exactly 32 bytes');
    expect(message).toContain('encryption.active: active key "k2" is not among keys (k1)');
    expect(message).toContain('seal.keys.s1: must be the base64 of exactly 32 bytes');
    expect(message).toContain('operators.0.password: must be "scrypt$N$r$p$');
    expect(message).toContain('operators.1: an operator needs a password, a token or both');
    expect(message).toContain('operators.2.name: operator "alice" is listed twice');
    expect(message).not.toContain(shortKey);
    expect(message).not.toContain('plaintext-password');
  });

  test('a YAML syntax error names the file and the line, not the content', () => {
    const file = write('syntax.yaml', 'encryption:\n  keys: { k1: "secret-ish value\n');
    expect(() => loadSecrets(file)).toThrow(new RegExp(`secrets file ${file} is not valid YAML at line \\d+`));
    expect(() => loadSecrets(file)).not.toThrow(/secret-ish/);
  });

  test('a seal key may not double as an encryption key', () => {
    const k = newKey();
    expect(() =>
      parseSecrets({ encryption: { active: 'k1', keys: { k1: k } }, seal: { active: 's1', keys: { s1: k } } }),
    ).toThrow(/seal.keys.s1: a seal key must not also be an encryption key/);
  });

  test('passwords (scrypt) and personal tokens (sha256) identify their operator', async () => {
    const { token, stored } = newToken();
    const secrets = secretsWith({
      operators: [
        { name: 'alice', password: await hashPassword('correct horse battery') },
        { name: 'carol', token: stored },
      ],
    });
    expect((await checkPassword(secrets, 'alice', 'correct horse battery'))?.name).toBe('alice');
    expect(await checkPassword(secrets, 'alice', 'correct horse batterY')).toBeUndefined();
    expect(await checkPassword(secrets, 'nobody', 'correct horse battery')).toBeUndefined();
    expect(await checkPassword(secrets, 'carol', 'anything')).toBeUndefined();
    expect(checkToken(secrets, token)?.name).toBe('carol');
    expect(checkToken(secrets, `${token}x`)).toBeUndefined();
    expect(stored).toMatch(/^sha256\$[0-9a-f]{64}$/);
    expect(stored).not.toContain(token);
  });
});
