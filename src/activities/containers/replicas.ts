/**
 * Horizontal scaling over the Docker Engine API: extra replicas of a component, created from the
 * component's own container (image, command, env, labels, mounts, network), named `<name>-<n>` and
 * labelled as replicas so nothing mistakes one for the component itself. No published ports are
 * copied: a replica is a consumer, and the component keeps its ports.
 * Scaling is declarative and idempotent: `scaleReplicas` makes exactly N replicas exist and run.
 */
import type Docker from 'dockerode';
import { heartbeat } from '@temporalio/activity';
import { dockerFor, type ActivityDeps } from '../engine/deps';
import { REPLICA_LABEL, componentContainers, findContainer, isParked, pickOwn } from './containers';
import { networkingConfig } from './docker';
import { ErrorType, permanent } from '../engine/errors';

const REPLICA_OF_LABEL = 'remediation.replica-of';

export interface ReplicaInfo {
  name: string;
  index: number;
  running: boolean;
}

export interface ReplicaSet {
  /** The component's own container. */
  base: string;
  baseRunning: boolean;
  replicas: ReplicaInfo[];
}

const nameOf = (c: Docker.ContainerInfo): string => (c.Names[0] ?? c.Id).replace(/^\//, '');

export function createReplicaActivities(deps: ActivityDeps) {
  async function listAll(
    target: string,
    component: string,
  ): Promise<{ base: Docker.ContainerInfo; replicas: Docker.ContainerInfo[] }> {
    const list = await componentContainers(deps, target, component);
    const base = pickOwn(list.filter((c) => !isParked(c)));
    if (!base) await findContainer(deps, target, component); // throws, naming the setting to fix
    if (!base) throw permanent(ErrorType.UnknownContainer, `no container for component "${component}" of target "${target}"`);
    const replicas = list.filter((c) => c.Labels?.[REPLICA_LABEL] && c.Labels[REPLICA_OF_LABEL] === nameOf(base));
    return { base, replicas };
  }

  function describe(base: Docker.ContainerInfo, replicas: Docker.ContainerInfo[]): ReplicaSet {
    return {
      base: nameOf(base),
      baseRunning: base.State === 'running',
      replicas: replicas
        .map((c) => ({ name: nameOf(c), index: Number(c.Labels[REPLICA_LABEL]), running: c.State === 'running' }))
        .sort((a, b) => a.index - b.index),
    };
  }

  async function listReplicas(input: { target: string; component: string }): Promise<ReplicaSet> {
    const { base, replicas } = await listAll(input.target, input.component);
    return describe(base, replicas);
  }

  async function createReplica(docker: Docker, info: Docker.ContainerInspectInfo, base: string, index: number): Promise<void> {
    const created = await docker.createContainer({
      name: `${base}-${index}`,
      Image: info.Config.Image,
      Cmd: info.Config.Cmd,
      ...(info.Config.Entrypoint ? { Entrypoint: info.Config.Entrypoint } : {}),
      Env: info.Config.Env,
      User: info.Config.User,
      ...(info.Config.WorkingDir ? { WorkingDir: info.Config.WorkingDir } : {}),
      Labels: { ...(info.Config.Labels ?? {}), [REPLICA_LABEL]: String(index), [REPLICA_OF_LABEL]: base },
      HostConfig: {
        Binds: info.HostConfig.Binds,
        Mounts: info.HostConfig.Mounts,
        NetworkMode: info.HostConfig.NetworkMode,
        Memory: info.HostConfig.Memory ?? 0,
        RestartPolicy: info.HostConfig.RestartPolicy,
      },
      ...networkingConfig(info),
    });
    await created.start();
  }

  /**
   * Makes exactly `replicas` extra replicas exist and run: missing ones are created from the
   * component's container, stopped ones started, surplus ones (highest index first) removed.
   */
  async function scaleReplicas(input: {
    target: string;
    component: string;
    replicas: number;
    max: number;
  }): Promise<{ performed: boolean; detail: string; set: ReplicaSet }> {
    if (!Number.isInteger(input.replicas) || input.replicas < 0 || input.replicas > input.max) {
      throw permanent(ErrorType.BadInput, `replicas must be an integer from 0 to ${input.max}`);
    }
    const { base, replicas } = await listAll(input.target, input.component);
    const docker = dockerFor(deps, input.target);
    const baseName = nameOf(base);
    const byIndex = new Map(replicas.map((c) => [Number(c.Labels[REPLICA_LABEL]), c]));
    const changes: string[] = [];
    for (const [index, c] of [...byIndex].sort((a, b) => b[0] - a[0])) {
      if (index <= input.replicas) continue;
      heartbeat(`removing ${nameOf(c)}`);
      await docker.getContainer(c.Id).remove({ force: true });
      changes.push(`removed ${nameOf(c)}`);
    }
    let info: Docker.ContainerInspectInfo | undefined;
    for (let index = 1; index <= input.replicas; index++) {
      const existing = byIndex.get(index);
      heartbeat(`replica ${index}`);
      if (existing && existing.State === 'running') continue;
      if (existing) {
        await docker.getContainer(existing.Id).start();
        changes.push(`started ${nameOf(existing)}`);
        continue;
      }
      info ??= await docker.getContainer(base.Id).inspect();
      await createReplica(docker, info, baseName, index);
      changes.push(`created ${baseName}-${index}`);
    }
    const after = await listAll(input.target, input.component);
    const set = describe(after.base, after.replicas);
    const running = set.replicas.filter((r) => r.running).length;
    const summary = `${running} replica(s) of ${baseName} running`;
    return {
      performed: changes.length > 0,
      detail: changes.length ? `${changes.join(', ')}; ${summary}` : `already ${summary}`,
      set,
    };
  }

  return { listReplicas, scaleReplicas };
}
