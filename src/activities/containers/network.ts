/**
 * Seed 002, INC-05 "Network partition? → docker network inspect alfred_default", through the Docker
 * API: the network of the target's compose project (`containers.network`, default
 * `<project>_default`) and whether each component's container is attached to it.
 */
import type Docker from 'dockerode';
import { composeNetworkOf } from '../../config';
import type { ActivityDeps } from '../engine/deps';
import { dockerFor, targetConfig } from '../engine/deps';
import { describeError } from '../engine/errors';
import { inspectComponent } from './containers';

export interface NetworkView {
  /** The network looked at (`containers.network`, default `<project>_default`). */
  network: string;
  /** False when the network could not be inspected: `error` says why. */
  available: boolean;
  error?: string;
  /** Every component shares the host's network (`network_mode: host`): there is no Docker network between them. */
  hostNetwork?: boolean;
  /** Component → attached to the network (or sharing the host's, with hostNetwork). */
  attached: Record<string, boolean>;
}

/** Pure: the view from the containers' and the network's inspect data. */
export function networkView(
  network: string,
  containers: Record<string, Pick<Docker.ContainerInspectInfo, 'Id' | 'HostConfig' | 'NetworkSettings'>>,
  inspected: { Containers?: Record<string, unknown> | null } | undefined,
): Omit<NetworkView, 'available' | 'error'> {
  const entries = Object.entries(containers);
  if (entries.length > 0 && entries.every(([, c]) => c.HostConfig?.NetworkMode === 'host')) {
    return { network, hostNetwork: true, attached: Object.fromEntries(entries.map(([k]) => [k, true])) };
  }
  const members = Object.keys(inspected?.Containers ?? {});
  const attached: Record<string, boolean> = {};
  for (const [component, c] of entries) {
    // The network's own list, and the container's (Podman's compatible API may leave the first empty).
    const listed = members.some((id) => id === c.Id || c.Id.startsWith(id) || id.startsWith(c.Id));
    attached[component] = listed || Object.hasOwn(c.NetworkSettings?.Networks ?? {}, network);
  }
  return { network, attached };
}

export function createNetworkActivities(deps: ActivityDeps) {
  /** `docker network inspect <project>_default` for the given components (seed 002: api and redis). */
  async function composeNetwork(input: { target: string; components: string[] }): Promise<NetworkView> {
    const t = targetConfig(deps, input.target);
    const network = composeNetworkOf(t.containers);
    const containers: Record<string, Docker.ContainerInspectInfo> = {};
    for (const component of input.components) containers[component] = await inspectComponent(deps, input.target, component);
    const hostOnly = Object.values(containers).every((c) => c.HostConfig?.NetworkMode === 'host');
    if (hostOnly) return { available: true, ...networkView(network, containers, undefined) };
    let inspected: { Containers?: Record<string, unknown> | null };
    try {
      inspected = (await dockerFor(deps, input.target).getNetwork(network).inspect()) as { Containers?: Record<string, unknown> | null };
    } catch (err) {
      const status = (err as { statusCode?: number }).statusCode;
      const why =
        status === 404
          ? `network ${network} not found (setting targets.${input.target}.containers.network, default <containers.project>_default)`
          : `docker network inspect ${network}: ${describeError(err)}`;
      return { network, available: false, error: why, attached: {} };
    }
    return { available: true, ...networkView(network, containers, inspected) };
  }

  return { composeNetwork };
}
