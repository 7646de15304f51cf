/**
 * The incident policy is the engine's configuration: defaults, overrides per target, runbook and
 * severity applied in order, and names that would never match refused at load. No stack needed.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { ConfigError, loadConfig } from '../src/config';
import { resolvePolicy } from '../src/lib/policy';

const target = { baseUrl: 'http://127.0.0.1:58000', containers: { project: 'alfred' }, components: ['api', 'db', 'redis'] };

function load(policy: Record<string, unknown>, targets: Record<string, unknown> = { alfred: target, beta: target }) {
  const dir = mkdtempSync(path.join(tmpdir(), 'engine-policy-'));
  const file = path.join(dir, 'engine.yaml');
  writeFileSync(file, stringify({ docker: { socketPath: '/run/docker.sock' }, targets, policy }));
  return loadConfig(file, {});
}

const base = { approvers: ['alice', 'bob'], tiers: [{ name: 'tier-1', contacts: ['@on-call'], waitMs: 900_000 }] };

test('without overrides every incident gets the base policy, with the seed defaults filled in', () => {
  const cfg = load(base);
  expect(resolvePolicy(cfg, { target: 'alfred', runbook: 'cacheFailure', severity: 2 })).toEqual({
    approvers: ['alice', 'bob'],
    tiers: [{ name: 'tier-1', contacts: ['@on-call'], waitMs: 900_000 }],
    verifyDeadlineMs: 120_000,
    cooldownMs: 600_000,
    lockWaitMs: 300_000,
    escalatedHoldMs: 7 * 24 * 3600_000,
    settleMs: 60_000,
    decisionMaxAgeMs: 900_000,
    announceChannel: '#incidents',
    roleContacts: { owner: [], security: [], legal: [] },
    actionBudget: { maxActions: 10, windowMs: 3600_000 },
    overrides: [],
  });
});

test("the action budget is the target's own, else the policy's default, whatever the overrides", () => {
  const cfg = load(
    { ...base, actionBudget: { maxActions: 4, windowMs: 1800_000 }, overrides: [{ match: { target: 'beta' }, cooldownMs: 0 }] },
    { alfred: target, beta: { ...target, actionBudget: { maxActions: 1, windowMs: 3600_000 } } },
  );
  expect(resolvePolicy(cfg, { target: 'alfred', runbook: 'cacheFailure', severity: 2 }).actionBudget).toEqual({ maxActions: 4, windowMs: 1800_000 });
  expect(resolvePolicy(cfg, { target: 'beta', runbook: 'doubleSpend', severity: 1 }).actionBudget).toEqual({ maxActions: 1, windowMs: 3600_000 });
});

test("the people seed 002 names by role are the target's own security contacts", () => {
  const cfg = load(base, {
    alfred: { ...target, security: { contacts: { owner: ['@sergey-bar'], security: ['@security-lead'], legal: ['@legal'] } } },
    beta: { ...target, security: { contacts: { owner: ['@beta-owner'] } } },
  });
  expect(resolvePolicy(cfg, { target: 'alfred', runbook: 'doubleSpend', severity: 1 }).roleContacts).toEqual({ owner: ['@sergey-bar'], security: ['@security-lead'], legal: ['@legal'] });
  expect(resolvePolicy(cfg, { target: 'beta', runbook: 'auditChainBreak', severity: 2 }).roleContacts).toEqual({ owner: ['@beta-owner'], security: [], legal: [] });
});

test('overrides apply where every key of their match fits, in order, replacing only what they name', () => {
  const cfg = load({
    ...base,
    overrides: [
      { match: { target: 'beta' }, cooldownMs: 0 },
      { match: { runbook: 'doubleSpend' }, approvers: ['ledger-owner', 'cfo'] },
      { match: { target: 'beta', severity: 1 }, verifyDeadlineMs: 30_000, cooldownMs: 60_000 },
    ],
  });
  const p = (t: string, runbook: string, severity: 1 | 2) => resolvePolicy(cfg, { target: t, runbook, severity });
  expect(p('alfred', 'cacheFailure', 2)).toMatchObject({ approvers: ['alice', 'bob'], cooldownMs: 600_000, overrides: [] });
  expect(p('beta', 'cacheFailure', 2)).toMatchObject({ approvers: ['alice', 'bob'], cooldownMs: 0, verifyDeadlineMs: 120_000, overrides: [0] });
  expect(p('alfred', 'doubleSpend', 1)).toMatchObject({ approvers: ['ledger-owner', 'cfo'], overrides: [1] });
  expect(p('beta', 'doubleSpend', 1)).toMatchObject({ approvers: ['ledger-owner', 'cfo'], cooldownMs: 60_000, verifyDeadlineMs: 30_000, overrides: [0, 1, 2] });
});

test('refused at load: overrides naming what does not exist, unknown keys, and unknown match keys', () => {
  const err = (policy: Record<string, unknown>): string => {
    try {
      load(policy);
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      return (e as Error).message;
    }
    throw new Error('expected the config to be refused');
  };
  expect(err({ ...base, overrides: [{ match: { target: 'gamma' }, cooldownMs: 0 }] })).toMatch(/policy\.overrides\.0\.match\.target: unknown target "gamma"; configured: alfred, beta/);
  expect(err({ ...base, overrides: [{ match: { runbook: 'cacheFailur' }, cooldownMs: 0 }] })).toMatch(/policy\.overrides\.0\.match\.runbook: unknown runbook "cacheFailur"/);
  expect(err({ ...base, overrides: [{ match: { team: 'sre' }, cooldownMs: 0 }] })).toMatch(/policy\.overrides\[0\]\.match: Unrecognized key\(s\) in object: 'team'/);
  expect(err({ ...base, overrides: [{ match: {}, approver: ['x'] }] })).toMatch(/policy\.overrides\[0\]: Unrecognized key\(s\) in object: 'approver'/);
  expect(err({ ...base, cooldown: 5 })).toMatch(/policy: Unrecognized key\(s\) in object: 'cooldown'/);
  // The budget is the target's: an override does not change it; its window is a duration (1h, or milliseconds).
  expect(err({ ...base, overrides: [{ match: { target: 'beta' }, actionBudget: { maxActions: 1, windowMs: 1000 } }] })).toMatch(
    /policy\.overrides\[0\]: Unrecognized key\(s\) in object: 'actionBudget'/,
  );
  expect(err({ ...base, actionBudget: { maxActions: 10, window: '1h' } })).toMatch(/policy\.actionBudget\.windowMs: Required/);
  expect(load({ ...base, actionBudget: { maxActions: 3, windowMs: '30m' } }).policy.actionBudget).toEqual({ maxActions: 3, windowMs: 1_800_000 });
  expect(err({ ...base, actionBudget: { maxActions: -1, windowMs: 3600_000 } })).toMatch(/policy\.actionBudget\.maxActions: Number must be greater than or equal to 0/);
});
