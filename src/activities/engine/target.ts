/** What a workflow may know about a target: its non-secret shape, from configuration. */
import type { TargetConfig } from '../../config';
import type { ActivityDeps } from './deps';
import { targetConfig } from './deps';

export interface TargetInfo {
  name: string;
  components: string[];
  rollbackOrder: string[];
  cacheKeyPattern: string;
  thresholds: TargetConfig['thresholds'];
  limits: TargetConfig['limits'];
  hasPostgres: boolean;
  hasRedis: boolean;
  /** The component whose logs outlive the services' deploys (`logs.frontComponent`); absent in incidents begun before it was read. */
  frontComponent?: string;
  /** Where and as whom to reach PostgreSQL from inside its own container (restore, dump). */
  postgres?: { port?: number; user?: string; execUser?: string; component?: string; database: string; dataDir: string; backupPath: string };
}

export function createTargetActivities(deps: ActivityDeps) {
  async function describeTarget(input: { target: string }): Promise<TargetInfo> {
    const t = targetConfig(deps, input.target);
    return {
      name: input.target,
      components: t.components,
      rollbackOrder: t.rollbackOrder,
      cacheKeyPattern: t.cache.keyPattern,
      thresholds: t.thresholds,
      limits: t.limits,
      hasPostgres: Boolean(t.postgres),
      hasRedis: Boolean(t.redis),
      frontComponent: t.logs.frontComponent,
      ...(t.postgres
        ? {
            postgres: {
              ...(t.postgres.port !== undefined ? { port: t.postgres.port } : {}),
              ...(t.postgres.user !== undefined ? { user: t.postgres.user } : {}),
              execUser: t.postgres.execUser,
              component: t.postgres.component,
              database: t.postgres.database,
              dataDir: t.postgres.dataDir,
              backupPath: t.postgres.backupPath,
            },
          }
        : {}),
    };
  }
  return { describeTarget };
}
