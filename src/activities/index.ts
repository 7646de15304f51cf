/**
 * All activities, built from injected dependencies. Workflows import only the *type* of this
 * factory's result (proxyActivities<Activities>).
 */
import type { ActivityDeps } from './deps';
import { createDockerActivities } from './docker';
import { createGuardActivities } from './guard';
import { createHttpActivities } from './http';
import { createNotifyActivities } from './notify';
import { createPostgresActivities } from './postgres';
import { createRedisActivities } from './redis';
import { createTargetActivities } from './target';

export function createActivities(deps: ActivityDeps) {
  return {
    ...createDockerActivities(deps),
    ...createPostgresActivities(deps),
    ...createRedisActivities(deps),
    ...createHttpActivities(deps),
    ...createNotifyActivities(deps),
    ...createGuardActivities(deps),
    ...createTargetActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;
export type { ActivityDeps } from './deps';
