/**
 * A second Docker host for tests: its own `podman system service` (its own storage, run and tmp
 * directories, file locks, and event log, so its containers are not the stack's), reached over TCP
 * through a TLS terminator that demands a client certificate signed by a CA made here. Podman 4.3's
 * service has no TLS options of its own; the terminator (test/helpers/tls-terminator.ts, a process of
 * its own) pipes each verified connection to the service's unix socket, so what the engine talks to is
 * the real Docker API over TCP with TLS.
 *
 * The terminator runs in a network namespace given by the test (test/helpers/netns.ts) and listens on
 * that namespace's address only, the one its server certificate names: as a Docker host on another
 * machine, nothing of it is on the host's loopback. The Podman service stays in the host's namespace
 * (its containers run without a network); the terminator reaches its socket by path.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync, copyFileSync } from 'node:fs';
import path from 'node:path';
import Docker from 'dockerode';
import { makeIssuedCertificate, makeSelfSignedCertificate, type SelfSigned } from '../../src/activities/tls/self-signed';
import { spawnIn, type Netns } from './netns';
import type { TerminatorEvent } from './tls-terminator';

/** The port the terminator listens on in its namespace: Docker's TLS port, as a remote daemon's. */
export const TLS_DOCKER_PORT = 2376;
const REPO = path.resolve(__dirname, '../..');
const TERMINATOR = path.join(__dirname, 'tls-terminator.ts');

export interface TlsDockerHost {
  dir: string;
  /** The namespace's address, where the terminator listens (and the name its certificate holds). */
  host: string;
  port: number;
  /** The terminator's process (its pid, for `runsIn`). */
  terminator: ChildProcess;
  /** The PEM files the engine's settings name: the CA, and a client certificate and key it signed. */
  files: { ca: string; cert: string; key: string };
  ca: SelfSigned;
  /** A client of the service's own socket, for the test to look behind the engine's back. */
  direct: Docker;
  /** The base image imported into this host's storage. */
  image: string;
  /**
   * TLS connections the terminator accepted, and handshakes it refused (their errors), as its lines
   * have arrived: a test that counts them waits for the line (`eventually`), which comes on another pipe
   * than the answer the client got.
   */
  accepted: number;
  /** The peer address of each connection it accepted, in order. */
  peers: string[];
  refused: string[];
  /** Events of this host's Podman (its event log), as in test/helpers/podman-events.ts. */
  events(name: string, status: string, since: number): number[];
  stop(): Promise<void>;
}

export function writePem(dir: string, name: string, text: string): string {
  const f = path.join(dir, name);
  writeFileSync(f, text);
  chmodSync(f, 0o600);
  return f;
}

