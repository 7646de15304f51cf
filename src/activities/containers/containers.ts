/**
 * The one way a target's containers are found: by the labels Docker Compose puts on every container
 * of a project (`com.docker.compose.project` / `com.docker.compose.service`), as the seeds deploy
 * Alfred (`docker compose restart api`). Label keys, the project and each component's service name
 * are settings (`targets.<name>.containers`), so other naming is configuration, not code.
 */
import type Docker from 'dockerode';
import type { TargetConfig } from '../../config';
import type { ActivityDeps } from '../engine/deps';
import { dockerFor, targetConfig } from '../engine/deps';
import { ErrorType, permanent } from '../engine/errors';

/** Marks an extra replica of a component (a scale-out); the component's own container never has it. */
export const REPLICA_LABEL = 'remediation.replica';
/** The name an interrupted recreate leaves the old container under. */
export const PARKED = /-replaced-\d+$/;

/** The compose service a component runs as. */
export function serviceOf(t: TargetConfig, component: string): string {
  return Object.prototype.hasOwnProperty.call(t.containers.services, component)
    ? (t.containers.services[component] as string)
    : component;
}

/** Label filters (key=value) that select a component's containers. */
export function componentLabels(t: TargetConfig, component: string): string[] {
  return [
    `${t.containers.projectLabel}=${t.containers.project}`,
    `${t.containers.serviceLabel}=${serviceOf(t, component)}`,
  ];
}

export const isParked = (c: Docker.ContainerInfo): boolean => c.Names.some((n) => PARKED.test(n));
export const isReplica = (c: Docker.ContainerInfo): boolean => Boolean(c.Labels?.[REPLICA_LABEL]);

function checkComponent(target: string, t: TargetConfig, component: string): void {
  if (!t.components.includes(component)) {
    throw permanent(
      ErrorType.UnknownContainer,
      `target "${target}" has no component "${component}" (configured: ${t.components.join(', ')})`,
    );
  }
}

/** Every container of a component: its own, replicas, and any parked by an interrupted recreate. */
export async function componentContainers(
  deps: ActivityDeps,
  target: string,
  component: string,
  opts: { all?: boolean } = {},
): Promise<Docker.ContainerInfo[]> {
  const t = targetConfig(deps, target);
  checkComponent(target, t, component);
  return dockerFor(deps, target).listContainers({ all: opts.all ?? true, filters: { label: componentLabels(t, component) } });
}

/** The component's own container: never a replica; the live one over a parked one; running first. */
export function pickOwn(list: Docker.ContainerInfo[]): Docker.ContainerInfo | undefined {
  const rank = (c: Docker.ContainerInfo) =>
    (isReplica(c) ? 4 : 0) + (isParked(c) ? 2 : 0) + (c.State === 'running' ? 0 : 1);
  const own = [...list].sort((a, b) => rank(a) - rank(b))[0];
  return own && !isReplica(own) ? own : undefined;
}

/**
 * Says what was looked for and which setting changes it, so a target whose containers are named
 * otherwise is fixed in configuration, never guessed at.
 */
async function notFound(deps: ActivityDeps, target: string, t: TargetConfig, component: string): Promise<never> {
  const { projectLabel, serviceLabel, project } = t.containers;
  const inProject = await dockerFor(deps, target).listContainers({ all: true, filters: { label: [`${projectLabel}=${project}`] } });
  const services = [
    ...new Set(inProject.map((c) => c.Labels?.[serviceLabel]).filter((s): s is string => Boolean(s))),
  ].sort();
  const why =
    inProject.length === 0
      ? `no container carries ${projectLabel}=${project}; set targets.${target}.containers.project (or projectLabel) to your deployment's compose project`
      : `compose project "${project}" has services ${services.join(', ') || '(none labelled ' + serviceLabel + ')'} but none is "${serviceOf(t, component)}"; ` +
        `map it with targets.${target}.containers.services.${component}`;
  throw permanent(
    ErrorType.UnknownContainer,
    `no container for component "${component}" of target "${target}": ${why}`,
  );
}

/** The component's own container (see `pickOwn`), or a permanent failure that names the setting to fix. */
export async function findContainer(
  deps: ActivityDeps,
  target: string,
  component: string,
): Promise<Docker.ContainerInfo> {
  const list = await componentContainers(deps, target, component);
  const own = pickOwn(list);
  if (own) return own;
  return notFound(deps, target, targetConfig(deps, target), component);
}

/** The component's own running container, if there is one. */
export async function findRunningContainer(
  deps: ActivityDeps,
  target: string,
  component: string,
): Promise<Docker.ContainerInfo | undefined> {
  const own = pickOwn(await componentContainers(deps, target, component, { all: false }));
  return own && !isParked(own) ? own : undefined;
}

/** Inspect data of the component's own container. */
export async function inspectComponent(
  deps: ActivityDeps,
  target: string,
  component: string,
): Promise<Docker.ContainerInspectInfo> {
  const c = await findContainer(deps, target, component);
  return dockerFor(deps, target).getContainer(c.Id).inspect();
}
