/** Temporal connection from configuration, shared by the worker, the receiver and the scripts. */
import { accessSync, constants, existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';
import { NativeConnection } from '@temporalio/worker';
import { readSecret, type EngineConfig } from '../config';
import { engineDataConverter, loadSecrets, SecretsError, type CodecSecrets } from './codec';

/** Address, TLS (client certificate included) and API key of `temporal:`, for the client and the worker alike. */
export function connectionOptions(cfg: EngineConfig) {
  // An empty value (e.g. an unset variable passed through compose) means no key.
  const apiKey = readSecret(cfg.temporal.apiKey) || undefined;
  return { address: cfg.temporal.address, tls: tlsOptions(cfg), apiKey };
}

function tlsOptions(cfg: EngineConfig) {
  const tls = cfg.temporal.tls;
  if (tls === false) return undefined;
  if (tls === true) return true;
  const crt = readSecret(tls.clientCert);
  const key = readSecret(tls.clientKey);
  const ca = readSecret(tls.serverCaCert);
  return {
    ...(tls.serverName ? { serverNameOverride: tls.serverName } : {}),
    ...(ca ? { serverRootCACertificate: Buffer.from(ca) } : {}),
    ...(crt && key ? { clientCertPair: { crt: Buffer.from(crt), key: Buffer.from(key) } } : {}),
  };
}

/**
 * The codec secrets named by `codec.secretsFile` (docs/codec.md). A missing or unreadable file stops
 * the process with the path and the command that creates it; `warn` gets what does not (a file
 * others may read).
 */
export function loadCodecSecrets(
  cfg: EngineConfig,
  warn: (message: string) => void = (m) => console.warn(`warning: ${m}`),
): CodecSecrets {
  const file = path.resolve(cfg.codec.secretsFile);
  const create = `create it with \`npx tsx scripts/codec-secrets.ts init --file ${file}\` (scripts/stack.sh up does it for the local stack), or set codec.secretsFile`;
  if (!existsSync(file)) throw new SecretsError(`codec secrets file ${file} (codec.secretsFile) does not exist: ${create}`);
  try {
    if (!statSync(file).isFile()) throw new Error('not a file');
    accessSync(file, constants.R_OK);
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new SecretsError(`codec secrets file ${file} (codec.secretsFile) cannot be read (${why}): fix its owner or mode, or ${create}`);
  }
  const secrets = loadSecrets(file);
  for (const w of secrets.warnings) warn(w);
  return secrets;
}

/** The data converter of the engine's own processes: payloads encrypted, seals verified on decode. */
export function engineDataConverterOf(cfg: EngineConfig, warn?: (message: string) => void): DataConverter {
  return engineDataConverter(loadCodecSecrets(cfg, warn));
}

/**
 * A client for starting, signalling and querying incidents. Close its connection when done. Its
 * payloads go through `dataConverter`: by default the engine's codec with `codec.secretsFile`.
 */
export async function connectClient(cfg: EngineConfig, dataConverter?: DataConverter): Promise<Client> {
  const converter = dataConverter ?? engineDataConverterOf(cfg);
  const connection = await Connection.connect(connectionOptions(cfg));
  return new Client({ connection, namespace: cfg.temporal.namespace, dataConverter: converter });
}

/**
 * A plain connection to the frontend, for calls that carry no payload (worker deployments,
 * visibility): no codec needed, so no secrets file either. Close it when done.
 */
export async function connectService(cfg: EngineConfig): Promise<Connection> {
  return Connection.connect(connectionOptions(cfg));
}

/** The worker's connection (native, shared with the Rust core). */
export async function connectWorker(cfg: EngineConfig): Promise<NativeConnection> {
  return NativeConnection.connect(connectionOptions(cfg));
}
