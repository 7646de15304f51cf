/**
 * INC-07 Quota / wallet hard-limit exhaustion, mass (seed 002). Diagnoses who was refused with 402
 * recently (api logs) and is still at their quota (SQL), who is near it, the deductions per user in
 * the last hour, and cost-calculation errors in the api logs. Calculation bug → raise to SEV-1, roll
 * the api back as a child incident (approve), then top the affected wallets back up (approve);
 * legitimate spike → a capped top-up of the affected wallets (approve), one ledger row per incident
 * and user (the top-up's idempotency key), so a retry never tops up twice. Missed billing reset (the
 * target's admin API says the running period's usage reset has not run, so last period's usage still
 * counts; seed 002: "Billing reset didn't run? → Trigger manual wallet reset") → trigger that reset
 * (approve; once per period on the target's side), no top-up. A calculation bug wins over a missed
 * reset: resetting usage would hide inflated deductions. Verify: every affected user is under their
 * quota again, i.e. their requests pass the quota gate.
 *
 * Params: `windowMinutes` (how far back to read the api logs, default 15).
 */
import { patched } from '@temporalio/workflow';
import { acts, buildSteps, runIncident, type Check, type Plan, type Runbook, type RunbookContext } from './kernel';
import type { IncidentInput, IncidentRecord } from './contracts';
import { readsTargetApiSettings } from './target-api';
import type { BillingStatus } from '../activities/target-api/billing';
import type { Deductions, QuotaUser } from '../activities/postgres/ledger';
import { usesLogMetricSettings } from './log-metric-settings';
import { setting } from './threshold-settings';
import { defineRunbook, type Decision, type StepIdOf } from './shape';

/** What this runbook is: the catalog, routes, the client script and the README's table read it. */
export const meta = defineRunbook({
  name: 'quotaExhaustion',
  scenario: 'INC-07',
  title: 'Quota / wallet hard-limit exhaustion (mass)',
  severity: 2,
  source: 'seed 002',
  alerts: ['AlfredQuotaExhaustion'],
  diagnostics: [
    'users refused with 402 recently (api logs) and still at their quota (SQL)',
    'users at / near their quota (SQL)',
    'deductions per user, last hour',
    'cost-calculation errors in the api logs',
    'billing reset for the current period (admin API: is the usage reset of the running period still due?)',
  ],
  steps: [
    { id: 'rollback-release', title: 'Calculation bug (SEV-1): roll the api back (child rollback)', risk: 'approve' },
    { id: 'topup-affected', title: 'Capped top-up of the affected wallets, one ledger row per incident and user', risk: 'approve' },
    { id: 'trigger-billing-reset', title: 'Missed billing reset: trigger the usage reset of the current period (once per period), no top-up', risk: 'approve' },
  ],
  verify: 'every affected user is under their quota again (their requests pass the quota gate)',
});

export type QuotaStep = StepIdOf<typeof meta>;

export interface QuotaFacts {
  /** Users refused with 402 in the window who are still at their quota. */
  affected: QuotaUser[];
  atLimitCount: number;
  nearLimitCount: number;
  refusedUserIds: number[];
  deductions: Deductions[];
  calcErrors: number;
  calcErrorSample?: string;
  windowMinutes: number;
  topupCap: number;
  /** `limits.topupMinQuotaPct` (absent in facts of incidents begun before it was a setting). */
  topupMinQuotaPct?: number;
  /** The billing period's reset state; absent in incidents begun before it was read. */
  billing?: BillingStatus;
}

/** Incidents begun before `logs.quotaRefused` and `logs.userId`: user ids of 402 answers in the replica's logfmt request lines (`status=402 ... user_id=11`). */
export function refusedUsers(lines: string[]): number[] {
  const ids = new Set<number>();
  for (const line of lines) {
    if (!/\bstatus=402\b/.test(line)) continue;
    const m = /\buser_id=(\d+)\b/.exec(line);
    if (m) ids.add(Number(m[1]));
  }
  return [...ids].sort((a, b) => a - b);
}

/** The numeric user ids among counted values, ascending. */
export function userIds(byUser: Record<string, number>): number[] {
  return Object.keys(byUser)
    .filter((id) => /^\d+$/.test(id))
    .map(Number)
    .sort((a, b) => a - b);
}

