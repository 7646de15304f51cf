/**
 * Network namespaces for tests that run engine processes on addresses of their own, as production
 * runs several receivers behind a load balancer, each on its own host. Needs root (`ip netns`).
 *
 * Each namespace gets one veth pair to the host, on a /24 of its own in 10.231.0.0/16 (a private
 * range picked to be unlikely to clash; a /24 the host already uses is skipped): the host end is
 * `<subnet>.1`, the namespace end `<subnet>.2`, and the namespace has no other route. The host
 * reaches a process in the namespace at its address, and the process reaches the host at the host
 * end, nothing else.
 *
 * Services of the host that listen on 127.0.0.1 only (the cluster profile's Temporal frontend) are
 * out of a namespace's reach: `startTcpRelay` puts a plain TCP pass-through on the host end of the
 * pair, in the test process. It does not look into what it carries: TLS stays end to end between the
 * process in the namespace and the service, so a client keeps its certificate checks by naming the
 * server (the engine config's `temporal.tls.serverName`) rather than trusting the relay's address.
 *
 * Names carry a prefix of the test's own; `removeNamespaces(prefix)` deletes what a crashed run left
 * (its namespaces, and the host ends of their veth pairs, which the kernel removes with a namespace
 * once nothing runs in it).
 */
import { spawn, execFileSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { statSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';

export interface Netns {
  /** The namespace's name (`ip netns exec <name> ...`). */
  name: string;
  /** The namespace's end of the veth pair: where its processes listen. */
  address: string;
  /** The host's end: what the namespace's processes reach (a relay listens there). */
  hostAddress: string;
  /** The host's end of the veth pair, by name. */
  hostLink: string;
}

const SUBNETS = '10.231';

function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** The namespaces whose name starts with `prefix`. */
export function namespacesNamed(prefix: string): string[] {
  return ip('netns', 'list')
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter((n) => n.startsWith(prefix));
}

/**
 * Deletes the namespaces named `prefix…` and the host links named `linkPrefix…` (a run that crashed
 * before its cleanup leaves them behind). Links go first: deleting one end of a veth pair deletes both.
 */
export function removeNamespaces(prefix: string, linkPrefix: string): void {
  for (const line of ip('-o', 'link', 'show').split('\n')) {
    const link = /^\d+: ([^:@]+)/.exec(line)?.[1];
    if (link?.startsWith(linkPrefix)) ip('link', 'del', link);
  }
  for (const name of namespacesNamed(prefix)) ip('netns', 'del', name);
}

/** The third octet of `count` /24s of 10.231.0.0/16 that no address or route of the host uses. */
function freeSubnets(count: number): number[] {
  const used = `${ip('-4', '-o', 'addr', 'show')}\n${ip('-4', 'route', 'show', 'table', 'all')}`;
  const free: number[] = [];
  for (let n = 1; n < 255 && free.length < count; n++) {
    if (!used.includes(`${SUBNETS}.${n}.`)) free.push(n);
  }
  if (free.length < count) throw new Error(`no ${count} free /24s left in ${SUBNETS}.0.0/16 on this host`);
  return free;
}

/**
 * Creates one namespace per name, each with a veth pair to the host on a /24 of its own. `hostLinks`
 * names the host ends (at most 15 characters each; the namespace end is `eth0` in every namespace).
 */
export function createNamespaces(names: string[], hostLinks: string[]): Netns[] {
  const subnets = freeSubnets(names.length);
  return names.map((name, i) => {
    const hostLink = hostLinks[i] as string;
    const net = `${SUBNETS}.${subnets[i] as number}`;
    const ns: Netns = { name, address: `${net}.2`, hostAddress: `${net}.1`, hostLink };
    ip('netns', 'add', name);
    ip('link', 'add', hostLink, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', name);
    ip('addr', 'add', `${ns.hostAddress}/24`, 'dev', hostLink);
    ip('link', 'set', hostLink, 'up');
    ip('-n', name, 'addr', 'add', `${ns.address}/24`, 'dev', 'eth0');
    ip('-n', name, 'link', 'set', 'eth0', 'up');
    ip('-n', name, 'link', 'set', 'lo', 'up');
    return ns;
  });
}

/** Deletes the namespaces and their veth pairs (stop the processes in them first). */
export function deleteNamespaces(namespaces: Netns[]): void {
  for (const ns of namespaces) {
    try {
      ip('link', 'del', ns.hostLink);
    } catch {
      /* already gone */
    }
    try {
      ip('netns', 'del', ns.name);
    } catch {
      /* already gone */
    }
  }
}

/**
 * `command args…` run in the namespace (`ip netns exec` replaces itself with the command: the child's
 * pid is the command's own).
 */
export function spawnIn(ns: Netns, command: string, args: string[], options: SpawnOptions): ChildProcess {
  return spawn('ip', ['netns', 'exec', ns.name, command, ...args], options);
}

/** Whether process `pid` runs in namespace `ns` (the same network namespace inode). */
export function runsIn(pid: number, ns: Netns): boolean {
  const proc = statSync(`/proc/${pid}/ns/net`);
  const named = statSync(`/run/netns/${ns.name}`);
  return proc.ino === named.ino && proc.dev === named.dev;
}

export interface TcpRelay {
  /** `host:port` the relay listens on. */
  address: string;
  /** Remote address of every connection the relay accepted, in order. */
  peers: string[];
  close(): Promise<void>;
}

/**
 * A plain TCP pass-through from `listenHost` (an ephemeral port) to `target` (`host:port`), in this
 * process: bytes are copied both ways unread (see the file comment: TLS stays end to end).
 */
export async function startTcpRelay(listenHost: string, target: string): Promise<TcpRelay> {
  const [host = '', port = ''] = target.split(':');
  const sockets = new Set<Socket>();
  const peers: string[] = [];
  const server: Server = createServer((inbound) => {
    peers.push(inbound.remoteAddress ?? '?');
    const outbound = connect(Number(port), host);
    for (const s of [inbound, outbound]) {
      sockets.add(s);
      s.once('close', () => sockets.delete(s));
    }
    inbound.pipe(outbound);
    outbound.pipe(inbound);
    // Either side failing or closing ends the other.
    inbound.on('error', () => outbound.destroy());
    outbound.on('error', () => inbound.destroy());
    inbound.once('close', () => outbound.destroy());
    outbound.once('close', () => inbound.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, listenHost, () => resolve());
  });
  const { port: listening } = server.address() as { port: number };
  return {
    address: `${listenHost}:${listening}`,
    peers,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
