/** Temporal connection from configuration, shared by the worker, the receiver and the scripts. */
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { readSecret, type EngineConfig } from '../config';

function connectionOptions(cfg: EngineConfig) {
  const apiKey = readSecret(cfg.temporal.apiKey);
  return { address: cfg.temporal.address, tls: cfg.temporal.tls || undefined, apiKey };
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