/** The default of `limits.topupMinQuotaPct`, and its value in incidents begun before it was a setting. */
export const TOPUP_MIN_QUOTA_PCT = 10;

/**
 * Enough for an hour at the user's recent rate (at least `minQuotaPct` of their quota, default a tenth)
 * on top of what they are over, never more than the cap.
 */
export function topupAmount(u: QuotaUser, deducted: number, cap: number, minQuotaPct = TOPUP_MIN_QUOTA_PCT): number {
  const over = Math.max(0, u.usedTokens - u.personalQuota);
  return Math.max(1, Math.min(cap, over + Math.max(deducted, Math.ceil(u.personalQuota * (minQuotaPct / 100)))));
}

async function diagnose(ctx: RunbookContext): Promise<QuotaFacts> {
  const t = ctx.target;
  const api = { target: t, component: 'api' };
  const w = ctx.input.params?.windowMinutes;
  const windowMinutes = typeof w === 'number' && w > 0 ? w : 15;
  const info = await acts.describeTarget({ target: t });
  // Incidents recorded before the billing period was read replay without that call.
  const readBilling = patched('billing-reset');
  const useSettings = usesLogMetricSettings();
  const [refused, calc, status, deductions, billing] = await Promise.all([
    useSettings
      ? acts.containerLogs({
          ...api,
          sinceSeconds: windowMinutes * 60,
          count: { refused: { pattern: 'quotaRefused', by: 'userId' }, requests: { pattern: 'status' } },
          limit: 20,
        })
      : acts.containerLogs({ ...api, sinceSeconds: windowMinutes * 60, grep: 'status=402', limit: 500 }),
    acts.containerLogs({ ...api, sinceSeconds: windowMinutes * 60, grep: 'credit_calc', limit: 5 }),
    acts.quotaStatus({ target: t, nearPct: info.thresholds.quotaNearPct }),
    // seed 002 INC-07: "WHERE created_at > now() - interval '1 hour' GROUP BY user_id ORDER BY total_deducted DESC LIMIT 20"
    acts.recentDeductions({ target: t, minutes: 60 }),
    readBilling ? acts.billingStatus({ target: t }) : Promise.resolve(undefined),
  ]);
  const refusedUserIds = useSettings && refused.counts ? userIds(refused.counts.refused?.by ?? {}) : refusedUsers(refused.lines);
  const affected = status.atLimit.filter((u) => refusedUserIds.includes(u.userId));
  ctx.finding(
    'users at / near their quota',
    status.atLimit.length === 0,
    `${status.atLimit.length} at their quota (user ids ${status.atLimit.map((u) => u.userId).join(', ') || 'none'}), ${status.nearLimit} above ${info.thresholds.quotaNearPct}% of ${status.users}`,
  );
  // No 402 among log lines that are not recognised as request lines is no evidence that nobody was
  // refused. (Incidents recorded before this rule read it as none, and replay so.)
  const evidence = patched('evidence-before-conclusions');
  const requestLines = refused.counts?.requests?.matched;
  if (evidence && useSettings && refusedUserIds.length === 0 && requestLines === 0) {
    ctx.unknown(
      `402 answers in the last ${windowMinutes} min`,
      `no request line recognised among ${refused.total} api log lines in the last ${windowMinutes} min (settings logs.status, logs.quotaRefused, logs.userId)`,
    );
  } else {
    ctx.finding(
      `402 answers in the last ${windowMinutes} min`,
      refusedUserIds.length === 0,
      `${refused.counts?.refused?.matched ?? refused.matched} refused requests from user ids ${refusedUserIds.join(', ') || 'none'}`,
    );
  }
  ctx.finding(
    'deductions per user, last hour',
    true,
    deductions.slice(0, 5).map((d) => `user ${d.userId}: ${d.deducted} in ${d.requests} requests`).join('; ') || 'none',
  );
  // Only the message is kept: a log line can carry ids and amounts but no secrets, still less is more.
  const sample = calc.lines[0] ? (/msg="([^"]*)"/.exec(calc.lines[0])?.[1] ?? 'credit_calc error') : undefined;
  ctx.finding('cost-calculation errors in the api logs', calc.matched === 0, `${calc.matched} in the last ${windowMinutes} min${sample ? `: ${sample}` : ''}`);
  if (billing) ctx.finding('billing reset for the current period', billing.available && billing.resetDue === false, billingDetail(billing));
  return {
    affected,
    atLimitCount: status.atLimit.length,
    nearLimitCount: status.nearLimit,
    refusedUserIds,
    deductions,
    calcErrors: calc.matched,
    ...(sample ? { calcErrorSample: sample } : {}),
    windowMinutes,
    topupCap: info.limits.topupCap,
    topupMinQuotaPct: setting(info.limits.topupMinQuotaPct, TOPUP_MIN_QUOTA_PCT),
    ...(billing ? { billing } : {}),
  };
}

