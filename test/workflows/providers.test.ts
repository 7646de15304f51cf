/**
 * INC-02 and INC-03 drills on the real drill target: providers really answer 502 (the in-process
 * 'provider-errors' fault), real chat traffic flows through the gateway while the runbooks measure
 * it, and their effects are read back from the governance API.
 */
import { readFileSync } from 'node:fs';
import { runFault } from '../../drill/src/faults/catalog';
import { approveSignal, closeSignal, guardWorkflowId } from '../../src/workflows/contracts';
import { drillContainer, startEngine, waitUntil, type Engine } from '../helpers/engine';
import { API, adminKey, health, processFault } from '../helpers/drill';

jest.setTimeout(180_000);

let engine: Engine;

/** Real chat completions, a few per second, from rotating documentation addresses (under the rate limit). */
class ChatLoad {
  private running = false;
  private loop: Promise<void> | undefined;
  private n = 0;
  statuses: Record<string, number> = {};

  start(model = 'gpt-4o-mini', perSecond = 6): void {
    this.running = true;
    this.loop = (async () => {
      while (this.running) {
        await Promise.all(Array.from({ length: perSecond }, () => this.one(model)));
        await new Promise((r) => setTimeout(r, 1000));
      }
    })();
  }

  private async one(model: string): Promise<void> {
    const n = this.n++;
    try {
      const res = await fetch(`${API}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: 'Bearer test-key-2', 'content-type': 'application/json', 'x-forwarded-for': `198.51.100.${(n % 200) + 1}` },
        // A prompt never seen before: a cache hit would not reach a provider.
        body: JSON.stringify({ model, messages: [{ role: 'user', content: `load ${Date.now()} ${n}` }] }),
        signal: AbortSignal.timeout(10_000),
      });
      await res.text();
      this.statuses[res.status] = (this.statuses[res.status] ?? 0) + 1;
    } catch {
      this.statuses.error = (this.statuses.error ?? 0) + 1;
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }
}

async function admin(method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(`${API}${path}`, {
    method,
    headers: { authorization: `Bearer ${adminKey()}`, 'content-type': 'application/json' },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  if (!res.ok) throw new Error(`${method} ${path}: HTTP ${res.status} ${await res.text()}`);
  return (await res.json()) as Record<string, unknown>;
}

async function governance(): Promise<{ cache_only_mode: boolean; disabled_providers: string[] }> {
  return (await admin('GET', '/v1/governance/settings')).settings as { cache_only_mode: boolean; disabled_providers: string[] };
}

/** Every provider enabled, none failing, cache-only off: the drill as a test finds it. */
async function restoreProviders(): Promise<void> {
  await processFault('provider-errors', false);
  for (const provider of ['openai', 'anthropic', 'google']) await admin('POST', '/v1/governance/providers/enable', { provider, reason: 'drill reset' });
  await admin('POST', '/v1/governance/settings', { cache_only_mode: false, reason: 'drill reset' });
}

const load = new ChatLoad();

beforeAll(async () => {
  engine = await startEngine();
  // Governance calls need working admin sign-in: a drill left with SSO down is put right first
  // (runFault's second argument is `undo`).
  await runFault('sso-down', true);
  await restoreProviders();
  // The SLA window lives in the api's memory: a restart gives these drills a clean 300 s window.
  await (await drillContainer(engine.docker, 'api')).restart({ t: 5 });
  await waitUntil('api healthy', async () => (await health())?.status === 'ok');
});

afterEach(async () => {
  await load.stop();
  await restoreProviders();
});

afterAll(async () => {
  await restoreProviders();
  for (const resource of ['governance', 'upstream']) {
    await engine.client.workflow
      .getHandle(guardWorkflowId('alfred', resource))
      .terminate('test finished')
      .catch(() => undefined);
  }
  await engine.stop();
});

const FAST = { graceSeconds: 3, sampleSeconds: 3 };

describe('INC-02 providerDown', () => {
  test('healthy providers are a false alarm: nothing is done', async () => {
    const h = await engine.start({ runbook: 'providerDown', target: 'alfred', params: FAST });
    const rec = await engine.result(h);
    expect(rec.outcome).toBe('false-alarm');
    expect(rec.actions).toEqual([]);
    expect(rec.findings.find((f) => f.check === 'SLA error rate openai')?.ok).toBe(true);
    expect((await governance()).disabled_providers).toEqual([]);
  });

  test('openai failing without failover: disabled in the governance API after approval, owners notified', async () => {
    await processFault('provider-errors', true, { providers: ['openai'], no_failover: true });
    load.start();
    await waitUntil('openai errors in the SLA window', async () => {
      const m = (await admin('GET', '/v1/notifications/sla/metrics')).metrics as { provider_error_rates: Record<string, number> };
      return (m.provider_error_rates.openai ?? 0) > 50;
    });
    const before = ((await admin('GET', '/v1/drill/counters')).counters as Record<string, number>).provider_disables ?? 0;

    const h = await engine.start({ runbook: 'providerDown', target: 'alfred', params: FAST });
    const waiting = await engine.waitFor(h, (s) => s.pending.some((p) => p.stepId === 'disable-provider-openai'));
    expect(waiting.diagnosis).toMatch(/openai still failing .* failover is not effective/);
    expect((await governance()).disabled_providers).toEqual([]);
    await h.signal(approveSignal, { incidentId: h.workflowId, stepId: 'disable-provider-openai', approver: 'alice' });
    const rec = await engine.result(h);

    expect(rec.outcome).toBe('resolved');
    expect(rec.actions).toEqual([expect.objectContaining({ stepId: 'disable-provider-openai', state: 'done', approvals: ['alice'] })]);
    expect((await governance()).disabled_providers).toEqual(['openai']);
    expect(((await admin('GET', '/v1/drill/counters')).counters as Record<string, number>).provider_disables).toBe(before + 1);
    expect(rec.timeline.some((t) => /notified @llm-platform, @openai-account-owner: openai disabled/.test(t.event))).toBe(true);
    expect(rec.timeline.some((t) => /verification passed: openai no calls/.test(t.event))).toBe(true);
  });

  test('provider counters the metric settings do not find are no evidence: escalated, never "recovered"', async () => {
    await processFault('provider-errors', true, { providers: ['openai'], no_failover: true });
    load.start();
    await waitUntil('openai errors in the SLA window', async () => {
      const m = (await admin('GET', '/v1/notifications/sla/metrics')).metrics as { provider_error_rates: Record<string, number> };
      return (m.provider_error_rates.openai ?? 0) > 50;
    });
    // An engine that looks for the provider counter under another name: /metrics has none such.
    const other = await startEngine({
      configure: (c) => {
        (c.targets.alfred as (typeof c.targets)[string]).metrics.providerRequests.name = 'gateway_upstream_calls_total';
      },
    });
    try {
      const h = await other.start({ runbook: 'providerDown', target: 'alfred', params: FAST });
      const rec = await other.waitFor(h, (s) => s.phase === 'ESCALATED');
      expect(rec.findings.find((f) => f.check === 'openai after the grace period')).toMatchObject({ ok: false, unknown: true, detail: expect.stringMatching(/^no calls to openai in 3 s$/) });
      expect(rec.escalations.join(' ')).toMatch(/cannot tell whether openai recovered on alfred: could not observe calls to it after the grace period/);
      expect(rec.actions).toEqual([]);
      expect((await governance()).disabled_providers).toEqual([]);
      await h.signal(closeSignal, { incidentId: h.workflowId, by: 'alice', note: 'checked by hand' });
      expect((await other.result(h)).outcome).toBe('escalated');
    } finally {
      await other.stop();
    }
  });

  test('a provider that recovers during the grace period: no action', async () => {
    await processFault('provider-errors', true, { providers: ['openai'], no_failover: true });
    load.start();
    const h = await engine.start({ runbook: 'providerDown', target: 'alfred', params: { graceSeconds: 4, sampleSeconds: 3 } });
    await engine.waitFor(h, (s) => s.timeline.some((t) => /grace period/.test(t.event)));
    await processFault('provider-errors', false);
    const rec = await engine.result(h);
    expect(rec.outcome).toBe('resolved');
    expect(rec.diagnosis).toMatch(/openai recovered during the 4 s grace period: no action/);
    expect(rec.actions).toEqual([]);
    expect((await governance()).disabled_providers).toEqual([]);
  });

  test('a failing provider whose traffic fails over: no action, owners told', async () => {
    await processFault('provider-errors', true, { providers: ['openai'] });
    load.start();
    await waitUntil('openai errors in the SLA window', async () => {
      const m = (await admin('GET', '/v1/notifications/sla/metrics')).metrics as { provider_error_rates: Record<string, number> };
      return (m.provider_error_rates.openai ?? 0) > 10;
    });
    const h = await engine.start({ runbook: 'providerDown', target: 'alfred', params: FAST });
    const rec = await engine.result(h);
    expect(rec.outcome).toBe('resolved');
    expect(rec.diagnosis).toMatch(/openai still failing, but failover is effective/);
    expect(rec.actions).toEqual([]);
    expect(rec.timeline.some((t) => /notified @llm-platform, @openai-account-owner: openai failing/.test(t.event))).toBe(true);
    expect((await governance()).disabled_providers).toEqual([]);
  });
});

describe('INC-03 allProvidersDown', () => {
  test('providers that answer are a false alarm: cache-only stays off', async () => {
    const h = await engine.start({ runbook: 'allProvidersDown', target: 'alfred', params: { pollSeconds: 1, recoveryDeadlineSeconds: 30 } });
    const rec = await engine.result(h);
    expect(rec.outcome).toBe('false-alarm');
    expect(rec.actions).toEqual([]);
    expect(rec.findings.find((f) => f.check === 'egress + DNS openai')?.detail).toMatch(/DNS localhost → .*; HTTP 200/);
    expect((await governance()).cache_only_mode).toBe(false);
  });

  test('probes the providers refuse (HTTP 401) are no outage: escalated, cache-only stays off', async () => {
    // An engine whose probe URLs need a key: every provider answers the probe with 401.
    const refusing = await startEngine({
      configure: (c) => {
        for (const p of Object.values((c.targets.alfred as (typeof c.targets)[string]).providers)) p.url = 'http://localhost:58000/v1/users/me';
      },
    });
    try {
      const h = await refusing.start({ runbook: 'allProvidersDown', target: 'alfred', params: { pollSeconds: 1, recoveryDeadlineSeconds: 30 } });
      const rec = await refusing.waitFor(h, (s) => s.phase === 'ESCALATED');
      expect(rec.findings.find((f) => f.check === 'egress + DNS openai')?.detail).toMatch(/; HTTP 401$/);
      expect(rec.escalations.join(' ')).toMatch(/cannot tell whether every provider of alfred is down: openai HTTP 401, .* answered the probe with a refusal/);
      expect(rec.actions).toEqual([]);
      expect((await governance()).cache_only_mode).toBe(false);
      await h.signal(closeSignal, { incidentId: h.workflowId, by: 'alice', note: 'checked by hand' });
      expect((await refusing.result(h)).outcome).toBe('escalated');
    } finally {
      await refusing.stop();
    }
  });

  test('every provider down: cache-only on with a status update, then off after recovery and approval', async () => {
    await processFault('provider-errors', true, { providers: ['openai', 'anthropic', 'google'] });
    // Users see 502s (the SLA window of this api also holds the earlier drills' successes).
    load.start('claude-3-haiku');
    await waitUntil('chat completions failing with 502', async () => (load.statuses['502'] ?? 0) > 5);
    await load.stop();

    const h = await engine.start({ runbook: 'allProvidersDown', target: 'alfred', params: { pollSeconds: 1, recoveryDeadlineSeconds: 120 } });
    const mid = await engine.waitFor(h, (s) => s.actions.some((a) => a.stepId === 'await-providers' && a.state === 'running'));
    expect((await governance()).cache_only_mode).toBe(true);
    expect(mid.diagnosis).toMatch(/every provider fails .*openai HTTP 502.*: upstream outage/);
    expect(mid.actions.find((a) => a.stepId === 'enable-cache-only')?.state).toBe('done');
    const posted = readFileSync(engine.config.notify.file as string, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { incidentId?: string; kind?: string; stage?: string; text?: string })
      .filter((n) => n.incidentId === h.workflowId && n.kind === 'status');
    expect(posted.some((n) => n.stage === 'identified' && /Cached responses remain available/.test(n.text ?? ''))).toBe(true);

    // The providers come back; leaving cache-only waits for a human.
    await processFault('provider-errors', false);
    await engine.waitFor(h, (s) => s.pending.some((p) => p.stepId === 'leave-cache-only'));
    expect((await governance()).cache_only_mode).toBe(true);
    await h.signal(approveSignal, { incidentId: h.workflowId, stepId: 'leave-cache-only', approver: 'bob' });
    const rec = await engine.result(h);

    expect(rec.outcome).toBe('resolved');
    expect(rec.severity).toBe(1);
    expect(rec.actions.map((a) => [a.stepId, a.state])).toEqual([
      ['enable-cache-only', 'done'],
      ['await-providers', 'done'],
      ['leave-cache-only', 'done'],
    ]);
    expect((await governance()).cache_only_mode).toBe(false);
    expect(rec.timeline.some((t) => /status update posted/.test(t.event))).toBe(true);
    expect(rec.timeline.some((t) => /verification passed: live test completion .* answered correctly via openai/.test(t.event))).toBe(true);
  });
});
