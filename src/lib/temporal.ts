/** Temporal connection from configuration, shared by the worker, the receiver and the scripts. */
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { readSecret, type EngineConfig } from '../config';

function connectionOptions(cfg: EngineConfig) {
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

/** A client for starting, signalling and querying incidents. Close its connection when done. */
export async function connectClient(cfg: EngineConfig): Promise<Client> {
  const connection = await Connection.connect(connectionOptions(cfg));
  return new Client({ connection, namespace: cfg.temporal.namespace });
}

/** The worker's connection (native, shared with the Rust core). */
export async function connectWorker(cfg: EngineConfig): Promise<NativeConnection> {
  return NativeConnection.connect(connectionOptions(cfg));
}
