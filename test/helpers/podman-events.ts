/**
 * The Docker host's own record of what happened to containers: Podman's event log
 * (`.stack/podman/events.log`, events_logger = "file" in scripts/stack.sh), one JSON object a line.
 * Tests count container starts from it rather than trusting the engine's own account.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { STACK_DIR } from './engine';

export const PODMAN_EVENTS = path.join(STACK_DIR, 'podman/events.log');

interface PodmanEvent {
  Name: string;
  Status: string;
  Time: string;
}

/** Times (ms) of the events of one status (`start`, `died`, ...) of the named container since `since` (ms). */
export function containerEvents(name: string, status: string, since: number): number[] {
  if (!existsSync(PODMAN_EVENTS)) return [];
  return readFileSync(PODMAN_EVENTS, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as PodmanEvent)
    .filter((e) => e.Name === name && e.Status === status && Date.parse(e.Time) >= since)
    .map((e) => Date.parse(e.Time));
}

/** How often the named container was started since `since` (ms). */
export function startsSince(since: number, name: string): number {
  return containerEvents(name, 'start', since).length;
}
