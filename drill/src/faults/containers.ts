/** The drill's containers through the Docker Engine API (Podman's here), found by their compose labels. */
import Docker from 'dockerode';

/** The drill is the compose project "alfred" (drill/docker-compose.yml); a component is its service. */
export const TARGET_LABEL = 'com.docker.compose.project=alfred';
export const serviceLabel = (component: string): string => `com.docker.compose.service=${component}`;
/** Tags a container ran before its current one (the engine reads it to find the last good release). */
const HISTORY_LABEL = 'remediation.image-history';
const tagOf = (image: string): string => image.slice(image.lastIndexOf(':') + 1);
export type Component = 'api' | 'worker' | 'db' | 'redis' | 'proxy';

export interface Found {
  id: string;
  name: string;
  running: boolean;
  image: string;
  info: Docker.ContainerInspectInfo;
}

export class ContainerNotFound extends Error {}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export class DrillContainers {
  readonly docker: Docker;

  constructor(socketPath: string) {
    this.docker = new Docker({ socketPath });
  }

  async find(component: Component): Promise<Found> {
    const list = await this.docker.listContainers({
      all: true,
      filters: { label: [TARGET_LABEL, serviceLabel(component)] },
    });
    // Extra replicas (a scale-out) carry remediation.replica; the component is the one without it.
    // A container renamed aside by a recreate (`-replaced-`) is the old one, never the component.
    const own = list.filter((c) => !c.Labels?.['remediation.replica']);
    const first = own.find((c) => !c.Names.some((n) => n.includes('-replaced-'))) ?? own[0] ?? list[0];
    if (!first) throw new ContainerNotFound(`no container labelled ${TARGET_LABEL},${serviceLabel(component)}`);
    const info = await this.docker.getContainer(first.Id).inspect();
    return {
      id: first.Id,
      name: info.Name.replace(/^\//, ''),
      running: info.State.Running,
      image: info.Config.Image,
      info,
    };
  }

  /**
   * Stops a container. With `signal`, that signal is sent first (SIGINT is PostgreSQL's fast
   * shutdown, which does not wait for clients to leave) and a plain stop follows only if needed.
   */
  async stop(component: Component, timeoutSec = 10, signal?: string): Promise<string> {
    const c = await this.find(component);
    if (!c.running) return `${c.name} already stopped`;
    const container = this.docker.getContainer(c.id);
    if (signal) {
      await container.kill({ signal });
      const deadline = Date.now() + timeoutSec * 1000;
      while (Date.now() < deadline) {
        if (!(await container.inspect()).State.Running) return `stopped ${c.name} (${signal})`;
        await sleep(200);
      }
    }
    await container.stop({ t: timeoutSec });
    return `stopped ${c.name}`;
  }

  async kill(component: Component): Promise<string> {
    const c = await this.find(component);
    if (!c.running) return `${c.name} already not running`;
    await this.docker.getContainer(c.id).kill({ signal: 'SIGKILL' });
    return `killed ${c.name} (SIGKILL)`;
  }

  async start(component: Component): Promise<string> {
    const c = await this.find(component);
    if (c.running) return `${c.name} already running`;
    await this.docker.getContainer(c.id).start();
    return `started ${c.name}`;
  }

  async restart(component: Component): Promise<string> {
    const c = await this.find(component);
    await this.docker.getContainer(c.id).restart({ t: 5 });
    return `restarted ${c.name}`;
  }

  /**
   * Replaces a container with one on another image, keeping its name, labels, environment, mounts,
   * command and network mode. Environment and labels that came from the old image are dropped so the
   * new image's own (APP_VERSION, version label) apply; `env` overrides single variables. The old
   * container is renamed aside until the new one has started, and put back if it does not.
   */
  /** `freshHistory`: the container starts a deploy history of its own (as if first deployed now). */
  async recreate(component: Component, opts: { image?: string; env?: Record<string, string>; freshHistory?: boolean }): Promise<string> {
    const c = await this.find(component);
    const image = opts.image ?? c.image;
    const oldImage = await this.docker
      .getImage(c.info.Image)
      .inspect()
      .catch(() => undefined);
    const imageEnv = new Set(oldImage?.Config.Env ?? []);
    const imageLabels = oldImage?.Config.Labels ?? {};
    const env = new Map<string, string>();
    for (const entry of c.info.Config.Env ?? []) {
      if (imageEnv.has(entry)) continue;
      const i = entry.indexOf('=');
      const key = entry.slice(0, i);
      if (key === 'HOSTNAME') continue;
      env.set(key, entry.slice(i + 1));
    }
    for (const [k, v] of Object.entries(opts.env ?? {})) env.set(k, v);
    const labels: Record<string, string> = {};
    for (const [k, v] of Object.entries(c.info.Config.Labels ?? {})) {
      if (imageLabels[k] === v && !k.startsWith('remediation.')) continue;
      labels[k] = v;
    }
    // A deploy records the release it replaces, as the engine's own recreate does: otherwise the
    // history would still end in a tag the engine rolled back from, and that would pass for "last good".
    if (opts.freshHistory) delete labels[HISTORY_LABEL];
    else if (image !== c.image) {
      const history = (labels[HISTORY_LABEL] ?? '').split(',').filter(Boolean);
      labels[HISTORY_LABEL] = [...history, tagOf(c.image)].slice(-10).join(',');
    }
    const binds = (c.info.HostConfig.Binds ?? []).map((b) => {
      const [src, dst, mode = ''] = b.split(':');
      return mode.split(',').includes('ro') ? `${src}:${dst}:ro` : `${src}:${dst}`;
    });
    const sameImage = image === c.image && !opts.env && !opts.freshHistory;
    if (sameImage && c.running) return `${c.name} already on ${image}`;

    const aside = `${c.name}-replaced-${Date.now()}`;
    const old = this.docker.getContainer(c.id);
    if (c.running) await old.stop({ t: 5 });
    await old.rename({ name: aside });
    try {
      const created = await this.docker.createContainer({
        name: c.name,
        Image: image,
        Env: [...env].map(([k, v]) => `${k}=${v}`),
        Cmd: c.info.Config.Cmd ?? undefined,
        Entrypoint:
          c.info.Config.Entrypoint && (c.info.Config.Entrypoint as string[]).length
            ? c.info.Config.Entrypoint
            : undefined,
        Labels: labels,
        User: c.info.Config.User || undefined,
        WorkingDir: c.info.Config.WorkingDir || undefined,
        HostConfig: {
          Binds: binds,
          NetworkMode: c.info.HostConfig.NetworkMode,
          RestartPolicy: c.info.HostConfig.RestartPolicy,
        },
      });
      await created.start();
      await old.remove({ force: true });
      return `recreated ${c.name} on ${image}${opts.env ? ` with ${Object.keys(opts.env).join(', ')} set` : ''}`;
    } catch (err) {
      const partial = await this.docker
        .listContainers({ all: true, filters: { name: [`^${c.name}$`] } })
        .catch(() => [] as Docker.ContainerInfo[]);
      for (const p of partial) {
        if (p.Id !== c.id)
          await this.docker
            .getContainer(p.Id)
            .remove({ force: true })
            .catch(() => undefined);
      }
      await old.rename({ name: c.name });
      if (c.running) await old.start().catch(() => undefined);
      throw err;
    }
  }

  /**
   * `docker compose run --rm --no-deps <component> <cmd>` on another image: a one-off container with
   * the component's environment, mounts and network, removed afterwards. Returns its exit code and output.
   */
  async runOnce(component: Component, image: string, cmd: string[]): Promise<{ exitCode: number; output: string }> {
    const c = await this.find(component);
    const imageEnv = new Set(
      (
        await this.docker
          .getImage(c.info.Image)
          .inspect()
          .catch(() => undefined)
      )?.Config.Env ?? [],
    );
    const created = await this.docker.createContainer({
      name: `${c.name}-run-${Date.now()}`,
      Image: image,
      Entrypoint: cmd.slice(0, 1),
      Cmd: cmd.slice(1),
      Env: (c.info.Config.Env ?? []).filter((e) => !imageEnv.has(e) && !e.startsWith('HOSTNAME=')),
      WorkingDir: c.info.Config.WorkingDir || undefined,
      User: c.info.Config.User || undefined,
      HostConfig: { Binds: c.info.HostConfig.Binds ?? [], NetworkMode: c.info.HostConfig.NetworkMode },
    });
    try {
      await created.start();
      const done = (await created.wait()) as { StatusCode?: number };
      const raw = (await created.logs({ stdout: true, stderr: true, follow: false })) as unknown as Buffer | string;
      return { exitCode: done.StatusCode ?? -1, output: demux(typeof raw === 'string' ? Buffer.from(raw, 'utf8') : raw) };
    } finally {
      await created.remove({ force: true }).catch(() => undefined);
    }
  }

  /** stdout+stderr of a container since `sinceSec` seconds ago, demultiplexed to text. */
  async logs(component: Component, sinceSec = 300): Promise<string> {
    const c = await this.find(component);
    const raw = (await this.docker.getContainer(c.id).logs({
      stdout: true,
      stderr: true,
      follow: false,
      since: Math.floor(Date.now() / 1000) - sinceSec,
    })) as unknown as Buffer | string;
    return demux(typeof raw === 'string' ? Buffer.from(raw, 'utf8') : raw);
  }

  async waitRunning(component: Component, timeoutMs = 20000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if ((await this.find(component)).running) return true;
      await sleep(300);
    }
    return false;
  }
}

/** Docker's log stream frames each chunk with an 8-byte header when the container has no TTY. */
export function demux(buf: Buffer): string {
  const parts: Buffer[] = [];
  let i = 0;
  const framed = buf.length >= 8 && (buf[0] === 1 || buf[0] === 2) && buf[1] === 0 && buf[2] === 0 && buf[3] === 0;
  if (!framed) return buf.toString('utf8');
  while (i + 8 <= buf.length) {
    const size = buf.readUInt32BE(i + 4);
    parts.push(buf.subarray(i + 8, i + 8 + size));
    i += 8 + size;
  }
  return Buffer.concat(parts).toString('utf8');
}
