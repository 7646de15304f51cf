/**
 * One worker, two Docker hosts: the stack's Podman (the engine-wide `docker.socketPath`) and a
 * second Podman service with its own storage, reached over TCP with TLS and a client certificate
 * (test/helpers/tls-docker-host.ts) at an address of its own: its TLS endpoint is a process in a
 * network namespace (test/helpers/netns.ts), on the namespace's end of a veth pair, as a Docker host
 * on another machine; nothing of it listens on the host's loopback. Each host runs a container of the
 * same name and the same compose labels; a target's container activities act on its own host only,
 * and a client the TLS host does not trust is refused with a message that names the host and holds
 * no secret.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import Docker from 'dockerode';
import pino from 'pino';
import { MockActivityEnvironment } from '@temporalio/testing';
import { TargetSchema, type EngineConfig } from '../../src/config';
import { createActivities, type Activities } from '../../src/activities';
import { DockerHosts } from '../../src/activities/containers/docker-hosts';
import { makeIssuedCertificate, makeSelfSignedCertificate } from '../../src/activities/tls/self-signed';
import { testConfig, waitUntil } from '../helpers/engine';
import { createNamespaces, deleteNamespaces, removeNamespaces, runsIn, type Netns } from '../helpers/netns';
import { containerEvents } from '../helpers/podman-events';
import { startTlsDockerHost, writePem, type TlsDockerHost } from '../helpers/tls-docker-host';

jest.setTimeout(120_000);

const suffix = randomBytes(3).toString('hex');
const PROJECT = `hosts-${suffix}`;
/** The same name on both hosts. */
const NAME = `${PROJECT}-api`;
// busybox's sleep as PID 1 ignores SIGTERM; the trap makes a restart quick.
const CMD = ['sh', '-c', 'trap "exit 0" TERM; while :; do sleep 1; done'];
/** Host B's namespace `re-dkb-<pid>`, the host end of its veth pair `redkb<pid>` (15 characters at most). */
const NS_PREFIX = 're-dkb-';
const LINK_PREFIX = 'redkb';

const config: EngineConfig = testConfig();
const hostA = new Docker({ socketPath: config.docker.socketPath });
let namespaces: Netns[] = [];
let hostB: TlsDockerHost;
let hosts: DockerHosts;
let acts: Activities;
let idA: string;
let idB: string;
const env = new MockActivityEnvironment();
const run = <A extends unknown[], R>(fn: (...a: A) => Promise<R>, ...args: A): Promise<R> => env.run(fn, ...args);

const target = (docker?: unknown) =>
  TargetSchema.parse({
    baseUrl: 'http://127.0.0.1:1',
    containers: { project: PROJECT },
    components: ['api'],
    ...(docker ? { docker } : {}),
  });

async function createOn(docker: Docker, image: string): Promise<string> {
  const c = await docker.createContainer({
    name: NAME,
    Image: image,
    Cmd: CMD,
    Labels: { 'com.docker.compose.project': PROJECT, 'com.docker.compose.service': 'api' },
    HostConfig: { NetworkMode: 'none' },
  });
  await c.start();
  return c.id;
}

const startedAt = async (docker: Docker, id: string): Promise<string> => (await docker.getContainer(id).inspect()).State.StartedAt;

/** The address of host B's endpoint, escaped for a RegExp. */
const hostBPattern = () => `${hostB.host.replace(/\./g, '\\.')}:${hostB.port}`;

/** Resolves once host B's terminator has reported more refused handshakes than `before`. */
const refusalReported = (before: number) =>
  waitUntil('host B to report the refused handshake', async () => hostB.refused.length > before, 5_000);

