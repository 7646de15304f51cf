/**
 * Temporal Schedules the engine relies on, created or updated from configuration by
 * `remediate schedules apply` (idempotent: run it after every configuration change). Today: one
 * daily TLS expiry check per target with a TLS endpoint.
 */
import { ScheduleAlreadyRunning, ScheduleOverlapPolicy, type Client, type ScheduleOptions } from '@temporalio/client';
import type { EngineConfig } from '../config';
import type { IncidentPolicy } from '../workflows/contracts';
import type { TlsCheckInput } from '../workflows/tls-expiry-check';

export interface AppliedSchedule {
  scheduleId: string;
  state: 'created' | 'updated';
  description: string;
}

/** Schedule id of a target's daily TLS check; `prefix` keeps test schedules apart from real ones. */
export function tlsCheckScheduleId(target: string, prefix = ''): string {
  return `${prefix}tls-expiry-check-${target}`;
}

/** Every schedule the configuration asks for. */
export function desiredSchedules(
  cfg: EngineConfig,
  opts: { taskQueue?: string; prefix?: string; policy?: Partial<IncidentPolicy> } = {},
): ScheduleOptions[] {
  const out: ScheduleOptions[] = [];
  const policy: IncidentPolicy = { ...cfg.policy, ...opts.policy };
  for (const [target, t] of Object.entries(cfg.targets)) {
    if (!t.tlsEndpoint || !t.tls) continue;
    const id = tlsCheckScheduleId(target, opts.prefix);
    const args: [TlsCheckInput] = [{ target, policy }];
    out.push({
      scheduleId: id,
      spec: { calendars: [{ hour: t.tls.checkHourUtc, minute: 0, comment: `daily TLS expiry check of ${target}` }] },
      action: { type: 'startWorkflow', workflowType: 'tlsExpiryCheck', workflowId: id, taskQueue: opts.taskQueue ?? cfg.temporal.taskQueue, args },
      // A check missed while the server was down still runs within the day; two never overlap.
      policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 day' },
      memo: { description: `daily ${String(t.tls.checkHourUtc).padStart(2, '0')}:00 UTC: open tlsExpiry on ${target} when under ${t.tls.minDaysLeft} days are left` },
    });
  }
  return out;
}

/** Creates each desired schedule, or updates it in place if it exists. */
export async function applySchedules(
  client: Client,
  cfg: EngineConfig,
  opts: { taskQueue?: string; prefix?: string; policy?: Partial<IncidentPolicy> } = {},
): Promise<AppliedSchedule[]> {
  const applied: AppliedSchedule[] = [];
  for (const s of desiredSchedules(cfg, opts)) {
    const description = String(s.memo?.description ?? s.scheduleId);
    try {
      await client.schedule.create(s);
      applied.push({ scheduleId: s.scheduleId, state: 'created', description });
    } catch (err) {
      if (!(err instanceof ScheduleAlreadyRunning)) throw err;
      const { scheduleId: _id, ...update } = s;
      await client.schedule.getHandle(s.scheduleId).update((prev) => ({ ...prev, ...update, state: prev.state }));
      applied.push({ scheduleId: s.scheduleId, state: 'updated', description });
    }
  }
  return applied;
}
