/**
 * INC-06 Authentication failure (seed 002). Can the admin key sign in (GET /v1/users/me), does the
 * stored key hash still belong to the configured key, is the users table reachable, and why do the
 * api's logs say keys are refused. Database problem → child INC-01; SSO provider down while the api
 * requires it → recreate the api with SSO_REQUIRED=false (approve); a recent deploy refusing keys →
 * child rollback (approve). Verify: /v1/users/me returns the admin's email.
 *
 * Params: `deployWindowMinutes` (a deploy this recent is a suspect, default 60).
 */
import { acts, longActs, runIncident, type Check, type Plan, type Runbook, type RunbookContext, type Step } from './kernel';
import type { IncidentInput, IncidentRecord } from './contracts';
import type { AuthErrors, KeyHashCheck, WhoAmI } from '../activities/target-api/auth';
import { childIncidentStep } from './child-step';
import { usesLogMetricSettings } from './log-metric-settings';

export interface AuthFacts {
  me: WhoAmI;
  keyHash: KeyHashCheck;
  /** What the api's /health says about its database ('healthy', 'unhealthy'), if it answered. */
  apiDatabase?: string;
  authErrors: AuthErrors;
  ssoRequired: boolean;
  api: { tag: string; createdAt: string; lastGoodTag: string | null };
  /** Workflow time of the diagnosis, to judge how recent the deploy is. */
  now: number;
  deployWindowMinutes: number;
}

const API = 'api';
const SSO_FLAG = 'SSO_REQUIRED';
/** The replica's reason, as incidents begun before `logs.ssoUnreachable` read it. */
const LEGACY_SSO_REASON = 'sso_provider_unreachable';
const LOG_WINDOW_SECONDS = 900;

async function diagnose(ctx: RunbookContext): Promise<AuthFacts> {
  const t = ctx.target;
  // users/me first: its own refusal is then in the logs read below.
  const me = await acts.whoAmI({ target: t });
  ctx.finding(
    'GET /v1/users/me (admin key)',
    me.status === 200 && me.isAdmin === true,
    me.status === 200 ? `200 as ${me.email ?? '?'}${me.isAdmin ? ' (admin)' : ' (not admin)'}` : `${me.status || 'no answer'}: ${me.error ?? ''}`,
  );
  const useSettings = usesLogMetricSettings();
  const [keyHash, health, found, sso, release, good] = await Promise.all([
    acts.adminKeyHashCheck({ target: t }),
    acts.httpHealth({ target: t }),
    acts.authErrorsInLogs({ target: t, component: API, sinceSeconds: LOG_WINDOW_SECONDS }),
    acts.containerEnvFlag({ target: t, component: API, name: SSO_FLAG }),
    acts.releaseInfo({ target: t, component: API }),
    acts.lastKnownGoodTag({ target: t, component: API }),
  ]);
  // Older incidents decided on the replica's reason: they keep doing so when replayed.
  const authErrors: AuthErrors = useSettings ? found : { total: found.total, byReason: found.byReason };
  ctx.finding(
    'users table',
    keyHash.reachable,
    keyHash.reachable ? 'reachable' : `unreachable: ${keyHash.error ?? 'unknown error'}`,
  );
  if (keyHash.reachable) {
    ctx.finding(
      'key-hash self-check',
      keyHash.matches,
      keyHash.matches ? `the stored hash belongs to the configured admin key (${keyHash.email ?? '?'})` : 'no user holds the hash of the configured admin key',
    );
  }
  const apiDatabase = typeof health.body?.database === 'string' ? health.body.database : undefined;
  if (apiDatabase) ctx.finding('api /health database', apiDatabase === 'healthy', apiDatabase);
  const reasons = Object.entries(authErrors.byReason).map(([r, n]) => `${r} ×${n}`).join(', ');
  ctx.finding('auth errors in api logs', authErrors.total === 0, `${authErrors.total} in ${LOG_WINDOW_SECONDS / 60} min${reasons ? ` (${reasons})` : ''}`);
  const ssoRequired = sso.value === 'true';
  ctx.finding(SSO_FLAG, !ssoRequired, sso.set ? `${SSO_FLAG}=${sso.value ?? '?'}` : 'not set (false)');
  ctx.finding('api release', true, `${release.tag}, container created ${release.containerCreatedAt}; last known good ${good.tag ?? 'none'}`);
  const window = ctx.input.params?.deployWindowMinutes;
  return {
    me,
    keyHash,
    ...(apiDatabase ? { apiDatabase } : {}),
    authErrors,
    ssoRequired,
    api: { tag: release.tag, createdAt: release.containerCreatedAt, lastGoodTag: good.tag },
    now: Date.now(),
    deployWindowMinutes: typeof window === 'number' && window > 0 ? window : 60,
  };
}

export type AuthStep = 'database-incident' | 'disable-sso' | 'rollback-release';

