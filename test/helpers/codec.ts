/**
 * The payload codec in tests (docs/codec.md), with the committed TEST-ONLY secrets file
 * test/fixtures/codec-secrets.yaml (its keys are public: it protects nothing).
 *
 *   testDataConverter()       test clients: what names a person is sealed as that person, then
 *                             everything is encrypted with the fixture's keys; decoded as the engine does
 *   startTestCodecServer()    the real codec server, in-process on an ephemeral port, fixture secrets
 *   credentialFile(name)      a fixture operator's personal token in a file of mode 0600 (the client
 *                             script's credential)
 *   decodedHistory(handle)    a history with its payloads decoded (fetchHistory gives them encrypted)
 */
import { chmodSync, copyFileSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { DataConverter, Payload, PayloadCodec } from '@temporalio/common';
import { CodecServerConfigSchema } from '../../src/codec-server/config';
import { createCodecServer, type CodecServer } from '../../src/codec-server/server';
import { decodeHistoryPayloads } from '../../src/lib/history';
import { testLogger } from './test-logs';
import {
  applySealVerdict,
  EncryptionCodec,
  engineCodecs,
  engineDataConverter,
  loadSecrets,
  seal,
  type CodecSecrets,
  type KeyRing,
} from '../../src/lib/codec';

const REPO = path.resolve(__dirname, '../..');

/** The TEST-ONLY secrets file: key ids test-k1 / test-s1, operators alice, bob, carol, dave, erin. */
export const CODEC_FIXTURE = path.join(REPO, 'test/fixtures/codec-secrets.yaml');
const TOKENS_DIR = path.join(REPO, 'test/fixtures/codec-tokens');

export const FIXTURE_OPERATORS = ['alice', 'bob', 'carol', 'dave', 'erin'] as const;
export type FixtureOperator = (typeof FIXTURE_OPERATORS)[number];

let secrets: CodecSecrets | undefined;

/** The fixture's keys and operators, loaded once. */
export function fixtureSecrets(): CodecSecrets {
  secrets ??= loadSecrets(CODEC_FIXTURE);
  return secrets;
}

/** The fixture operator's personal token (plaintext). */
export function tokenOf(name: FixtureOperator): string {
  return readFileSync(path.join(TOKENS_DIR, name), 'utf8').trim();
}

/**
 * The operator's token copied to a file of mode 0600 (git keeps no such mode), as `remediate login`
 * writes it: what REMEDIATE_CREDENTIALS names.
 */
export function credentialFile(name: FixtureOperator, dir = mkdtempSync(path.join(tmpdir(), 'remediate-cred-'))): string {
  const file = path.join(dir, name);
  copyFileSync(path.join(TOKENS_DIR, name), file);
  chmodSync(file, 0o600);
  return file;
}

const JSON_ENCODING = 'json/plain';

/** The person a JSON object payload names (`approver` or `by`), if any. */
function personNamed(payload: Payload): string | undefined {
  if (Buffer.from(payload.metadata?.encoding ?? new Uint8Array()).toString('utf8') !== JSON_ENCODING) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(payload.data ?? new Uint8Array()).toString('utf8'));
  } catch {
    return undefined;
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) return undefined;
  const { approver, by } = value as Record<string, unknown>;
  if (typeof approver === 'string' && approver) return approver;
  if (typeof by === 'string' && by) return by;
  return undefined;
}

/**
 * Plays the codec server for the person a decision names: tests about runbooks send
 * `{stepId, approver: 'alice'}` or `{by: 'bob'}` and the workflow receives it sealed by that person.
 * Decoding verifies seals as the worker does.
 */
class NamedPersonSealingCodec implements PayloadCodec {
  constructor(private readonly sealKeys: KeyRing) {}

  async encode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((p) => {
      const person = personNamed(p);
      return person ? seal(p, person, { via: 'token' }, this.sealKeys) : p;
    });
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((p) => applySealVerdict(p, this.sealKeys));
  }
}

/** The data converter of the tests' Temporal clients (see the file comment). */
export function testDataConverter(): DataConverter {
  const s = fixtureSecrets();
  if (!s.seal) throw new Error(`${CODEC_FIXTURE} has no seal keys`);
  return { payloadCodecs: [new NamedPersonSealingCodec(s.seal), new EncryptionCodec(s.encryption)] };
}

/** What the engine's worker uses in tests: the engine's own codec with the fixture's keys. */
export function fixtureEngineDataConverter(): DataConverter {
  return engineDataConverter(fixtureSecrets());
}

/**
 * The workflow's history with its payloads decoded as the engine decodes them (fetchHistory returns
 * them encrypted): what a check of what a history carries reads.
 */
export async function decodedHistory<H>(handle: { fetchHistory(): Promise<H> }): Promise<H> {
  return decodeHistoryPayloads(await handle.fetchHistory(), engineCodecs(fixtureSecrets()));
}

export interface TestCodecServer {
  url: string;
  server: CodecServer;
  close(): Promise<void>;
}

/** The real codec server with the fixture secrets, in this process, on an ephemeral port of 127.0.0.1. */
export async function startTestCodecServer(): Promise<TestCodecServer> {
  const config = CodecServerConfigSchema.parse({ listen: { host: '127.0.0.1', port: 0 }, secretsFile: CODEC_FIXTURE, logLevel: 'info' });
  // Its logs go where the secrets scan reads them (.stack/logs/test-codec-server.log).
  const server = createCodecServer({ config, secrets: fixtureSecrets(), logger: testLogger('codec-server') });
  await server.listen(0, '127.0.0.1');
  return { url: server.url, server, close: () => server.close() };
}
