/**
 * One keeper per target (workflow id `maintenance-<target>`): the maintenance windows people opened
 * there with `remediate maintenance start`, and stopped with `stop`. Requests arrive as an update
 * sealed by the codec server; a request counts only for an authenticated identity the worker's
 * configuration allows (`maintenance.approvers`, else the target's approvers), once, while fresh, and
 * for no longer than `maintenance.maxDurationMs`. Incidents read the windows through an activity
 * (maintenanceWindowAt) when they open. The keeper ends once no window is open or ahead for an hour.
 */
import {
  allHandlersFinished,
  ApplicationFailure,
  condition,
  continueAsNew,
  proxyActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import { sealIsFresh, sealOf, type SealedBy } from '../lib/codec/sealed';
import { isCurrentOrAhead, MAINTENANCE_MODES, type OpenedWindow } from '../lib/maintenance';
import {
  maintenanceStateQuery,
  maintenanceUpdate,
  type MaintenanceAnswer,
  type MaintenanceKeeperInput,
  type MaintenanceKeeperState,
  type MaintenanceRequest,
} from './contracts';

const { maintenanceAuthority } = proxyActivities<Activities>({
  startToCloseTimeout: '10 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '10 seconds', maximumAttempts: 5 },
});

/** How old a sealed request may be when it arrives. */
const REQUEST_MAX_AGE_MS = 5 * 60_000;
/** How long the keeper stays after its last window ended (for `remediate maintenance list`). */
const LINGER_MS = 3600_000;
/** Windows that ended, kept for the list (newest). */
const KEEP_ENDED = 50;
const KEEP_REFUSED = 20;
const REQUESTS_PER_RUN = 200;
const FIELDS = ['target', 'action', 'forMs', 'from', 'mode', 'reason', 'id', '__sealedBy', '__sealRefused'];

const refuse = (why: string): never => {
  throw ApplicationFailure.create({ type: 'MaintenanceRefused', message: why, nonRetryable: true });
};

export async function maintenanceWindows(input: MaintenanceKeeperInput): Promise<void> {
  const windows: OpenedWindow[] = [...(input.windows ?? [])];
  const refused: MaintenanceKeeperState['refused'] = [];
  const counted = new Set<string>();
  let opened = input.opened ?? 0;
  let requests = 0;

  const noteRefusal = (why: string, by?: string): void => {
    refused.push({ at: new Date().toISOString(), ...(by ? { by } : {}), why });
    if (refused.length > KEEP_REFUSED) refused.shift();
  };

  /** What the request's shape and seal say, without the configuration: who sent it. */
  function sender(req: MaintenanceRequest): SealedBy {
    if (!req || typeof req !== 'object' || Array.isArray(req)) refuse('a request is a JSON object');
    const unknown = Object.keys(req).filter((k) => !FIELDS.includes(k));
    if (unknown.length > 0) refuse(`unknown field(s): ${unknown.join(', ')}`);
    if (req.target !== input.target) refuse(`this is the keeper of ${input.target}, not of ${String(req.target)}`);
    if (req.action !== 'start' && req.action !== 'stop') refuse('action must be "start" or "stop"');
    const s = sealOf(req);
    if (s.kind === 'unsealed') refuse('not sealed by the codec server: send it with bin/remediate and your credential');
    if (s.kind === 'refused') refuse(`its seal does not verify (${s.why})`);
    const seal = (s as { seal: SealedBy }).seal;
    if (counted.has(seal.id)) refuse(`sealed by ${seal.by} and already counted (seal ${seal.id})`);
    if (!sealIsFresh(seal, Date.now(), REQUEST_MAX_AGE_MS)) refuse(`sealed by ${seal.by} at ${seal.at}: older than 5 min; send it again`);
    if (req.action === 'start') {
      if (!Number.isInteger(req.forMs) || (req.forMs as number) <= 0) refuse('forMs (how long the window lasts, in ms) must be a whole number above 0');
      if (req.mode !== undefined && !MAINTENANCE_MODES.includes(req.mode)) refuse('mode must be "diagnose" or "record"');
      if (typeof req.reason !== 'string' || req.reason.trim() === '' || req.reason.length > 500) refuse('a reason (1 to 500 characters) is required');
      if (req.from !== undefined && !Number.isFinite(Date.parse(req.from))) refuse('from must be a date (ISO 8601)');
    } else {
      if (req.id !== undefined && typeof req.id !== 'string') refuse('id must be a window id (mw-N)');
      if (req.reason !== undefined && (typeof req.reason !== 'string' || req.reason.length > 500)) refuse('a reason is at most 500 characters');
    }
    return seal;
  }

  async function handle(req: MaintenanceRequest): Promise<MaintenanceAnswer> {
    const seal = sender(req);
    counted.add(seal.id);
    requests += 1;
    const authority = await maintenanceAuthority({ target: input.target });
    if (!authority.known) {
      noteRefusal(`unknown target ${input.target}`, seal.by);
      refuse(`unknown target "${input.target}": not in the worker's configuration`);
    }
    if (!authority.approvers.includes(seal.by)) {
      noteRefusal(`${req.action} refused: not allowed to open or stop windows here`, seal.by);
      refuse(`${seal.by} may not ${req.action} maintenance windows on ${input.target} (allowed: ${authority.approvers.join(', ')})`);
    }
    const now = Date.now();
    if (req.action === 'start') {
      const forMs = req.forMs as number;
      if (forMs > authority.maxDurationMs) {
        noteRefusal(`start refused: ${forMs} ms is longer than ${authority.maxDurationMs} ms`, seal.by);
        refuse(`a window on ${input.target} lasts at most ${authority.maxDurationMs} ms (maintenance.maxDurationMs); asked for ${forMs} ms`);
      }
      const from = req.from ? Math.max(Date.parse(req.from), now) : now;
      if (from - now > 30 * 86_400_000) refuse('a window starts within 30 days');
      opened += 1;
      const w: OpenedWindow = {
        id: `mw-${opened}`,
        mode: req.mode ?? authority.mode,
        reason: (req.reason as string).trim(),
        by: seal.by,
        openedAt: new Date(now).toISOString(),
        from: new Date(from).toISOString(),
        until: new Date(from + forMs).toISOString(),
      };
      windows.push(w);
      return { target: input.target, windows: [w] };
    }
    const stopping = windows.filter((w) => isCurrentOrAhead(w, now) && (req.id === undefined || w.id === req.id));
    if (stopping.length === 0) {
      refuse(req.id ? `no open or upcoming window ${req.id} on ${input.target}` : `no open or upcoming window on ${input.target}`);
    }
    for (const w of stopping) {
      w.stopped = { by: seal.by, at: new Date(now).toISOString(), ...(req.reason ? { reason: req.reason } : {}) };
    }
    return { target: input.target, windows: stopping };
  }

  setHandler(maintenanceUpdate, handle, {
    validator: (req) => void sender(req),
    description: 'Opens a maintenance window on this target, or stops one (sealed by the codec server)',
  });
  setHandler(
    maintenanceStateQuery,
    (): MaintenanceKeeperState => ({ target: input.target, windows, refused }),
    { description: 'The windows opened on this target, and the requests refused' },
  );

  for (;;) {
    const seen = requests;
    const now = Date.now();
    const lastEnd = Math.max(now, ...windows.filter((w) => isCurrentOrAhead(w, now)).map((w) => Date.parse(w.until)));
    if (!(await condition(() => requests !== seen, lastEnd - now + LINGER_MS))) {
      // Nothing asked for an hour past the last window's end: nothing is open or ahead.
      if (!windows.some((w) => isCurrentOrAhead(w, Date.now()))) {
        await condition(allHandlersFinished);
        return;
      }
      continue;
    }
    if (requests >= REQUESTS_PER_RUN || workflowInfo().continueAsNewSuggested) {
      await condition(allHandlersFinished);
      const t = Date.now();
      const kept = [...windows.filter((w) => !isCurrentOrAhead(w, t)).slice(-KEEP_ENDED), ...windows.filter((w) => isCurrentOrAhead(w, t))];
      await continueAsNew<typeof maintenanceWindows>({ target: input.target, windows: kept, opened });
    }
  }
}

