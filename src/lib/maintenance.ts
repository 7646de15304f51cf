/**
 * Maintenance windows: while one is open on a target, its incidents only diagnose (`diagnose`: the
 * plan is written down, nothing is run, nobody is paged) or are only recorded (`record`: no diagnosis
 * either). Windows come from the worker's configuration (`targets.<name>.maintenance.windows`: fixed
 * dates, or weekly hours in a time zone) or are opened by people for a while with
 * `remediate maintenance start` (kept by the target's maintenance keeper workflow).
 *
 * No Node built-ins and no clock of its own: the keeper workflow imports the rules below, and the
 * activity evaluates configured windows at the time it is given.
 */

export type MaintenanceMode = 'diagnose' | 'record';
export const MAINTENANCE_MODES: readonly MaintenanceMode[] = ['diagnose', 'record'];

export const WEEKDAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;
export type Weekday = (typeof WEEKDAYS)[number];

/** A window in the worker's configuration: fixed (`from`, `to`) or weekly (`weekly`). */
export interface ConfiguredWindow {
  name: string;
  reason?: string;
  mode?: MaintenanceMode;
  from?: string;
  to?: string;
  weekly?: { days: Weekday[]; start: string; end: string; timezone: string };
}

/** A window opened by a person (the keeper's record of it). */
export interface OpenedWindow {
  id: string;
  mode: MaintenanceMode;
  reason: string;
  by: string;
  /** When it was opened (ISO 8601). */
  openedAt: string;
  from: string;
  until: string;
  /** Closed before `until` by `remediate maintenance stop`. */
  stopped?: { by: string; at: string; reason?: string };
}

/** The window an incident is in, as the incident records it. */
export interface ActiveWindow {
  /** `config:<name>` for a configured window, the keeper's id (`mw-N`) for an opened one. */
  id: string;
  source: 'config' | 'opened';
  mode: MaintenanceMode;
  reason: string;
  by?: string;
  from: string;
  until: string;
}

/** `HH:MM` (00:00–24:00) as minutes since midnight, or undefined. */
export function minutesOf(hhmm: string): number | undefined {
  const m = /^([01]\d|2[0-4]):([0-5]\d)$/.exec(hhmm);
  if (!m) return undefined;
  const v = Number(m[1]) * 60 + Number(m[2]);
  return v <= 24 * 60 ? v : undefined;
}

/** Weekday and minutes since midnight of `ms` in time zone `tz` (an IANA name). */
function localTime(ms: number, tz: string): { day: number; minutes: number } {
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone: tz,
    weekday: 'short',
    hour: '2-digit',
    minute: '2-digit',
    hourCycle: 'h23',
  }).formatToParts(new Date(ms));
  const get = (t: string) => parts.find((p) => p.type === t)?.value ?? '';
  const day = WEEKDAYS.indexOf(get('weekday').toLowerCase().slice(0, 3) as Weekday);
  return { day, minutes: Number(get('hour')) * 60 + Number(get('minute')) };
}

/** Whether `tz` is a time zone this runtime knows. */
export function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/**
 * The occurrence of a weekly window that contains `nowMs`, as [from, until] in ms, or undefined. A
 * window whose end is not after its start runs past midnight (`22:00`–`02:00`): it belongs to the day
 * it starts on. Found by walking the minutes back to the start, so daylight saving changes hold.
 */
function weeklyOccurrence(w: NonNullable<ConfiguredWindow['weekly']>, nowMs: number): [number, number] | undefined {
  const start = minutesOf(w.start) as number;
  const end = minutesOf(w.end) as number;
  const length = end > start ? end - start : 24 * 60 - start + end;
  const now = localTime(nowMs, w.timezone);
  // Minutes since the most recent start time (today's, or yesterday's if today's is still ahead).
  let since = now.minutes - start;
  let day = now.day;
  if (since < 0) {
    since += 24 * 60;
    day = (day + 6) % 7;
  }
  if (since >= length) return undefined;
  if (!w.days.includes(WEEKDAYS[day] as Weekday)) return undefined;
  const fromMs = nowMs - since * 60_000 - (nowMs % 60_000);
  return [fromMs, fromMs + length * 60_000];
}

/** The configured windows open at `nowMs`, in the order of the list. */
function configuredWindowsAt(windows: readonly ConfiguredWindow[], nowMs: number, defaultMode: MaintenanceMode): ActiveWindow[] {
  const open: ActiveWindow[] = [];
  for (const w of windows) {
    let span: [number, number] | undefined;
    if (w.weekly) span = weeklyOccurrence(w.weekly, nowMs);
    else if (w.from && w.to) {
      const from = Date.parse(w.from);
      const to = Date.parse(w.to);
      if (nowMs >= from && nowMs < to) span = [from, to];
    }
    if (span)
      open.push({
        id: `config:${w.name}`,
        source: 'config',
        mode: w.mode ?? defaultMode,
        reason: w.reason ?? `configured window ${w.name}`,
        from: new Date(span[0]).toISOString(),
        until: new Date(span[1]).toISOString(),
      });
  }
  return open;
}

/** The configured window open at `nowMs`, if any: a record-only one first, else the first in the list. */
export function configuredWindowAt(windows: readonly ConfiguredWindow[], nowMs: number, defaultMode: MaintenanceMode): ActiveWindow | undefined {
  const open = configuredWindowsAt(windows, nowMs, defaultMode);
  return open.find((w) => w.mode === 'record') ?? open[0];
}

/** Whether an opened window covers `nowMs`. */
export function isOpenAt(w: OpenedWindow, nowMs: number): boolean {
  return !w.stopped && Date.parse(w.from) <= nowMs && nowMs < Date.parse(w.until);
}

/** Whether an opened window is open or still to come at `nowMs`. */
export function isCurrentOrAhead(w: OpenedWindow, nowMs: number): boolean {
  return !w.stopped && nowMs < Date.parse(w.until);
}

/** The opened windows covering `nowMs`, the one ending last first, as an incident records them. */
function openedWindowsAt(windows: readonly OpenedWindow[], nowMs: number): ActiveWindow[] {
  return windows
    .filter((w) => isOpenAt(w, nowMs))
    .sort((a, b) => Date.parse(b.until) - Date.parse(a.until))
    .map((w) => ({ id: w.id, source: 'opened' as const, mode: w.mode, reason: w.reason, by: w.by, from: w.from, until: w.until }));
}

/**
 * The window an incident opened at `nowMs` is in: a `record` window before a `diagnose` one (the more
 * restrictive wins), an opened one before a configured one of the same mode.
 */
export function windowAt(
  configured: readonly ConfiguredWindow[],
  opened: readonly OpenedWindow[],
  nowMs: number,
  defaultMode: MaintenanceMode,
): ActiveWindow | undefined {
  const candidates = [...openedWindowsAt(opened, nowMs), ...configuredWindowsAt(configured, nowMs, defaultMode)];
  return candidates.find((w) => w.mode === 'record') ?? candidates[0];
}

/** One line about a window, for timelines, details and the CLI. */
export function describeWindow(w: ActiveWindow): string {
  return (
    `maintenance window ${w.id} (${w.mode === 'record' ? 'record only' : 'diagnose only'}) until ${w.until}` +
    `${w.by ? `, opened by ${w.by}` : ''}: ${w.reason}`
  );
}

