/**
 * Notifications: escalations, approval requests and status updates. Delivered to a JSON-lines file
 * and the log; a failing sink is retried by Temporal and never blocks a mitigation (the kernel does
 * not wait on notification failures beyond its retry policy).
 */
import { appendFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { ActivityDeps } from './deps';

export interface Notification {
  incidentId: string;
  kind: 'approval-needed' | 'escalation' | 'status' | 'resolved' | 'expired';
  severity: number;
  tier?: string;
  contacts?: string[];
  title: string;
  text: string;
}

export function createNotifyActivities(deps: ActivityDeps) {
  async function notify(n: Notification): Promise<void> {
    const entry = { at: new Date().toISOString(), ...n };
    deps.logger.info({ notification: entry }, `notify ${n.kind}: ${n.title}`);
    const file = deps.config.notify.file;
    if (file) {
      await mkdir(path.dirname(path.resolve(file)), { recursive: true });
      await appendFile(file, `${JSON.stringify(entry)}\n`);
    }
  }
  return { notify };
}