beforeAll(async () => {
  // What a run that crashed before its afterAll left behind.
  removeNamespaces(NS_PREFIX, LINK_PREFIX);
  namespaces = createNamespaces([`${NS_PREFIX}${process.pid}`], [`${LINK_PREFIX}${process.pid}`]);
  hostB = await startTlsDockerHost(namespaces[0] as Netns);
  const files = { ca: { file: hostB.files.ca }, cert: { file: hostB.files.cert }, key: { file: hostB.files.key } };
  // A client certificate from a CA host B does not trust, and a CA that did not sign host B's certificate.
  const otherCa = await makeSelfSignedCertificate({ subject: [['CN', 'another CA']], days: 1 });
  const stranger = await makeIssuedCertificate({ subject: [['CN', 'stranger']], days: 1, issuer: otherCa });
  const strangerFiles = {
    ca: { file: hostB.files.ca },
    cert: { file: writePem(hostB.dir, 'stranger.pem', stranger.cert) },
    key: { file: writePem(hostB.dir, 'stranger.key', stranger.key) },
  };
  const wrongCa = { ...files, ca: { file: writePem(hostB.dir, 'other-ca.pem', otherCa.cert) } };
  const tcp = { host: hostB.host, port: hostB.port };
  config.targets = {
    near: target(),
    far: target({ ...tcp, tls: files }),
    'far-too': target({ ...tcp, tls: files }),
    stranger: target({ ...tcp, tls: strangerFiles }),
    'wrong-ca': target({ ...tcp, tls: wrongCa }),
  };
  // As the worker builds them (src/workers/worker.ts).
  hosts = new DockerHosts(config, hostA).buildAll();
  acts = createActivities({ config, docker: hostA, dockerHosts: hosts, logger: pino({ level: 'silent' }) });
  idA = await createOn(hostA, 'localhost/remediation-base:1');
  idB = await createOn(hostB.direct, hostB.image);
});

afterAll(async () => {
  await hostA
    .getContainer(NAME)
    .remove({ force: true })
    .catch(() => undefined);
  await hostB?.stop();
  deleteNamespaces(namespaces);
});

