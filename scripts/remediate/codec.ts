/**
 * The codec server, as the client script meets it. The script holds no key: the codec server seals
 * what it sends with the credential's owner and decrypts what it reads (docs/codec.md).
 */
import { CodecServerError, RemoteCodec, whoami, type RemoteCodecOptions } from '../../src/lib/codec/remote';
import type { EngineConfig } from '../../src/config';
import type { Identity, Session } from './command';
import { credentialsFile, readCredential } from './credential';
import { Failure } from './errors';

/** A codec server error as the engineer should read it. */
export function codecFailure(err: CodecServerError, server: string, credential?: string): Failure {
  if (err.status === 401 || err.status === 403)
    return new Failure(
      `the codec server at ${server} does not accept ${credential ? `the credential in ${credential}` : 'this token'} ` +
        `(${err.status}): sign in again with \`remediate login\``,
    );
  if (err.status === undefined)
    return new Failure(
      `${err.message} (codec.serverUrl in the engine config; scripts/stack.sh up starts the local one)`,
    );
  return new Failure(err.message);
}

/** Runs `fn`, turning codec server errors into what the engineer should read. */
export async function withCodecErrors<T>(fn: () => Promise<T>, server: string, credential?: string): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof CodecServerError) throw codecFailure(err, server, credential);
    throw err;
  }
}

/** Reads the credential and asks the codec server whose it is. */
async function signInWith(cfg: EngineConfig): Promise<{ me: Identity; codec: RemoteCodecOptions }> {
  const credential = credentialsFile();
  const codec: RemoteCodecOptions = {
    url: cfg.codec.serverUrl,
    token: readCredential(credential),
    namespace: cfg.temporal.namespace,
  };
  const who = await withCodecErrors(() => whoami(codec), codec.url, credential);
  return { me: { cfg, name: who.name, via: who.via, codecUrl: codec.url, credential }, codec };
}

/** Reads the credential and asks the codec server whose it is. */
export async function signIn(cfg: EngineConfig): Promise<Identity> {
  return (await signInWith(cfg)).me;
}

/** Signs in, connects to Temporal through the codec server, runs `fn`, and closes the connection. */
export async function withSession<T>(cfg: EngineConfig, fn: (s: Session) => Promise<T>): Promise<T> {
  const { me, codec } = await signInWith(cfg);
  const codecs = [new RemoteCodec(codec)];
  // Loaded here, not at start: it brings the Temporal SDK (the worker's native bridge among it), which
  // help, completion and usage errors do not need.
  const { connectClient } = await import('../../src/lib/temporal');
  const client = await connectClient(cfg, { payloadCodecs: codecs });
  try {
    return await withCodecErrors(() => fn({ ...me, client, codecs }), me.codecUrl, me.credential);
  } finally {
    await client.connection.close();
  }
}
