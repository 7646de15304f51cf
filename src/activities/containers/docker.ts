/**
 * Container activities over the Docker Engine API (Podman's compatible socket here, Docker elsewhere).
 * Containers are never named in workflow code: a target's component is found by its compose labels
 * (./containers.ts).
 */
import { PassThrough } from 'node:stream';
import type Docker from 'dockerode';
import { heartbeat } from '@temporalio/activity';
import type { ActivityDeps } from '../engine/deps';
import { dockerFor, logMatchers } from '../engine/deps';
import { countLogLines, type LogCount, type LogCountSpec } from '../../lib/target-signals';
import { PARKED, findContainer } from './containers';
import { ErrorType, permanent } from '../engine/errors';

export interface ComponentRef {
  target: string;
  component: string;
}

export interface ContainerState {
  id: string;
  name: string;
  image: string;
  tag: string;
  running: boolean;
  status: string;
  exitCode: number;
  oomKilled: boolean;
  restartCount: number;
  startedAt: string;
  createdAt: string;
  memoryLimitBytes: number;
  /**
   * Memory plus swap the container may use (HostConfig.MemorySwap: equal to the memory limit means no
   * swap, compose's `memswap_limit` = `mem_limit`; -1 unlimited; 0 unset, i.e. twice the limit).
   */
  memorySwapBytes: number;
}

export interface ActionOutcome {
  /** False when the action found its effect already in place (idempotent repeat). */
  performed: boolean;
  detail: string;
}

const HISTORY_LABEL = 'remediation.image-history';
/** Tags a container was moved down from (rolled back): never a "last known good" again. */
const ROLLED_BACK_LABEL = 'remediation.rolled-back-from';
export { REPLICA_LABEL } from './containers';

function tagOf(image: string): string {
  const at = image.lastIndexOf(':');
  return at > image.lastIndexOf('/') ? image.slice(at + 1) : 'latest';
}

function repoOf(image: string): string {
  const at = image.lastIndexOf(':');
  return at > image.lastIndexOf('/') ? image.slice(0, at) : image;
}

/** Orders tags like versions: 1.10.0 > 1.9.0 > 1.9.0-rc. */
export function compareTags(a: string, b: string): number {
  const parse = (t: string) => {
    const [core = '', pre] = t.replace(/^v/, '').split('-', 2);
    return { nums: core.split('.').map((n) => Number.parseInt(n, 10) || 0), pre };
  };
  const pa = parse(a);
  const pb = parse(b);
  for (let i = 0; i < Math.max(pa.nums.length, pb.nums.length); i++) {
    const d = (pa.nums[i] ?? 0) - (pb.nums[i] ?? 0);
    if (d !== 0) return d;
  }
  if (pa.pre && !pb.pre) return -1;
  if (!pa.pre && pb.pre) return 1;
  return (pa.pre ?? '').localeCompare(pb.pre ?? '');
}

