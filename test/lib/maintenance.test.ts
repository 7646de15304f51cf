/**
 * Maintenance windows' rules, without a stack: which configured window (fixed dates, weekly hours in a
 * time zone, past midnight) is open at a time, which window an incident is in when several are, and
 * what the configuration refuses. Who may open windows: the activity that reads the configuration;
 * and an incident's opening, its policy with a window that cannot be read.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { stringify } from 'yaml';
import { ConfigError, loadConfig } from '../../src/config';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createMaintenanceActivities } from '../../src/activities/engine/maintenance';
import { createOpeningActivities } from '../../src/activities/engine/opening';
import { createPolicyActivities } from '../../src/activities/engine/policy';
import type { ActivityDeps } from '../../src/activities';
import { configuredWindowAt, windowAt, type ConfiguredWindow, type OpenedWindow } from '../../src/lib/maintenance';
import type { PolicyScope } from '../../src/lib/policy';

const at = (iso: string): number => Date.parse(iso);
const TIERS = [{ name: 'tier-1', contacts: ['@on-call'], waitMs: 900_000 }];

describe('configured windows', () => {
  const fixed: ConfiguredWindow = { name: 'db-upgrade', from: '2026-12-05T22:00:00Z', to: '2026-12-06T01:00:00Z', reason: 'PostgreSQL 16' };
  // 2026-12-05 is a Saturday.
  const weekend: ConfiguredWindow = { name: 'weekend-patching', weekly: { days: ['sat', 'sun'], start: '02:00', end: '04:00', timezone: 'UTC' } };
  const night: ConfiguredWindow = { name: 'friday-night', mode: 'record', weekly: { days: ['fri'], start: '22:00', end: '02:00', timezone: 'UTC' } };
  const paris: ConfiguredWindow = { name: 'paris-morning', weekly: { days: ['mon'], start: '09:00', end: '10:00', timezone: 'Europe/Paris' } };

  test('a fixed window is open from its start, up to (not at) its end', () => {
    expect(configuredWindowAt([fixed], at('2026-12-05T21:59:59Z'), 'diagnose')).toBeUndefined();
    expect(configuredWindowAt([fixed], at('2026-12-05T22:00:00Z'), 'diagnose')).toEqual({
      id: 'config:db-upgrade',
      source: 'config',
      mode: 'diagnose',
      reason: 'PostgreSQL 16',
      from: '2026-12-05T22:00:00.000Z',
      until: '2026-12-06T01:00:00.000Z',
    });
    expect(configuredWindowAt([fixed], at('2026-12-06T01:00:00Z'), 'diagnose')).toBeUndefined();
  });

  test('a weekly window: its days and hours only, with this occurrence as from and until', () => {
    expect(configuredWindowAt([weekend], at('2026-12-05T03:10:42Z'), 'record')).toMatchObject({
      id: 'config:weekend-patching',
      mode: 'record',
      from: '2026-12-05T02:00:00.000Z',
      until: '2026-12-05T04:00:00.000Z',
      reason: 'configured window weekend-patching',
    });
    expect(configuredWindowAt([weekend], at('2026-12-06T02:00:00Z'), 'diagnose')?.from).toBe('2026-12-06T02:00:00.000Z');
    expect(configuredWindowAt([weekend], at('2026-12-05T04:00:00Z'), 'diagnose')).toBeUndefined();
    expect(configuredWindowAt([weekend], at('2026-12-04T03:00:00Z'), 'diagnose')).toBeUndefined(); // a Friday
    expect(configuredWindowAt([weekend], at('2026-12-07T03:00:00Z'), 'diagnose')).toBeUndefined(); // a Monday
  });

  test('a window past midnight belongs to the day it starts on', () => {
    expect(configuredWindowAt([night], at('2026-12-04T23:30:00Z'), 'diagnose')).toMatchObject({ mode: 'record', from: '2026-12-04T22:00:00.000Z', until: '2026-12-05T02:00:00.000Z' });
    expect(configuredWindowAt([night], at('2026-12-05T01:59:00Z'), 'diagnose')?.from).toBe('2026-12-04T22:00:00.000Z');
    expect(configuredWindowAt([night], at('2026-12-05T02:00:00Z'), 'diagnose')).toBeUndefined();
    // Saturday night is not Friday's: no window.
    expect(configuredWindowAt([night], at('2026-12-05T23:00:00Z'), 'diagnose')).toBeUndefined();
    expect(configuredWindowAt([night], at('2026-12-06T01:00:00Z'), 'diagnose')).toBeUndefined();
  });

  test("a weekly window in a time zone follows that zone's clock, summer and winter", () => {
    // Monday 7 December 2026, Paris is UTC+1: 09:00 there is 08:00Z.
    expect(configuredWindowAt([paris], at('2026-12-07T08:30:00Z'), 'diagnose')).toMatchObject({ from: '2026-12-07T08:00:00.000Z', until: '2026-12-07T09:00:00.000Z' });
    expect(configuredWindowAt([paris], at('2026-12-07T09:30:00Z'), 'diagnose')).toBeUndefined();
    // Monday 6 July 2026, UTC+2: 09:00 there is 07:00Z.
    expect(configuredWindowAt([paris], at('2026-07-06T07:15:00Z'), 'diagnose')?.from).toBe('2026-07-06T07:00:00.000Z');
    expect(configuredWindowAt([paris], at('2026-07-06T08:15:00Z'), 'diagnose')).toBeUndefined();
  });
});

describe('the window an incident is in', () => {
  const opened = (over: Partial<OpenedWindow>): OpenedWindow => ({
    id: 'mw-1',
    mode: 'diagnose',
    reason: 'redis upgrade',
    by: 'alice',
    openedAt: '2026-12-05T09:00:00.000Z',
    from: '2026-12-05T09:00:00.000Z',
    until: '2026-12-05T11:00:00.000Z',
    ...over,
  });
  const now = at('2026-12-05T10:00:00Z');
  const recordAllDay: ConfiguredWindow = { name: 'freeze', mode: 'record', from: '2026-12-05T00:00:00Z', to: '2026-12-06T00:00:00Z' };

  test('an opened window, while it is open and not stopped', () => {
    expect(windowAt([], [opened({})], now, 'diagnose')).toEqual({
      id: 'mw-1',
      source: 'opened',
      mode: 'diagnose',
      reason: 'redis upgrade',
      by: 'alice',
      from: '2026-12-05T09:00:00.000Z',
      until: '2026-12-05T11:00:00.000Z',
    });
    expect(windowAt([], [opened({ stopped: { by: 'bob', at: '2026-12-05T09:30:00.000Z' } })], now, 'diagnose')).toBeUndefined();
    expect(windowAt([], [opened({ from: '2026-12-05T10:30:00.000Z' })], now, 'diagnose')).toBeUndefined();
    expect(windowAt([], [opened({ until: '2026-12-05T10:00:00.000Z' })], now, 'diagnose')).toBeUndefined();
  });

  test('record only wins over diagnose only, whichever declared it', () => {
    expect(windowAt([recordAllDay], [opened({})], now, 'diagnose')?.id).toBe('config:freeze');
    expect(windowAt([], [opened({}), opened({ id: 'mw-2', mode: 'record', until: '2026-12-05T10:30:00.000Z' })], now, 'diagnose')?.id).toBe('mw-2');
    expect(windowAt([{ ...recordAllDay, mode: 'diagnose' }], [opened({})], now, 'diagnose')?.id).toBe('mw-1');
    const diagnoseAllDay: ConfiguredWindow = { ...recordAllDay, name: 'upgrade', mode: 'diagnose' };
    expect(windowAt([diagnoseAllDay, recordAllDay], [], now, 'diagnose')?.id).toBe('config:freeze');
    expect(windowAt([diagnoseAllDay], [], now, 'diagnose')?.id).toBe('config:upgrade');
  });
});

describe('configuration', () => {
  const target = { baseUrl: 'http://127.0.0.1:58000', containers: { project: 'alfred' }, components: ['api', 'db', 'redis'] };

  function load(maintenance: unknown, policy: Record<string, unknown> = { approvers: ['alice', 'bob'], tiers: TIERS }) {
    const dir = mkdtempSync(path.join(tmpdir(), 'engine-maintenance-'));
    const file = path.join(dir, 'engine.yaml');
    writeFileSync(file, stringify({ docker: { socketPath: '/run/docker.sock' }, targets: { alfred: { ...target, maintenance }, beta: target }, policy }));
    return loadConfig(file, {});
  }
  const refused = (maintenance: unknown): string => {
    try {
      load(maintenance);
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      return (err as Error).message;
    }
    throw new Error('loaded');
  };

  test('defaults: no window, diagnose only, 12 hours at most; durations as strings', () => {
    expect(load(undefined).targets.beta?.maintenance).toEqual({ mode: 'diagnose', windows: [], maxDurationMs: 12 * 3600_000 });
    expect(load({ maxDurationMs: '2h', mode: 'record' }).targets.alfred?.maintenance).toMatchObject({ maxDurationMs: 7_200_000, mode: 'record' });
  });

  test('malformed windows are refused with their path', () => {
    expect(refused({ windows: [{ name: 'x', from: '2026-12-05T22:00:00Z' }] })).toMatch(/targets\.alfred\.maintenance\.windows\[0\]: a window is either weekly or has both from and to/);
    expect(refused({ windows: [{ name: 'x', from: '2026-12-05T22:00:00Z', to: '2026-12-05T21:00:00Z' }] })).toMatch(/a window ends after it starts/);
    expect(refused({ windows: [{ name: 'x', weekly: { days: ['sat'], start: '25:00', end: '02:00' } }] })).toMatch(/windows\[0\]\.weekly\.start: a time is HH:MM/);
    expect(refused({ windows: [{ name: 'x', weekly: { days: ['saturday'], start: '01:00', end: '02:00' } }] })).toMatch(/weekly\.days\[0\]/);
    expect(refused({ windows: [{ name: 'x', weekly: { days: ['sat'], start: '01:00', end: '02:00', timezone: 'Mars/Olympus' } }] })).toMatch(/not a time zone/);
    expect(refused({ windows: [{ name: 'x', weekly: { days: ['sat'], start: '01:00', end: '01:00' } }] })).toMatch(/an end other than its start/);
    expect(refused({ windows: [{ name: 'x', from: '2026-12-05', to: '2026-12-06' }] })).toMatch(/windows\[0\]\.from/);
    expect(refused({ windows: [{ name: 'a', from: '2026-12-05T00:00:00Z', to: '2026-12-06T00:00:00Z' }, { name: 'a', from: '2026-12-07T00:00:00Z', to: '2026-12-08T00:00:00Z' }] })).toMatch(/window names must be unique/);
    expect(refused({ mode: 'silence' })).toMatch(/maintenance\.mode/);
    expect(refused({ windowz: [] })).toMatch(/windowz/);
  });

  test("who may open windows: maintenance.approvers, else the target's approvers; an unknown target is not known", async () => {
    const policy = { approvers: ['alice', 'bob'], tiers: TIERS, overrides: [{ match: { target: 'beta' }, approvers: ['carol'] }, { match: { target: 'alfred', runbook: 'rollback' }, approvers: ['dave'] }] };
    const deps = (maintenance: unknown): ActivityDeps => ({ config: load(maintenance, policy), logger: pino({ level: 'silent' }) }) as unknown as ActivityDeps;
    const plain = createMaintenanceActivities(deps(undefined));
    // A runbook's override does not say who may open windows: the target's approvers do.
    expect(await plain.maintenanceAuthority({ target: 'alfred' })).toEqual({ known: true, approvers: ['alice', 'bob'], maxDurationMs: 12 * 3600_000, mode: 'diagnose' });
    expect((await plain.maintenanceAuthority({ target: 'beta' })).approvers).toEqual(['carol']);
    expect(await plain.maintenanceAuthority({ target: 'gamma' })).toMatchObject({ known: false, approvers: [] });
    const own = createMaintenanceActivities(deps({ approvers: ['erin'] }));
    expect((await own.maintenanceAuthority({ target: 'alfred' })).approvers).toEqual(['erin']);
    // Without a Temporal client, whether people opened a window is not known: no answer, never "none".
    await expect(plain.maintenanceWindowAt({ target: 'alfred' })).rejects.toThrow(/need a Temporal client/);
  });

  test("an incident's opening: its policy, and a window that cannot be read answered as not known, never as none", async () => {
    const deps = { config: load(undefined, { approvers: ['alice', 'bob'], tiers: TIERS, overrides: [{ match: { target: 'beta' }, approvers: ['carol'] }] }), logger: pino({ level: 'silent' }) } as unknown as ActivityDeps;
    const { incidentOpening } = createOpeningActivities({ ...createPolicyActivities(deps), ...createMaintenanceActivities(deps) });
    const scope = (target: string): PolicyScope => ({ target, runbook: 'cacheFailure', severity: 2 });
    const opening: Awaited<ReturnType<typeof incidentOpening>> = await new MockActivityEnvironment().run(incidentOpening, scope('beta'));
    expect(opening.policy).toMatchObject({ approvers: ['carol'], overrides: [0] });
    expect(opening.maintenance).toEqual({ known: false, why: 'maintenance windows need a Temporal client' });
    // An unknown target has no policy: the opening fails as incidentPolicy does.
    await expect(new MockActivityEnvironment().run(incidentOpening, scope('gamma'))).rejects.toThrow(/unknown target "gamma"/);
  });
});
