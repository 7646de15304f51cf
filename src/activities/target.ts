/** What a workflow may know about a target: its non-secret shape, from configuration. */
import type { ActivityDeps } from './deps';
import { targetConfig } from './deps';

export interface TargetInfo {
  name: string;
  components: string[];
  rollbackOrder: string[];
  cacheKeyPattern: string;
  thresholds: { diskUsagePct: number; poolUsagePct: number; redisMemoryPct: number };
  hasPostgres: boolean;
  hasRedis: boolean;
  postgresDataDir?: string;
  postgresBackupPath?: string;
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
      hasPostgres: Boolean(t.postgres),
      hasRedis: Boolean(t.redis),
      ...(t.postgres ? { postgresDataDir: t.postgres.dataDir, postgresBackupPath: t.postgres.backupPath } : {}),
    };
  }
  return { describeTarget };
}
