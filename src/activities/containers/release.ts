/**
 * Release activities (INC-12): when a service was last deployed, how its request error rate compares
 * before and after that moment, and which schema migration the service's database is at.
 *
 * Error counts come from request log lines (`logs.status`, `logs.path`, `logs.timestamp`; the replica's
 * are logfmt `ts=… path=… status=…`). A recreated container starts
 * with empty logs, so "before the deploy" is read from a component that outlives deploys (the proxy
 * in front of the api); "after" from either.
 */
import type { ActivityDeps } from '../engine/deps';
import { dockerFor, logMatchers } from '../engine/deps';
import { DEFAULT_LOG_MATCHERS, logValue, type LogMatchers } from '../../lib/target-signals';
import { createDockerActivities } from './docker';
import { createHttpActivities } from '../target-api/http';
import { describeError } from '../engine/errors';

export interface RequestCounts {
  requests: number;
  errors: number;
}

export interface ErrorCounts {
  before: RequestCounts;
  after: RequestCounts;
  /** False when the component's logs could not be read (e.g. the container is gone). */
  available: boolean;
  error?: string;
}

export interface MigrationState {
  available: boolean;
  current?: number;
  /** The schema version the running release migrates to. */
  target?: number;
  history: { version: number; name: string; appliedAt: string }[];
  error?: string;
}

export interface ReleaseInfo {
  tag: string;
  running: boolean;
  containerCreatedAt: string;
  imageCreatedAt?: string;
}

/**
 * Pure: request and 5xx counts of request lines, split at `splitAt` (ms). Paths matching
 * `logs.ignoredPaths` (monitoring, the replica's drill traffic) are not user load.
 */
export function countRequestErrors(lines: string[], splitAtMs: number, m: LogMatchers = DEFAULT_LOG_MATCHERS): { before: RequestCounts; after: RequestCounts } {
  const before = { requests: 0, errors: 0 };
  const after = { requests: 0, errors: 0 };
  for (const line of lines) {
    const path = logValue(m, 'path', line);
    const status = Number(logValue(m, 'status', line) ?? NaN);
    const at = Date.parse(logValue(m, 'timestamp', line) ?? '');
    if (!path || m.ignoredPaths.test(path) || !Number.isFinite(status) || Number.isNaN(at)) continue;
    const bucket = at < splitAtMs ? before : after;
    bucket.requests += 1;
    if (status >= 500) bucket.errors += 1;
  }
  return { before, after };
}

export function createReleaseActivities(deps: ActivityDeps) {
  const docker = createDockerActivities(deps);
  const http = createHttpActivities(deps);

  /** Request / 5xx counts in a component's logs since `since`, before and after `splitAt` (ISO times). */
  async function requestErrorCounts(input: { target: string; component: string; since: string; splitAt?: string }): Promise<ErrorCounts> {
    const sinceSeconds = Math.max(1, Math.ceil((Date.now() - Date.parse(input.since)) / 1000));
    try {
      const m = logMatchers(deps, input.target);
      const logs = await docker.containerLogs({ target: input.target, component: input.component, sinceSeconds, grep: m.status.source, limit: 20_000 });
      const split = input.splitAt ? Date.parse(input.splitAt) : Date.parse(input.since);
      return { ...countRequestErrors(logs.lines, split, m), available: true };
    } catch (err) {
      return { before: { requests: 0, errors: 0 }, after: { requests: 0, errors: 0 }, available: false, error: describeError(err) };
    }
  }

  /**
   * Retired: the replica's admin API view of the schema, read only by INC-12 incidents started before
   * migrations were read with alembic (./migrations.ts). Unreachable is a finding, not a failure.
   */
  async function migrationStatus(input: { target: string }): Promise<MigrationState> {
    try {
      const r = await http.adminRequest({ target: input.target, method: 'GET', path: '/v1/admin/migrations', timeoutMs: 5000 });
      const body = r.body as { current?: unknown; target?: unknown; history?: unknown };
      const history = Array.isArray(body.history) ? (body.history as { version: number; name: string; applied_at: string }[]) : [];
      return {
        available: true,
        ...(typeof body.current === 'number' ? { current: body.current } : {}),
        ...(typeof body.target === 'number' ? { target: body.target } : {}),
        history: history.map((h) => ({ version: h.version, name: h.name, appliedAt: new Date(h.applied_at).toISOString() })),
      };
    } catch (err) {
      return { available: false, history: [], error: describeError(err) };
    }
  }

  /** When the component's container and its image were created (the last deploy). */
  async function releaseInfo(input: { target: string; component: string }): Promise<ReleaseInfo> {
    const state = await docker.containerState(input);
    let imageCreatedAt: string | undefined;
    try {
      imageCreatedAt = (await dockerFor(deps, input.target).getImage(state.image).inspect()).Created;
    } catch {
      // An image removed since the container was created: the container time is enough.
    }
    return {
      tag: state.tag,
      running: state.running,
      containerCreatedAt: new Date(state.createdAt).toISOString(),
      ...(imageCreatedAt ? { imageCreatedAt: new Date(imageCreatedAt).toISOString() } : {}),
    };
  }

  return { requestErrorCounts, migrationStatus, releaseInfo };
}