function billingDetail(b: BillingStatus): string {
  if (!b.available) return `billing status unreadable: ${b.error ?? 'no answer'}`;
  const last = b.lastResetPeriodStart === undefined ? 'not reported' : b.lastResetPeriodStart ? `period ${b.lastResetPeriodStart} (at ${b.lastResetAt ?? '?'})` : 'never';
  const cron = b.cronEnabled === undefined ? 'not reported' : b.cronEnabled ? 'on' : 'off';
  return `period ${b.periodStart}: ${b.resetDue ? 'reset DUE, it has not run' : 'reset done'}; last reset ${last}; reset cron ${cron}${b.unreadable ? ` (${b.unreadable})` : ''}`;
}

/** Pure decision over the findings. */
export function planQuotaExhaustion(f: QuotaFacts): Decision<QuotaStep> {
  const who = `${f.affected.length} user(s) refused and at their quota (ids ${f.affected.map((u) => u.userId).join(', ')})`;
  if (f.affected.length === 0) {
    return {
      diagnosis: `no user was refused for quota in the last ${f.windowMinutes} min and is still at it (${f.atLimitCount} at their quota, ${f.nearLimitCount} near it)`,
      falseAlarm: true,
      steps: [],
    };
  }
  if (f.calcErrors > 0) {
    return {
      diagnosis: `${who}; ${f.calcErrors} cost-calculation errors in the api logs: deductions are inflated by a billing bug`,
      rootCause: `cost-calculation bug in the running release${f.calcErrorSample ? ` (${f.calcErrorSample})` : ''}`,
      severity: 1,
      steps: ['rollback-release', 'topup-affected'],
    };
  }
  const b = f.billing;
  if (b?.available && b.resetDue) {
    const cron = b.cronEnabled === false ? '; the reset cron is disabled' : '';
    return {
      diagnosis: `${who}; missed billing reset: the period starting ${b.periodStart} was never reset (last reset: ${b.lastResetPeriodStart ?? 'never'}${cron}), so last period's usage still counts`,
      rootCause: `the billing reset for the period starting ${b.periodStart} did not run${cron}`,
      steps: ['trigger-billing-reset'],
    };
  }
  return {
    diagnosis: `${who}; deductions look legitimate (no cost-calculation errors): a usage spike`,
    rootCause: 'legitimate usage spike exhausted personal quotas',
    steps: ['topup-affected'],
  };
}

