/**
 * The Docker APIs one worker manages containers through: the engine-wide `docker` socket, and each
 * target's own `targets.<name>.docker` (a unix socket, or TCP with TLS and a client certificate).
 * One client per distinct endpoint, built once; a target's container activities only ever get the
 * client of its own endpoint, so an action for one target cannot reach another host's containers.
 */
import { createHash, createPrivateKey, X509Certificate } from 'node:crypto';
import Docker from 'dockerode';
import { ConfigError, readSecret, type DockerEndpoint, type EngineConfig, type SecretRef } from '../../config';

/** How an endpoint is named in messages: its address, never its credentials. */
export function describeEndpoint(e: DockerEndpoint): string {
  return 'socketPath' in e ? `unix://${e.socketPath}` : `tcp://${e.host.includes(':') ? `[${e.host}]` : e.host}:${e.port} (TLS)`;
}

/** Two settings that name the same API with the same credentials share a client. */
function endpointKey(e: DockerEndpoint): string {
  if ('socketPath' in e) return `unix:${e.socketPath}`;
  // The references, not their values; hashed so that a `value:` reference never sits in a map key.
  const refs = createHash('sha256').update(JSON.stringify([e.tls.ca, e.tls.cert, e.tls.key])).digest('hex');
  return `tcp:${e.host}:${e.port}:${refs}`;
}

/** Reads one PEM of `tls`, naming the setting (never the content) when it is missing or malformed. */
function readPem(ref: SecretRef, where: string): string {
  let pem: string | undefined;
  try {
    pem = readSecret(ref);
  } catch (err) {
    throw new ConfigError(`${where}: ${(err as Error).message}`);
  }
  if (!pem) throw new ConfigError(`${where}: the secret reference is empty (its env variable unset?)`);
  return pem;
}

interface TlsMaterial {
  ca: string;
  cert: string;
  key: string;
}

/** The CA, certificate and key of a TCP endpoint, checked: PEM of the right kind, the key matching the certificate. */
export function readDockerTls(tls: { ca: SecretRef; cert: SecretRef; key: SecretRef }, where: string): TlsMaterial {
  const ca = readPem(tls.ca, `${where}.tls.ca`);
  const cert = readPem(tls.cert, `${where}.tls.cert`);
  const key = readPem(tls.key, `${where}.tls.key`);
  const x509 = (pem: string, at: string) => {
    try {
      return new X509Certificate(pem);
    } catch {
      throw new ConfigError(`${at}: not a PEM certificate`);
    }
  };
  x509(ca, `${where}.tls.ca`);
  const certificate = x509(cert, `${where}.tls.cert`);
  let privateKey;
  try {
    privateKey = createPrivateKey(key);
  } catch {
    throw new ConfigError(`${where}.tls.key: not a PEM private key (an unencrypted one)`);
  }
  if (!certificate.checkPrivateKey(privateKey)) {
    throw new ConfigError(`${where}.tls.key: does not belong to the certificate of ${where}.tls.cert`);
  }
  return { ca, cert, key };
}

const isError = (err: unknown): err is Error =>
  typeof err === 'object' && err !== null && typeof (err as { message?: unknown }).message === 'string';

/** Errors of the connection itself (refused, reset, TLS), as opposed to the API's answers. */
function isConnectionError(err: NodeJS.ErrnoException & { statusCode?: number }): boolean {
  if (err.statusCode !== undefined) return false;
  return (
    /^(ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN|ENOENT|EACCES|EPROTO|ERR_SSL_|ERR_TLS_|CERT_|UNABLE_TO_|DEPTH_ZERO|SELF_SIGNED)/.test(
      err.code ?? '',
    ) || /socket hang up|certificate|handshake|alert/i.test(err.message)
  );
}

const TLS_FAILURE = /^(EPROTO|ECONNRESET|ERR_SSL_|ERR_TLS_|CERT_|UNABLE_TO_|DEPTH_ZERO|SELF_SIGNED)/;

/**
 * Makes a client's connection failures say which Docker API failed: a TLS refusal otherwise reads
 * as a bare `socket hang up`. The message holds the address, never the certificate or key.
 */
function nameFailures(docker: Docker, endpoint: DockerEndpoint): void {
  const modem = docker.modem as unknown as { dial(options: unknown, callback: (err: unknown, data: unknown) => void): unknown };
  const dial = modem.dial.bind(modem);
  modem.dial = (options, callback) =>
    dial(options, (err, data) => {
      // Not `instanceof Error`: errors of Node's own sockets may come from another realm (a VM context).
      if (isError(err) && isConnectionError(err)) {
        const code = (err as NodeJS.ErrnoException).code ?? '';
        const tls =
          'host' in endpoint && (TLS_FAILURE.test(code) || /socket hang up|certificate|handshake|alert/i.test(err.message))
            ? ' (TLS: the daemon accepts client certificates signed by the CA it trusts; the engine accepts the daemon\'s if tls.ca signed it)'
            : '';
        err.message = `Docker API ${describeEndpoint(endpoint)} cannot be reached: ${err.message}${tls}`;
      }
      callback(err, data);
    });
}

/** A client for one endpoint. TCP always verifies the daemon's certificate against `tls.ca`. */
export function dockerClient(endpoint: DockerEndpoint, setting: string): Docker {
  if ('socketPath' in endpoint) {
    const docker = new Docker({ socketPath: endpoint.socketPath });
    nameFailures(docker, endpoint);
    return docker;
  }
  const tls = readDockerTls(endpoint.tls, setting);
  const docker = new Docker({ protocol: 'https', host: endpoint.host, port: endpoint.port, ...tls });
  nameFailures(docker, endpoint);
  return docker;
}

export class DockerHosts {
  private readonly clients = new Map<string, Docker>();

  /**
   * @param defaultClient the client of the engine-wide `docker` socket (injected, so tests and the
   * worker share one); targets without a `docker` setting of their own use it.
   */
  constructor(
    private readonly config: EngineConfig,
    private readonly defaultClient: Docker,
  ) {
    this.clients.set(endpointKey({ socketPath: config.docker.socketPath }), defaultClient);
  }

  /**
   * Builds the client of every target now, so an unreadable or mismatched certificate stops the
   * worker at start with the setting's path, not an incident half-way.
   */
  buildAll(): this {
    for (const name of Object.keys(this.config.targets)) this.forTarget(name);
    return this;
  }

  /** The client of the target's Docker API: its own `docker` setting, else the engine-wide one. */
  forTarget(target: string): Docker {
    const t = Object.prototype.hasOwnProperty.call(this.config.targets, target) ? this.config.targets[target] : undefined;
    const endpoint = t?.docker;
    if (!endpoint) return this.defaultClient;
    const key = endpointKey(endpoint);
    let client = this.clients.get(key);
    if (!client) {
      client = dockerClient(endpoint, `targets.${target}.docker`);
      this.clients.set(key, client);
    }
    return client;
  }

  /** How many distinct clients exist (the engine-wide one included). */
  get size(): number {
    return this.clients.size;
  }
}
