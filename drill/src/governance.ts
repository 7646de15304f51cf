/**
 * Governance settings and IP blocks, stored in PostgreSQL (Redis here keeps no data across restarts)
 * and mirrored in memory so traffic decisions keep working while the database is away.
 */
import type { Db } from './db';
import { DEFAULT_SETTINGS } from './seed';
import { PROVIDERS, type Provider } from './metrics';

export interface Settings {
  cache_only_mode: boolean;
  maintenance_mode: boolean;
  cache_similarity_threshold: number;
  disabled_providers: Provider[];
  reason: string | null;
}

export function normaliseSettings(raw: Partial<Settings> | undefined): Settings {
  const s = { ...DEFAULT_SETTINGS, ...(raw ?? {}) } as Settings;
  return {
    cache_only_mode: s.cache_only_mode === true,
    maintenance_mode: s.maintenance_mode === true,
    cache_similarity_threshold:
      typeof s.cache_similarity_threshold === 'number'
        ? s.cache_similarity_threshold
        : DEFAULT_SETTINGS.cache_similarity_threshold,
    disabled_providers: Array.isArray(s.disabled_providers)
      ? s.disabled_providers.filter((p): p is Provider => PROVIDERS.includes(p))
      : [],
    reason: typeof s.reason === 'string' ? s.reason : null,
  };
}

export class Governance {
  settings: Settings = normaliseSettings(undefined);
  blocked = new Map<string, string | null>();

  constructor(private readonly db: Db) {}

  async refresh(): Promise<void> {
    const rows = await this.db.query<{ settings: Partial<Settings> }>(
      'SELECT settings FROM governance_settings WHERE id = 1',
    );
    this.settings = normaliseSettings(rows[0]?.settings);
    const blocks = await this.db.query<{ ip: string; reason: string | null }>('SELECT ip, reason FROM ip_blocks');
    this.blocked = new Map(blocks.map((b) => [b.ip, b.reason]));
  }
}

/** Side-effect counters the drill tests read to assert an action happened exactly once. */
export async function bumpCounter(db: Db, name: string, by = 1): Promise<void> {
  await db.query(
    `INSERT INTO drill_counters (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = drill_counters.value + $2`,
    [name, by],
  );
}
