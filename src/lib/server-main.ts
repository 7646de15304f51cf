/**
 * Start-up shared by the engine's HTTP server processes (the alert receiver, the codec server): their
 * common flags, a settings error as one line and exit status 1, and serving until SIGINT / SIGTERM.
 */
import { parseArgs } from 'node:util';
import type { Logger } from 'pino';
import { ConfigError } from '../config';

export interface ServerFlags {
  config?: string;
  host?: string;
  port?: string;
  check: boolean;
  help: boolean;
}

/** Parses `--config --host --port --check -h/--help` plus the process's own string flags (`extra`). */
export function parseServerFlags<K extends string>(
  extra: readonly K[],
  args?: string[],
): ServerFlags & Partial<Record<K, string>> {
  const { values } = parseArgs({
    options: {
      config: { type: 'string' },
      host: { type: 'string' },
      port: { type: 'string' },
      check: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
      ...Object.fromEntries(extra.map((k) => [k, { type: 'string' as const }])),
    },
    strict: true,
    ...(args ? { args } : {}),
  });
  return values as ServerFlags & Partial<Record<K, string>>;
}

/** Applies `--host` and `--port` to the listen settings; a port out of range is a ConfigError. */
export function applyListenFlags(
  listen: { host: string; port: number },
  flags: Pick<ServerFlags, 'host' | 'port'>,
): void {
  if (flags.host) listen.host = flags.host;
  if (flags.port) {
    const port = Number(flags.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535)
      throw new ConfigError(`--port must be 0..65535, got "${flags.port}"`);
    listen.port = port;
  }
}

/** Runs `load`; a ConfigError ends the process with `<name>: <message>` and exit status 1. */
export function settingsOrExit<T>(name: string, load: () => T): T {
  try {
    return load();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`${name}: ${err.message}`);
      process.exit(1);
    }
    throw err;
  }
}

/** Listens, then on SIGINT or SIGTERM closes the server, letting requests in flight finish. */
export async function serveUntilSignal(
  server: { listen(): Promise<unknown>; close(): Promise<void> },
  logger: Logger,
  name: string,
): Promise<void> {
  await server.listen();
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  logger.info({ signal }, 'shutting down: finishing requests in flight');
  await server.close();
  logger.info('%s stopped', name);
}
