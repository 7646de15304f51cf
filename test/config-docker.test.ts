/**
 * `targets.<name>.docker`: a target's own Docker API, a unix socket or TCP with TLS and a client
 * certificate. Plain TCP, half-given settings and unusable certificates are refused with the
 * setting's path, never its content.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';
import { stringify } from 'yaml';
import { ConfigError, loadConfig, type EngineConfig } from '../src/config';
import { DockerHosts, describeEndpoint } from '../src/activities/containers/docker-hosts';
import { makeIssuedCertificate, makeSelfSignedCertificate, type SelfSigned } from '../src/activities/tls/self-signed';

const target = (docker?: unknown) => ({
  baseUrl: 'http://127.0.0.1:58000',
  containers: { project: 'alfred' },
  components: ['api'],
  ...(docker === undefined ? {} : { docker }),
});

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'config-docker-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Loads a configuration with the given targets, as the worker does. */
function load(targets: Record<string, unknown>): EngineConfig {
  const file = path.join(dir, `engine-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(
    file,
    stringify({
      docker: { socketPath: '/run/docker.sock' },
      policy: { approvers: ['alice'], tiers: [{ name: 't1', waitMs: 1000 }] },
      targets,
    }),
  );
  return loadConfig(file, {});
}

function loadError(targets: Record<string, unknown>): string {
  try {
    load(targets);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('expected a ConfigError');
}

const tls = { ca: { file: '/etc/docker-b/ca.pem' }, cert: { file: '/etc/docker-b/cert.pem' }, key: { file: '/etc/docker-b/key.pem' } };

describe('the setting', () => {
  test('without it a target uses the engine-wide socket, as configurations without it always did', () => {
    const cfg = load({ a: target() });
    expect(cfg.targets.a?.docker).toBeUndefined();
    expect(cfg.docker).toEqual({ socketPath: '/run/docker.sock' });
    const fallback = new Docker({ socketPath: '/run/docker.sock' });
    expect(new DockerHosts(cfg, fallback).forTarget('a')).toBe(fallback);
  });

  test('takes a unix socket, or TCP with TLS (port 2376 by default)', () => {
    const cfg = load({
      a: target({ socketPath: '/run/docker-a.sock' }),
      b: target({ host: 'docker-b.internal', tls }),
      c: target({ host: '10.0.0.7', port: 12376, tls }),
    });
    expect(cfg.targets.a?.docker).toEqual({ socketPath: '/run/docker-a.sock' });
    expect(cfg.targets.b?.docker).toEqual({ host: 'docker-b.internal', port: 2376, tls });
    expect(cfg.targets.c?.docker).toMatchObject({ host: '10.0.0.7', port: 12376 });
    expect(describeEndpoint(cfg.targets.b!.docker!)).toBe('tcp://docker-b.internal:2376 (TLS)');
  });

  test.each([
    ['TCP without TLS', { host: '10.0.0.7', port: 2375 }, /targets\.b\.docker\.tls: required with host: the Docker API over TCP without TLS is refused/],
    ['TCP without TLS on loopback', { host: '127.0.0.1', port: 2375 }, /targets\.b\.docker\.tls: required with host/],
    ['both a socket and a host', { socketPath: '/run/d.sock', host: 'h', tls }, /targets\.b\.docker\.host: give socketPath \(a unix socket\) or host \(TCP with TLS\), not both/],
    ['neither', {}, /targets\.b\.docker: give socketPath \(a unix socket\) or host, port and tls/],
    ['a URL as host', { host: 'tcp://h:2376', tls }, /targets\.b\.docker\.host: a host name or IP address, without scheme or port/],
    ['TLS with a socket', { socketPath: '/run/d.sock', tls }, /targets\.b\.docker\.tls: tls goes with host, not with socketPath/],
    ['half a TLS setting', { host: 'h', tls: { ca: tls.ca, cert: tls.cert } }, /targets\.b\.docker\.tls\.key: Required/],
    ['a port out of range', { host: 'h', port: 70000, tls }, /targets\.b\.docker\.port: Number must be less than or equal to 65535/],
    ['an unknown key', { host: 'h', tls, insecure: true }, /targets\.b\.docker: Unrecognized key\(s\) in object: 'insecure'/],
  ])('refuses %s, naming the setting', (_what, docker, message) => {
    expect(loadError({ a: target(), b: target(docker) })).toMatch(message);
  });
});

describe('certificates, read and checked when the worker builds its clients', () => {
  let ca: SelfSigned;
  let client: SelfSigned;
  let other: SelfSigned;
  const file = (name: string, text: string) => {
    const f = path.join(dir, name);
    writeFileSync(f, text, { mode: 0o600 });
    return { file: f };
  };

  beforeAll(async () => {
    ca = await makeSelfSignedCertificate({ subject: [['CN', 'test docker CA']], days: 1 });
    client = await makeIssuedCertificate({ subject: [['CN', 'engine']], days: 1, issuer: ca });
    other = await makeSelfSignedCertificate({ subject: [['CN', 'other']], days: 1 });
  });

  const hostsFor = (t: Record<string, unknown>) => new DockerHosts(load({ a: target(), ...t }), new Docker({ socketPath: '/run/docker.sock' }));
  const buildError = (t: Record<string, unknown>): string => {
    try {
      hostsFor(t).buildAll();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      return (err as Error).message;
    }
    throw new Error('expected a ConfigError');
  };

  test('one client per distinct host: targets on the same host share it', () => {
    const good = { ca: file('ca.pem', ca.cert), cert: file('cert.pem', client.cert), key: file('key.pem', client.key) };
    const hosts = hostsFor({
      b: target({ host: '127.0.0.1', port: 12376, tls: good }),
      c: target({ host: '127.0.0.1', port: 12376, tls: good }),
      d: target({ host: '127.0.0.1', port: 12377, tls: good }),
      e: target({ socketPath: '/run/docker.sock' }),
    }).buildAll();
    expect(hosts.forTarget('b')).toBe(hosts.forTarget('c'));
    expect(hosts.forTarget('d')).not.toBe(hosts.forTarget('b'));
    // The engine-wide socket named again is the engine-wide client.
    expect(hosts.forTarget('e')).toBe(hosts.forTarget('a'));
    expect(hosts.size).toBe(3);
  });

  test.each<[string, () => Record<string, unknown>, RegExp]>([
    ['a missing file', () => ({ ca: { file: path.join(dir, 'nope.pem') }, cert: file('c1.pem', client.cert), key: file('k1.pem', client.key) }), /^targets\.b\.docker\.tls\.ca: secret file not found: .*nope\.pem$/],
    ['an unset env variable', () => ({ ca: { env: 'NO_SUCH_DOCKER_CA' }, cert: file('c2.pem', client.cert), key: file('k2.pem', client.key) }), /^targets\.b\.docker\.tls\.ca: the secret reference is empty/],
    ['a key that is not PEM', () => ({ ca: file('ca3.pem', ca.cert), cert: file('c3.pem', client.cert), key: file('k3.pem', 'not a key') }), /^targets\.b\.docker\.tls\.key: not a PEM private key/],
    ['a CA that is not a certificate', () => ({ ca: file('ca4.pem', client.key), cert: file('c4.pem', client.cert), key: file('k4.pem', client.key) }), /^targets\.b\.docker\.tls\.ca: not a PEM certificate$/],
    ['a key of another certificate', () => ({ ca: file('ca5.pem', ca.cert), cert: file('c5.pem', client.cert), key: file('k5.pem', other.key) }), /^targets\.b\.docker\.tls\.key: does not belong to the certificate of targets\.b\.docker\.tls\.cert$/],
  ])('refuses %s at start, naming the setting and not the content', (_what, refs, message) => {
    const msg = buildError({ b: target({ host: '127.0.0.1', port: 12376, tls: refs() }) });
    expect(msg).toMatch(message);
    expect(msg).not.toMatch(/BEGIN|PRIVATE|MII/);
  });
});