async function waitFor(what: string, timeoutMs: number, probe: () => Promise<boolean>): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await probe().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${what} did not come up in ${timeoutMs} ms`);
}

/** Starts the second host, its TLS endpoint in `ns`; call stop() in afterAll, before deleting `ns`. */
export async function startTlsDockerHost(ns: Netns): Promise<TlsDockerHost> {
  // Short: a unix socket path must fit in 108 bytes.
  const dir = mkdtempSync('/tmp/dockerb-');
  for (const d of ['storage', 'run', 'tmp', 'tls', 'rootfs/bin', 'rootfs/tmp', 'rootfs/proc', 'rootfs/sys', 'rootfs/dev']) mkdirSync(path.join(dir, d), { recursive: true });
  const conf = path.join(dir, 'containers.conf');
  const storageConf = path.join(dir, 'storage.conf');
  const eventsLog = path.join(dir, 'events.log');
  // lock_type "file" keeps its locks under its own tmp_dir: the default SHM locks are shared by every
  // rootful Podman on the machine, and a fresh one frees them all when it starts.
  writeFileSync(
    conf,
    [
      '[containers]',
      'default_ulimits = []',
      '[engine]',
      'cgroup_manager = "cgroupfs"',
      'runtime = "runc"',
      'lock_type = "file"',
      `tmp_dir = "${dir}/tmp"`,
      'events_logger = "file"',
      `events_logfile_path = "${eventsLog}"`,
      '',
    ].join('\n'),
  );
  writeFileSync(storageConf, ['[storage]', 'driver = "vfs"', `graphroot = "${dir}/storage"`, `runroot = "${dir}/run"`, ''].join('\n'));
  const socket = path.join(dir, 'podman.sock');
  const env = { ...process.env, CONTAINERS_CONF: conf, CONTAINERS_STORAGE_CONF: storageConf };
  const service: ChildProcess = spawn('podman', ['system', 'service', '--time=0', `unix://${socket}`], {
    env,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let serviceLog = '';
  service.stderr?.on('data', (d: Buffer) => (serviceLog = (serviceLog + d.toString()).slice(-4000)));
  const direct = new Docker({ socketPath: socket });
  try {
    await waitFor(`podman system service (${serviceLog})`, 30_000, async () => existsSync(socket) && Boolean(await direct.ping()));
  } catch (err) {
    service.kill('SIGTERM');
    throw err;
  }

  // A static busybox image in this host's own storage (the stack's images are not here).
  const rootfs = path.join(dir, 'rootfs');
  copyFileSync('/bin/busybox', path.join(rootfs, 'bin/busybox'));
  chmodSync(path.join(rootfs, 'bin/busybox'), 0o755);
  for (const c of ['sh', 'sleep', 'cat', 'echo']) symlinkSync('busybox', path.join(rootfs, 'bin', c));
  const tar = path.join(dir, 'base.tar');
  execFileSync('tar', ['-C', rootfs, '-cf', tar, '.']);
  const image = 'localhost/host-b-base:1';
  execFileSync('podman', ['--url', `unix://${socket}`, 'import', tar, image], { stdio: 'pipe' });

  const ca = await makeSelfSignedCertificate({ subject: [['CN', 'docker host b CA']], days: 1 });
  const server = await makeIssuedCertificate({
    subject: [['CN', 'docker host b']],
    altNames: `IP:${ns.address}`,
    days: 1,
    issuer: ca,
  });
  const client = await makeIssuedCertificate({ subject: [['CN', 'remediation engine']], days: 1, issuer: ca });
  const tlsDir = path.join(dir, 'tls');
  const files = {
    ca: writePem(tlsDir, 'ca.pem', ca.cert),
    cert: writePem(tlsDir, 'cert.pem', client.cert),
    key: writePem(tlsDir, 'key.pem', client.key),
  };
  const serverFiles = {
    cert: writePem(tlsDir, 'server.pem', server.cert),
    key: writePem(tlsDir, 'server.key', server.key),
  };

  const state = { peers: [] as string[], refused: [] as string[], log: '' };
  // stdin a pipe it watches: when this process dies, the terminator's stdin closes and it exits.
  const terminator = spawnIn(
    ns,
    process.execPath,
    [
      '--import',
      'tsx',
      TERMINATOR,
      ...['--listen', ns.address, '--port', String(TLS_DOCKER_PORT), '--socket', socket],
      ...['--cert', serverFiles.cert, '--key', serverFiles.key, '--ca', files.ca],
    ],
    { cwd: REPO, stdio: ['pipe', 'pipe', 'pipe'] },
  );
  let onListening: (port: number) => void = () => undefined;
  let partial = '';
  terminator.stdout?.on('data', (d: Buffer) => {
    const lines = (partial + d.toString()).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines.filter(Boolean)) {
      const e = JSON.parse(line) as TerminatorEvent;
      if (e.event === 'listening') onListening(e.port);
      else if (e.event === 'accepted') state.peers.push(e.peer);
      else state.refused.push(e.error);
    }
  });
  terminator.stderr?.on('data', (d: Buffer) => (state.log = (state.log + d.toString()).slice(-4000)));
  const stopService = async () => {
    const exited = new Promise<void>((resolve) =>
      service.exitCode !== null ? resolve() : service.once('exit', () => resolve()),
    );
    service.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
    if (service.exitCode === null) service.kill('SIGKILL');
  };
  const stopTerminator = async () => {
    if (terminator.exitCode !== null || terminator.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => terminator.once('exit', () => resolve()));
    terminator.kill('SIGTERM');
    const timer = setTimeout(() => terminator.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  };
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`the TLS terminator in ${ns.name} did not listen in 30 s: ${state.log}`)),
        30_000,
      );
      onListening = () => {
        clearTimeout(timer);
        resolve();
      };
      terminator.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`the TLS terminator in ${ns.name} exited (${code}): ${state.log}`));
      });
    });
  } catch (err) {
    await stopTerminator();
    await stopService();
    throw err;
  }

  return {
    dir,
    host: ns.address,
    port: TLS_DOCKER_PORT,
    terminator,
    files,
    ca,
    direct,
    image,
    get accepted() {
      return state.peers.length;
    },
    peers: state.peers,
    refused: state.refused,
    events(name, status, since) {
      if (!existsSync(eventsLog)) return [];
      return readFileSync(eventsLog, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { Name: string; Status: string; Time: string })
        .filter((e) => e.Name === name && e.Status === status && Date.parse(e.Time) >= since)
        .map((e) => Date.parse(e.Time));
    },
    async stop() {
      // Its containers first: their processes would outlive the service.
      const left = await direct.listContainers({ all: true }).catch(() => []);
      for (const c of left) await direct.getContainer(c.Id).remove({ force: true }).catch(() => undefined);
      await stopTerminator();
      await stopService();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