export function createDockerActivities(deps: ActivityDeps) {
  /** Each target's own Docker API: an action for one target never reaches another's host. */
  const dockerOf = (ref: ComponentRef): Docker => dockerFor(deps, ref.target);

  const find = (ref: ComponentRef): Promise<Docker.ContainerInfo> => findContainer(deps, ref.target, ref.component);

  async function inspect(ref: ComponentRef): Promise<{ info: Docker.ContainerInspectInfo; state: ContainerState }> {
    const c = await find(ref);
    const info = await dockerOf(ref).getContainer(c.Id).inspect();
    const image = info.Config.Image;
    return {
      info,
      state: {
        id: info.Id,
        name: info.Name.replace(/^\//, ''),
        image,
        tag: tagOf(image),
        running: info.State.Running,
        status: info.State.Status,
        exitCode: info.State.ExitCode,
        oomKilled: info.State.OOMKilled,
        restartCount: info.RestartCount ?? 0,
        startedAt: info.State.StartedAt,
        createdAt: info.Created,
        memoryLimitBytes: info.HostConfig.Memory ?? 0,
        memorySwapBytes: info.HostConfig.MemorySwap ?? 0,
      },
    };
  }

  /** Inspect-then-act: a restart whose effect is already there (started after `notBefore`) is not repeated. */
  async function restartContainer(ref: ComponentRef & { notBefore: string; timeoutSeconds?: number }): Promise<ActionOutcome> {
    const { state } = await inspect(ref);
    if (state.running && Date.parse(state.startedAt) >= Date.parse(ref.notBefore)) {
      return { performed: false, detail: `${state.name} already restarted at ${state.startedAt}` };
    }
    const c = dockerOf(ref).getContainer(state.id);
    if (state.running) await c.restart({ t: ref.timeoutSeconds ?? 5 });
    else await c.start();
    const after = await inspect(ref);
    if (!after.state.running) throw new Error(`${state.name} did not stay running (status ${after.state.status})`);
    return { performed: true, detail: `${state.name} ${state.running ? 'restarted' : 'started'} at ${after.state.startedAt}` };
  }

  async function stopContainer(ref: ComponentRef): Promise<ActionOutcome> {
    const { state } = await inspect(ref);
    if (!state.running) return { performed: false, detail: `${state.name} already stopped` };
    await dockerOf(ref).getContainer(state.id).stop({ t: 5 });
    return { performed: true, detail: `${state.name} stopped` };
  }

  async function startContainer(ref: ComponentRef): Promise<ActionOutcome> {
    const { state } = await inspect(ref);
    if (state.running) return { performed: false, detail: `${state.name} already running` };
    await dockerOf(ref).getContainer(state.id).start();
    return { performed: true, detail: `${state.name} started` };
  }

  async function readStream(docker: Docker, stream: NodeJS.ReadableStream | Buffer, tty: boolean): Promise<string> {
    if (Buffer.isBuffer(stream)) return tty ? stream.toString('utf8') : demuxBuffer(stream);
    const out = new PassThrough();
    const chunks: Buffer[] = [];
    out.on('data', (d: Buffer) => chunks.push(d));
    if (tty) stream.pipe(out);
    else docker.modem.demuxStream(stream, out, out);
    await new Promise<void>((resolve, reject) => {
      stream.on('end', () => resolve());
      stream.on('close', () => resolve());
      stream.on('error', reject);
    });
    return Buffer.concat(chunks).toString('utf8');
  }

  /**
   * Log lines since a time, optionally filtered by a regular expression; bounded. `count` counts lines
   * by the target's log patterns (`logs.*`), over every line read: without `grep`, the lines returned
   * are those matching one of the counted patterns.
   */
  async function containerLogs(
    ref: ComponentRef & { sinceSeconds: number; grep?: string; limit?: number; count?: Record<string, LogCountSpec> },
  ): Promise<{ lines: string[]; total: number; matched: number; counts?: Record<string, LogCount> }> {
    let re: RegExp | undefined;
    try {
      re = ref.grep ? new RegExp(ref.grep, 'i') : undefined;
    } catch (err) {
      throw permanent(ErrorType.BadInput, `grep is not a valid regular expression: ${(err as Error).message}`);
    }
    const m = ref.count ? logMatchers(deps, ref.target) : undefined;
    const { state, info } = await inspect(ref);
    const since = Math.floor(Date.now() / 1000) - Math.max(1, ref.sinceSeconds);
    const docker = dockerOf(ref);
    const raw = (await docker
      .getContainer(state.id)
      .logs({ stdout: true, stderr: true, since, follow: false, timestamps: false })) as unknown as Buffer;
    const text = await readStream(docker, raw, Boolean(info.Config.Tty));
    const all = text.split('\n').filter((l) => l.length > 0);
    const counted = m && ref.count ? Object.values(ref.count).map((c) => m[c.pattern]) : [];
    const keep = re ?? (counted.length ? { test: (l: string) => counted.some((c) => c.test(l)) } : undefined);
    const matched = keep ? all.filter((l) => keep.test(l)) : all;
    const limit = ref.limit ?? 200;
    return {
      lines: matched.slice(-limit),
      total: all.length,
      matched: matched.length,
      ...(m && ref.count ? { counts: countLogLines(m, all, ref.count) } : {}),
    };
  }

  /**
   * One stats sample. Stats without a memory usage (a runtime or cgroup that does not report it) are
   * not 0 bytes: `unreadable` says so, and `memoryBytes` is then 0 only as a placeholder.
   */
  async function containerStats(
    ref: ComponentRef,
  ): Promise<{ memoryBytes: number; memoryLimitBytes: number; cpuPct: number; unreadable?: string }> {
    const { state } = await inspect(ref);
    if (!state.running) return { memoryBytes: 0, memoryLimitBytes: state.memoryLimitBytes, cpuPct: 0 };
    const s = (await dockerOf(ref).getContainer(state.id).stats({ stream: false })) as unknown as Docker.ContainerStats;
    const cpuDelta = s.cpu_stats.cpu_usage.total_usage - s.precpu_stats.cpu_usage.total_usage;
    const sysDelta = (s.cpu_stats.system_cpu_usage ?? 0) - (s.precpu_stats.system_cpu_usage ?? 0);
    const cpus = s.cpu_stats.online_cpus ?? 1;
    const usage = s.memory_stats?.usage;
    return {
      ...(typeof usage === 'number' ? {} : { unreadable: `the container stats of ${state.name} report no memory usage` }),
      memoryBytes: usage ?? 0,
      memoryLimitBytes: state.memoryLimitBytes || (s.memory_stats.limit ?? 0),
      cpuPct: sysDelta > 0 ? Math.round((cpuDelta / sysDelta) * cpus * 10000) / 100 : 0,
    };
  }

  /** Runs a command in a running container; returns exit code and output (bounded). */
  async function execInContainer(ref: ComponentRef & { cmd: string[]; user?: string }): Promise<{ exitCode: number; output: string }> {
    if (ref.cmd.length === 0) throw permanent(ErrorType.BadInput, 'exec needs a command');
    const { state } = await inspect(ref);
    if (!state.running) throw permanent(ErrorType.Refused, `${state.name} is not running; cannot exec`);
    const docker = dockerOf(ref);
    const exec = await docker.getContainer(state.id).exec({
      Cmd: ref.cmd,
      AttachStdout: true,
      AttachStderr: true,
      ...(ref.user ? { User: ref.user } : {}),
    });
    const stream = await exec.start({ hijack: true, stdin: false });
    const output = await readStream(docker, stream, false);
    const result = await exec.inspect();
    return { exitCode: result.ExitCode ?? -1, output: output.slice(-8000) };
  }

  /** `df -P <path>` in the component's container. */
  async function diskUsage(ref: ComponentRef & { path: string }): Promise<{ usedPct: number; availableKb: number }> {
    const r = await execInContainer({ ...ref, cmd: ['df', '-P', ref.path] });
    const line = r.output.trim().split('\n').pop() ?? '';
    const cols = line.trim().split(/\s+/);
    const pct = Number.parseInt((cols[4] ?? '').replace('%', ''), 10);
    if (r.exitCode !== 0 || Number.isNaN(pct)) throw new Error(`df failed (exit ${r.exitCode}): ${r.output.trim().slice(0, 200)}`);
    return { usedPct: pct, availableKb: Number.parseInt(cols[3] ?? '0', 10) };
  }

  /** Tags of the component's image repository present locally, plus the image history kept on the container. */
  async function imageTags(ref: ComponentRef): Promise<{ current: string; repo: string; tags: string[]; history: string[]; rolledBackFrom: string[] }> {
    const { state, info } = await inspect(ref);
    const repo = repoOf(state.image);
    const images = await dockerOf(ref).listImages();
    const tags = new Set<string>();
    for (const img of images) {
      for (const rt of img.RepoTags ?? []) if (repoOf(rt) === repo) tags.add(tagOf(rt));
    }
    const history = (info.Config.Labels?.[HISTORY_LABEL] ?? '').split(',').filter(Boolean);
    const rolledBackFrom = (info.Config.Labels?.[ROLLED_BACK_LABEL] ?? '').split(',').filter(Boolean);
    return { current: state.tag, repo, tags: [...tags].sort(compareTags), history, rolledBackFrom };
  }

  /**
   * The release to go back to: the most recent older tag the container ran before the current one
   * (kept in its history label) that was never rolled back from, else the highest local tag below
   * the current one (no pre-releases).
   */
  async function lastKnownGoodTag(ref: ComponentRef): Promise<{ current: string; tag: string | null; reason: string }> {
    const t = await imageTags(ref);
    const bad = new Set(t.rolledBackFrom);
    // Back means older: a newer tag in the history is one this container was already moved down from.
    const fromHistory = [...t.history].reverse().find((h) => compareTags(h, t.current) < 0 && t.tags.includes(h) && !bad.has(h));
    if (fromHistory) return { current: t.current, tag: fromHistory, reason: `ran ${fromHistory} before ${t.current}` };
    const lower = t.tags.filter((x) => compareTags(x, t.current) < 0 && !x.includes('-') && !bad.has(x));
    const tag = lower.pop() ?? null;
    return { current: t.current, tag, reason: tag ? `highest release below ${t.current}` : 'no older release found' };
  }

  /**
   * Recreates a component's container on another tag and/or with changed env or memory limit, keeping
   * its name, labels, mounts, network and command. Idempotent: a container already in the wanted
   * shape is left alone. If the new container cannot start, the old one is put back.
   */
  async function recreateContainer(
    ref: ComponentRef & { tag?: string; env?: Record<string, string>; memoryLimitMb?: number },
  ): Promise<ActionOutcome & { image: string }> {
    const { state, info } = await inspect(ref);
    const docker = dockerOf(ref);
    const repo = repoOf(state.image);
    const image = ref.tag ? `${repo}:${ref.tag}` : state.image;
    if (ref.tag) {
      const exists = (await docker.listImages({ filters: { reference: [image] } })).length > 0;
      if (!exists) throw permanent(ErrorType.BadInput, `image ${image} is not present on the engine`);
    }
    const oldImage = await docker.getImage(state.image).inspect();
    const imageEnv = new Set(oldImage.Config?.Env ?? []);
    const userEnv = new Map<string, string>();
    for (const kv of info.Config.Env ?? []) {
      if (imageEnv.has(kv)) continue;
      const i = kv.indexOf('=');
      userEnv.set(kv.slice(0, i), kv.slice(i + 1));
    }
    for (const [k, v] of Object.entries(ref.env ?? {})) userEnv.set(k, v);
    const memory = ref.memoryLimitMb !== undefined ? ref.memoryLimitMb * 1024 * 1024 : info.HostConfig.Memory ?? 0;

    const envSame = Object.entries(ref.env ?? {}).every(([k, v]) => (info.Config.Env ?? []).includes(`${k}=${v}`));
    // A memory limit comes with swap equal to it (seed 002: mem_limit and memswap_limit both 512m).
    const memorySame = memory === (info.HostConfig.Memory ?? 0) && (memory === 0 || (info.HostConfig.MemorySwap ?? 0) === memory);
    if (state.image === image && envSame && memorySame && state.running) {
      return { performed: false, detail: `${state.name} already runs ${image} with the wanted settings`, image };
    }

    const imageCmd = JSON.stringify(oldImage.Config?.Cmd ?? []);
    const keepCmd = JSON.stringify(info.Config.Cmd ?? []) !== imageCmd;
    const history = [...(info.Config.Labels?.[HISTORY_LABEL] ?? '').split(',').filter(Boolean), state.tag].slice(-10);
    const labels: Record<string, string> = { ...(info.Config.Labels ?? {}), [HISTORY_LABEL]: history.join(',') };
    // Moving down to an older tag is a rollback: the tag left behind is remembered as bad. Moving to
    // a tag on purpose clears it (someone decided it is good again).
    if (ref.tag) {
      const prior = (info.Config.Labels?.[ROLLED_BACK_LABEL] ?? '').split(',').filter((t) => t && t !== ref.tag);
      const next = compareTags(ref.tag, state.tag) < 0 ? [...new Set([...prior, state.tag])].slice(-10) : prior;
      labels[ROLLED_BACK_LABEL] = next.join(',');
    }
    const name = state.name.replace(PARKED, '');
    const old = docker.getContainer(state.id);
    const parked = `${name}-replaced-${Date.now()}`;

    heartbeat('stopping old container');
    if (state.running) await old.stop({ t: 5 });
    await old.rename({ name: parked });
    try {
      const created = await docker.createContainer({
        name,
        Image: image,
        ...(keepCmd ? { Cmd: info.Config.Cmd } : {}),
        Env: [...userEnv].map(([k, v]) => `${k}=${v}`),
        Labels: labels,
        User: info.Config.User,
        HostConfig: {
          Binds: info.HostConfig.Binds,
          Mounts: info.HostConfig.Mounts,
          PortBindings: info.HostConfig.PortBindings,
          NetworkMode: info.HostConfig.NetworkMode,
          Memory: memory,
          ...(memory > 0 ? { MemorySwap: memory } : {}),
          RestartPolicy: info.HostConfig.RestartPolicy,
        },
        ...networkingConfig(info),
      });
      heartbeat('starting new container');
      await created.start();
      const check = await created.inspect();
      if (!check.State.Running) throw new Error(`new ${name} exited at once (code ${check.State.ExitCode})`);
      await old.remove({ force: true });
      return { performed: true, detail: `${name} recreated on ${image} (was ${state.image})`, image };
    } catch (err) {
      // Put the old container back so a failed recreate leaves the service as it was.
      const leftover = await docker.listContainers({ all: true, filters: { name: [`^${name}$`] } });
      for (const c of leftover) if (c.Id !== state.id) await docker.getContainer(c.Id).remove({ force: true });
      await old.rename({ name });
      if (state.running) await old.start().catch(() => undefined);
      throw err;
    }
  }

  async function containerState(ref: ComponentRef): Promise<ContainerState> {
    return (await inspect(ref)).state;
  }

  return {
    containerState,
    restartContainer,
    stopContainer,
    startContainer,
    containerLogs,
    containerStats,
    execInContainer,
    diskUsage,
    imageTags,
    lastKnownGoodTag,
    recreateContainer,
  };
}

/** Keeps user-defined networks and their aliases (compose service names) on a recreated container. */
export function networkingConfig(info: Docker.ContainerInspectInfo): { NetworkingConfig?: Docker.ContainerCreateOptions['NetworkingConfig'] } {
  const mode = info.HostConfig.NetworkMode ?? '';
  const nets = info.NetworkSettings?.Networks ?? {};
  const endpoints: Record<string, { Aliases?: string[] }> = {};
  for (const [name, n] of Object.entries(nets)) {
    if (['host', 'bridge', 'none', 'default'].includes(name) || name === mode) continue;
    endpoints[name] = n.Aliases ? { Aliases: n.Aliases } : {};
  }
  const own = nets[mode];
  if (own && !['host', 'bridge', 'none', 'default'].includes(mode)) endpoints[mode] = own.Aliases ? { Aliases: own.Aliases } : {};
  return Object.keys(endpoints).length > 0 ? { NetworkingConfig: { EndpointsConfig: endpoints } } : {};
}

function demuxBuffer(buf: Buffer): string {
  // Docker's multiplexed stream: 8-byte header (stream type, 3 zero bytes, big-endian length) per frame.
  const parts: string[] = [];
  let i = 0;
  while (i + 8 <= buf.length) {
    const type = buf[i];
    if (type !== 0 && type !== 1 && type !== 2) return buf.toString('utf8');
    const len = buf.readUInt32BE(i + 4);
    parts.push(buf.subarray(i + 8, i + 8 + len).toString('utf8'));
    i += 8 + len;
  }
  return parts.join('');
}