/** Pure decision over the findings. */
export function planAuthFailure(f: AuthFacts): Omit<Plan, 'steps'> & { steps: AuthStep[] } {
  if (f.me.status === 200 && f.me.isAdmin === true) {
    return { diagnosis: `the admin key signs in (${f.me.email ?? '?'}): authentication works`, falseAlarm: true, steps: [] };
  }
  if (!f.keyHash.reachable || f.apiDatabase === 'unhealthy') {
    return {
      diagnosis: `keys cannot be checked: the users table is ${f.keyHash.reachable ? 'reachable but the api reports its database unhealthy' : `unreachable (${f.keyHash.error ?? 'error'})`}`,
      rootCause: 'Database problem behind authentication',
      steps: ['database-incident'],
    };
  }
  const ssoRefusals = f.authErrors.ssoUnreachable ?? f.authErrors.byReason[LEGACY_SSO_REASON] ?? 0;
  if (f.ssoRequired && ssoRefusals > 0) {
    return {
      diagnosis: `the SSO provider is unreachable and the api requires it (${SSO_FLAG}=true): ${ssoRefusals} keys refused`,
      rootCause: 'SSO provider down while SSO is required',
      steps: ['disable-sso'],
    };
  }
  const otherRefusals = f.authErrors.total - ssoRefusals;
  const deployAgeMin = (f.now - Date.parse(f.api.createdAt)) / 60_000;
  if (deployAgeMin <= f.deployWindowMinutes && otherRefusals > 0 && f.api.lastGoodTag && f.api.lastGoodTag !== f.api.tag) {
    return {
      diagnosis: `api ${f.api.tag} deployed ${Math.max(0, Math.round(deployAgeMin))} min ago refuses keys (${otherRefusals} auth errors) although the stored key hash ${f.keyHash.matches ? 'matches' : 'does not match'}: bad deploy`,
      rootCause: `Release ${f.api.tag} broke authentication`,
      steps: ['rollback-release'],
    };
  }
  if (!f.keyHash.matches) {
    return {
      diagnosis: 'no user holds the hash of the configured admin key: the key was rotated or the configuration is stale',
      rootCause: 'Admin key and stored hash disagree',
      escalate: 'the stored admin key hash does not match the configured key; a human must reconcile the key (no automatic remedy)',
      steps: [],
    };
  }
  return {
    diagnosis: `the admin key is refused (${f.me.status || 'no answer'}) with no database, SSO or recent-deploy cause found`,
    escalate: 'authentication fails for an unknown reason; a human must investigate',
    steps: [],
  };
}

const runbook: Runbook<AuthFacts> = {
  name: 'authFailure',
  diagnose,
  plan(f, ctx): Plan {
    const t = ctx.target;
    const p = planAuthFailure(f);
    const ssoStillRequired = async (): Promise<Check> => {
      const sso = await acts.containerEnvFlag({ target: t, component: API, name: SSO_FLAG });
      return { ok: sso.value === 'true', detail: `${SSO_FLAG}=${sso.value ?? 'unset'}` };
    };
    const stillRefused = async (): Promise<Check> => {
      const me = await acts.whoAmI({ target: t });
      return { ok: me.status !== 200, detail: `/v1/users/me answers ${me.status || 'nothing'}` };
    };
    const build: Record<AuthStep, () => Step> = {
      'database-incident': () =>
        childIncidentStep(ctx, {
          id: 'database-incident',
          title: 'Open a child INC-01 (database unreachable) incident',
          risk: 'auto',
          runbook: 'databaseUnreachable',
          reason: `INC-06 on ${t}: ${p.diagnosis}`,
        }),
      'disable-sso': () => ({
        id: 'disable-sso',
        title: `Set ${SSO_FLAG}=false and recreate the api`,
        risk: 'approve',
        resource: API,
        describe: `recreate the api container with ${SSO_FLAG}=false, keeping its image and every other setting`,
        precondition: ssoStillRequired,
        run: async () => (await longActs.recreateContainer({ target: t, component: API, env: { [SSO_FLAG]: 'false' } })).detail,
      }),
      'rollback-release': () =>
        childIncidentStep(ctx, {
          id: 'rollback-release',
          title: `Roll the api back from ${f.api.tag} to ${f.api.lastGoodTag ?? '?'} (child rollback)`,
          risk: 'approve',
          runbook: 'rollback',
          reason: `INC-06 on ${t}: ${p.diagnosis}`,
          // The tag the approver saw in the title, not one the child might choose differently.
          params: { services: [API], tag: f.api.lastGoodTag, reason: `INC-06 bad deploy ${f.api.tag}` },
          precondition: stillRefused,
        }),
    };
    return { ...p, steps: p.steps.map((id) => build[id]()) };
  },
  async verify(ctx, f): Promise<Check> {
    const [me, keyHash] = await Promise.all([acts.whoAmI({ target: ctx.target }), acts.adminKeyHashCheck({ target: ctx.target })]);
    const expected = keyHash.email ?? f.keyHash.email;
    const ok = me.status === 200 && me.isAdmin === true && (expected === undefined || me.email === expected);
    return {
      ok,
      detail: me.status === 200 ? `/v1/users/me returns ${me.email ?? '?'}${expected && me.email !== expected ? ` (expected ${expected})` : ''}` : `/v1/users/me answers ${me.status || 'nothing'}`,
    };
  },
};

/** INC-06: authentication failure. */
export async function authFailure(input: IncidentInput): Promise<IncidentRecord> {
  return runIncident(runbook, input);
}