const runbook: Runbook<QuotaFacts> = {
  meta,
  diagnose,
  plan(f, ctx): Plan {
    const t = ctx.target;
    const p = planQuotaExhaustion(f);
    const ids = f.affected.map((u) => u.userId);
    const period = f.billing?.periodStart;
    const grants = f.affected.map((u) => ({
      user: u,
      amount: topupAmount(u, f.deductions.find((d) => d.userId === u.userId)?.deducted ?? 0, f.topupCap, setting(f.topupMinQuotaPct, TOPUP_MIN_QUOTA_PCT)),
    }));
    const stillAtLimit = async (): Promise<Check> => {
      const s = await acts.quotaStatus({ target: t, nearPct: 100, userIds: ids });
      return { ok: s.atLimit.length > 0, detail: `${s.atLimit.length} of ${ids.length} affected users still at their quota` };
    };
    const steps = buildSteps(meta, p.steps, {
      'rollback-release': () => ({
        resource: 'child:rollback',
        describe: `open a rollback of the api on ${t} to its last known good release (this approval covers the rollback's first step)`,
        run: async () => {
          const child = await ctx.child('rollback', {
            reason: 'cost-calculation bug inflating deductions',
            stepId: 'rollback-release',
            params: { services: ['api'], reason: 'INC-07 cost-calculation bug' },
          });
          if (child.outcome !== 'resolved' && child.outcome !== 'false-alarm') {
            throw new Error(`rollback child ${child.incidentId} ended ${child.outcome ?? 'without an outcome'}`);
          }
          return `rollback child ${child.incidentId} ${child.outcome}: ${child.diagnosis ?? ''}`;
        },
      }),
      'topup-affected': () => ({
        resource: 'wallets',
        describe: `top up ${grants.map((g) => `wallet ${g.user.walletId ?? '?'} (user ${g.user.userId}) by ${g.amount}`).join(', ')}; cap ${f.topupCap} per wallet, one ledger row per incident and user`,
        precondition: stillAtLimit,
        run: async () => {
          const done: string[] = [];
          for (const g of grants) {
            if (g.user.walletId === null) {
              done.push(`user ${g.user.userId} has no wallet`);
              continue;
            }
            const reason = `${ctx.incidentId}: INC-07 quota exhaustion`;
            // Keyed by incident and user: a retried or repeated step finds its ledger row and adds nothing.
            const idempotencyKey = `${ctx.incidentId}:user-${g.user.userId}`;
            if (readsTargetApiSettings()) {
              const r = await acts.topUpWallet({ target: t, walletId: g.user.walletId, amount: g.amount, reason, idempotencyKey });
              done.push(r.detail);
              continue;
            }
            const r = await acts.adminRequest({
              target: t,
              method: 'POST',
              path: `/v1/wallets/${g.user.walletId}/topup`,
              body: { amount: g.amount, reason, idempotency_key: idempotencyKey },
            });
            const b = r.body as { topup_id?: number; idempotent?: boolean };
            done.push(`wallet ${g.user.walletId} +${g.amount} (top-up #${b.topup_id ?? '?'}${b.idempotent ? ', already done' : ''})`);
          }
          return done.join('; ');
        },
      }),
      'trigger-billing-reset': () => ({
        resource: `billing:${t}`,
        describe: `trigger the billing reset of ${t} (its admin API, api.paths.billingReset): zero the usage of every non-admin user for the period starting ${period ?? '?'} (recorded once per period: a repeat changes nothing)`,
        precondition: async () => {
          const b = await acts.billingStatus({ target: t });
          const due = b.available && b.resetDue === true && b.periodStart === period;
          return { ok: due, detail: due ? `the reset of the period starting ${period} is still due` : billingDetail(b) };
        },
        run: async () => {
          // The period is named so a reset never lands in a period that began after the diagnosis.
          if (readsTargetApiSettings()) return (await acts.resetBilling({ target: t, periodStart: period })).detail;
          const r = await acts.adminRequest({ target: t, method: 'POST', path: '/v1/admin/billing/reset', body: { period_start: period } });
          const b = r.body as { period_start?: string; users_reset?: number; idempotent?: boolean };
          return `period ${b.period_start ?? period}: usage of ${b.users_reset ?? '?'} users reset${b.idempotent ? ' (it had already run: nothing changed)' : ''}`;
        },
      }),
    });
    return { ...p, steps };
  },
  async verify(ctx, f): Promise<Check> {
    const ids = f.affected.map((u) => u.userId);
    const s = await acts.quotaStatus({ target: ctx.target, nearPct: 100, userIds: ids });
    return {
      ok: s.atLimit.length === 0,
      detail: s.atLimit.length === 0 ? `all ${ids.length} affected users are under their quota: their requests pass the quota gate` : `still at their quota: user ids ${s.atLimit.map((u) => u.userId).join(', ')}`,
    };
  },
};

/** INC-07: quota / wallet hard-limit exhaustion. */
export async function quotaExhaustion(input: IncidentInput): Promise<IncidentRecord> {
  return runIncident(runbook, input);
}
