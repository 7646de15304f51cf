/** The playbooks' communication templates, rendered from an incident record (pure; no stack). */
import { currentStage, initialResponse, resolutionSummary, statusPage } from '../../src/comms/templates';
import type { IncidentRecord } from '../../src/workflows/contracts';

const rec: IncidentRecord = {
  incidentId: 'incident-cacheFailure-alfred',
  runbook: 'cacheFailure',
  scenario: 'INC-05',
  title: 'Redis / cache failure',
  severity: 2,
  target: 'alfred',
  requestedBy: 'alertmanager',
  dryRun: false,
  phase: 'MITIGATE',
  openedAt: '2026-11-27T10:00:00.000Z',
  diagnosis: 'redis container is exited: crashed',
  rootCause: 'Redis process exited',
  findings: [],
  actions: [
    { stepId: 'restart-redis', title: 'Restart the redis container', risk: 'auto', resource: 'redis', state: 'done', detail: 'restarted alfred-redis', approvals: [] },
    { stepId: 'raise-maxmemory', title: 'Raise maxmemory', risk: 'approve', resource: 'redis', state: 'skipped', approvals: [] },
  ],
  pending: [],
  timeline: [{ at: '2026-11-27T10:01:00.000Z', phase: 'RESOLVE', event: 'verification passed: PING PONG, write ok, api sees redis healthy' }],
  alerts: { count: 1, resolved: 0, flaps: 0 },
  escalations: [],
  children: [],
};
const now = '2026-11-27T10:05:00.000Z';

test('status page stages follow seed 002 §6', () => {
  expect(statusPage('investigating', rec, { cadenceMs: 15 * 60_000, now })).toEqual({
    title: '[Investigating] Redis / cache failure (alfred)',
    text: 'We are investigating redis / cache failure on alfred. Some requests may be failing or experiencing increased latency. We will provide an update within 15 minutes.',
  });
  expect(statusPage('identified', rec, { cadenceMs: 30 * 60_000, now }).text).toBe(
    'We have identified the root cause: Redis process exited. A mitigation is in progress. We are monitoring the situation. We will provide an update within 30 minutes.',
  );
  expect(statusPage('monitoring', rec, { cadenceMs: 0, now }).text).toBe(
    'A fix has been applied: Restart the redis container (restarted alfred-redis). We are monitoring the results.',
  );
  const closed = { ...rec, closedAt: '2026-11-27T10:42:10.000Z' };
  expect(statusPage('resolved', closed, { cadenceMs: 0, now }).text).toBe(
    'The issue has been resolved. All services are operating normally. Total duration: 42 minutes. A post-mortem will be published within 48 hours.',
  );
});

test('the scheduled update reports where the incident is', () => {
  expect(currentStage({ ...rec, rootCause: undefined })).toBe('investigating');
  expect(currentStage(rec)).toBe('identified');
  expect(currentStage({ ...rec, phase: 'RESOLVE' })).toBe('monitoring');
  expect(currentStage({ ...rec, outcome: 'resolved' })).toBe('resolved');
});

test('seed 001 initial response and resolution', () => {
  const first = initialResponse({ ...rec, summary: 'Chat requests fail with 500' }, { customer: 'Kari', cadenceMs: 30 * 60_000, now });
  expect(first.text).toContain('Hi Kari,');
  expect(first.text).toContain('**Issue**: Chat requests fail with 500');
  expect(first.text).toContain('**Status**: Investigating');
  expect(first.text).toContain('**Expected Update**: 2026-11-27T10:35:00.000Z');
  expect(first.text).toContain('**Severity**: High');
  expect(first.text).toContain("We'll keep you updated every 30 minutes.");

  const last = resolutionSummary(rec, {});
  expect(last.text).toContain('Hi there,');
  expect(last.text).toContain('**Root Cause**: Redis process exited');
  expect(last.text).toContain('**Solution**: Restart the redis container (restarted alfred-redis)');
  expect(last.text).toContain('**Verification**: PING PONG, write ok, api sees redis healthy');
});