test('host B sits at an address of its own: its endpoint is a process in its namespace, nothing of it on loopback', async () => {
  const ns = namespaces[0] as Netns;
  expect(net.isIPv4(hostB.host)).toBe(true);
  expect(hostB.host).not.toMatch(/^127\./);
  expect(hostB.host).toBe(ns.address);
  const docker = config.targets.far?.docker;
  expect(docker && 'host' in docker ? docker.host : undefined).toBe(ns.address);
  // The terminator runs in host B's namespace, not in this process's.
  const pid = hostB.terminator.pid as number;
  expect(runsIn(pid, ns)).toBe(true);
  expect(runsIn(process.pid, ns)).toBe(false);
  // Its certificate names that address (Node checks it against the host it connected to).
  const altNames = await new Promise<string | undefined>((resolve, reject) => {
    const credentials = { cert: readFileSync(hostB.files.cert), key: readFileSync(hostB.files.key) };
    const s = tls.connect({ host: hostB.host, port: hostB.port, ca: hostB.ca.cert, ...credentials }, () => {
      resolve(s.getPeerCertificate().subjectaltname);
      s.destroy();
    });
    s.on('error', reject);
  }).catch((err: Error) => `error: ${err.message}`);
  expect(altNames).toBe(`IP Address:${ns.address}`);
  // On the host's loopback, nothing answers on host B's port.
  const loopback = await new Promise<string>((resolve) => {
    const s = net.connect(hostB.port, '127.0.0.1', () => {
      s.destroy();
      resolve('connected');
    });
    s.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
  expect(loopback).toBe('ECONNREFUSED');
});

test('the two hosts really are two: one name, two containers', async () => {
  expect(idA).not.toBe(idB);
  await expect(hostA.getContainer(idB).inspect()).rejects.toMatchObject({ statusCode: 404 });
  await expect(hostB.direct.getContainer(idA).inspect()).rejects.toMatchObject({ statusCode: 404 });
});

test('one client per host: targets on host B share one, the others use the engine-wide socket', () => {
  expect(hosts.forTarget('near')).toBe(hostA);
  expect(hosts.forTarget('far')).toBe(hosts.forTarget('far-too'));
  expect(hosts.forTarget('far')).not.toBe(hostA);
  // The engine-wide client, host B's, and the two refused ones (other credentials).
  expect(hosts.size).toBe(4);
});

test("each target's container activities find its own host's container", async () => {
  const accepted = hostB.accepted;
  const near = await run(acts.containerState, { target: 'near', component: 'api' });
  const far = await run(acts.containerState, { target: 'far', component: 'api' });
  expect(near).toMatchObject({ id: idA, name: NAME, image: 'localhost/remediation-base:1', running: true });
  expect(far).toMatchObject({ id: idB, name: NAME, image: hostB.image, running: true });
  // Host B was reached through the TLS terminator, with the client certificate, over the veth pair:
  // the connections came from the host's end of it.
  await waitUntil('host B to report the accepted connection', async () => hostB.accepted > accepted, 5_000);
  expect(new Set(hostB.peers.slice(accepted))).toEqual(new Set([(namespaces[0] as Netns).hostAddress]));
});

test('restartContainer for the target on host B restarts host B’s container and leaves host A’s alone', async () => {
  const beforeA = await startedAt(hostA, idA);
  const beforeB = await startedAt(hostB.direct, idB);
  const since = Date.now();
  await new Promise((r) => setTimeout(r, 1100)); // StartedAt has second-level resolution in places

  const r = await run(acts.restartContainer, { target: 'far', component: 'api', notBefore: new Date().toISOString(), timeoutSeconds: 2 });
  expect(r.performed).toBe(true);

  const afterB = await startedAt(hostB.direct, idB);
  expect(Date.parse(afterB)).toBeGreaterThan(Date.parse(beforeB));
  expect(await startedAt(hostA, idA)).toBe(beforeA);
  // Each Podman's own event log: host B restarted the container, host A started nothing of that name.
  expect(hostB.events(NAME, 'restart', since).length + hostB.events(NAME, 'start', since).length).toBeGreaterThan(0);
  expect(containerEvents(NAME, 'start', since)).toEqual([]);
  expect(containerEvents(NAME, 'restart', since)).toEqual([]);

  // And the other way round: the target on host A restarts host A's container only.
  const sinceA = Date.now();
  await new Promise((r) => setTimeout(r, 1100));
  await run(acts.restartContainer, { target: 'near', component: 'api', notBefore: new Date().toISOString(), timeoutSeconds: 2 });
  expect(Date.parse(await startedAt(hostA, idA))).toBeGreaterThan(Date.parse(beforeA));
  expect(await startedAt(hostB.direct, idB)).toBe(afterB);
  expect(hostB.events(NAME, 'restart', sinceA).length + hostB.events(NAME, 'start', sinceA).length).toBe(0);
});

test('host B refuses a TLS client without a certificate', async () => {
  const refused = hostB.refused.length;
  const outcome = await new Promise<string>((resolve) => {
    const s = tls.connect({ host: hostB.host, port: hostB.port, ca: hostB.ca.cert }, () => {
      s.write('GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n');
    });
    let answer = '';
    s.on('data', (d: Buffer) => (answer += d.toString()));
    s.on('error', (err) => resolve(`error: ${err.message}`));
    s.on('close', () => resolve(answer ? `answered: ${answer}` : 'closed'));
  });
  expect(outcome).toMatch(/^error: .*certificate required/i);
  await refusalReported(refused);
  expect(hostB.refused.slice(refused).join('\n')).toMatch(/did not return a certificate/i);
});

test('a client certificate from another CA is refused, and the activity says which host, without secrets', async () => {
  const refused = hostB.refused.length;
  const err = await run(acts.containerState, { target: 'stranger', component: 'api' }).then(
    () => undefined,
    (e: Error) => e,
  );
  // An Error of Node's own realm (jest's instanceof would not see it as one).
  expect(err?.message).toEqual(expect.any(String));
  expect(err!.message).toMatch(new RegExp(`^Docker API tcp://${hostBPattern()} \\(TLS\\) cannot be reached: .+ \\(TLS: the daemon accepts client certificates signed by the CA it trusts`));
  expect(err!.message).not.toMatch(/BEGIN|PRIVATE|MII/);
  // Node's server reports this refusal as the client hanging up, so only its count is checked.
  await refusalReported(refused);
  // Nothing reached host B's container.
  expect((await hostB.direct.getContainer(idB).inspect()).State.Running).toBe(true);
});

test('a host whose certificate tls.ca did not sign is refused by the engine', async () => {
  const err = await run(acts.containerState, { target: 'wrong-ca', component: 'api' }).then(
    () => undefined,
    (e: Error) => e,
  );
  // An Error of Node's own realm (jest's instanceof would not see it as one).
  expect(err?.message).toEqual(expect.any(String));
  expect(err!.message).toMatch(new RegExp(`^Docker API tcp://${hostBPattern()} \\(TLS\\) cannot be reached: .*(certificate|verify)`));
  expect(err!.message).not.toMatch(/BEGIN|PRIVATE|MII/);
});
