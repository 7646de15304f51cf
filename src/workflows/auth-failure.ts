/**
 * INC-06 Authentication failure (seed 002). Can the admin key sign in (GET /v1/users/me), does the
 * stored key hash still belong to the configured key, is the users table reachable, and why do the
 * api's logs say keys are refused. Database problem → child INC-01; SSO provider down while the api
 * requires it → recreate the api with SSO_REQUIRED=false (approve); a recent deploy refusing keys →
 * child rollback (approve). Verify: /v1/users/me returns the admin's email.
 *
 * Params: `deployWindowMinutes` (a deploy this recent is a suspect, default 60).
 */
import { ActivityFailure, ApplicationFailure, patched } from '@temporalio/workflow';
import { acts, buildSteps, longActs, runIncident, type Check, type Plan, type Runbook, type RunbookContext } from './kernel';
import type { IncidentInput, IncidentRecord } from './contracts';
import type { AuthErrors, KeyHashCheck, WhoAmI } from '../activities/target-api/auth';
import { childIncidentStep } from './child-step';
import { usesLogMetricSettings } from './log-metric-settings';
import { setting } from './threshold-settings';
import { defineRunbook, type Decision, type StepIdOf } from './shape';

/** What this runbook is: the catalog, routes, the client script and the README's table read it. */
export const meta = defineRunbook({
  name: 'authFailure',
  scenario: 'INC-06',
  title: 'Authentication failure',
  severity: 1,
  source: 'seed 002',
  alerts: ['AlfredAuthFailures', 'AuthFailure'],
  diagnostics: [
    'GET /v1/users/me with the admin key',
    'key-hash self-check (stored hash vs the configured key, compared by hash)',
    'users table reachable',
    'auth errors in the api logs, by reason',
    'SSO_REQUIRED in the api container and its last deploy',
  ],
  steps: [
    { id: 'database-incident', title: 'Database problem: child INC-01 incident', risk: 'auto' },
    { id: 'disable-sso', title: 'SSO provider down: set SSO_REQUIRED=false and recreate the api', risk: 'approve' },
    { id: 'rollback-release', title: 'Bad deploy: child rollback incident', risk: 'approve' },
  ],
  verify: '/v1/users/me returns the admin email',
});

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
  /** Only observed signals count (absent in facts of incidents begun before this rule). */
  evidenceRule?: boolean;
  /** Why the sign-in's answer or the key-hash self-check could not be read (a setting that names what the target lacks). */
  meUnreadable?: string;
  keyHashUnreadable?: string;
  /** Why /health said nothing about the database. */
  apiDatabaseUnreadable?: string;
}

/** A signal that could not be observed, and why (naming the setting that points at it). */
export interface Unobserved {
  check: string;
  why: string;
}

export const ME_CHECK = 'GET /v1/users/me (admin key)';
export const KEY_HASH_CHECK = 'key-hash self-check';
export const AUTH_ERRORS_CHECK = 'auth errors in api logs';

/** Pure: the admin key was refused (an answer, not a failure to ask). */
const refused = (me: WhoAmI): boolean => me.status === 401 || me.status === 403;

/**
 * Pure: what these facts could not observe. An answer without the admin flag, a self-check over a
 * column the users table lacks, a /health without its database, and api logs that do not show the
 * refusal of the engine's own sign-in are not health. Facts of incidents begun before this rule have none.
 */
export function unobservedAuth(f: AuthFacts): Unobserved[] {
  if (!f.evidenceRule) return [];
  const out: Unobserved[] = [];
  if (f.meUnreadable !== undefined) out.push({ check: ME_CHECK, why: f.meUnreadable });
  else if (f.me.status === 200 && f.me.isAdmin === undefined) out.push({ check: ME_CHECK, why: 'the answer does not say whether the key is an admin\'s (setting api.fields.usersMe.isAdmin)' });
  if (f.keyHashUnreadable !== undefined) out.push({ check: KEY_HASH_CHECK, why: f.keyHashUnreadable });
  if (f.apiDatabaseUnreadable !== undefined) out.push({ check: 'api /health database', why: f.apiDatabaseUnreadable });
  if (refused(f.me) && f.authErrors.total === 0) {
    out.push({ check: AUTH_ERRORS_CHECK, why: `the refusal of the admin key (HTTP ${f.me.status}) is not among the api's log lines of the last ${LOG_WINDOW_SECONDS / 60} min (setting logs.authFailed)` });
  }
  return out;
}

/** A failure that names a setting the target does not match (NotConfigured): unknown, not a verdict. */
function settingFailure(err: unknown): string | undefined {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  return cause instanceof ApplicationFailure && cause.type === 'NotConfigured' ? cause.message : undefined;
}

const API = 'api';
const SSO_FLAG = 'SSO_REQUIRED';
/** The replica's reason, as incidents begun before `logs.ssoUnreachable` read it. */
const LEGACY_SSO_REASON = 'sso_provider_unreachable';
/**
 * seed 002 INC-06: "docker compose logs api --since 5m | grep -i "auth\|401\|unauthori"". The engine
 * reads 15 minutes, not the seed's 5.
 */
const LOG_WINDOW_SECONDS = 900;
/** The default of `thresholds.recentDeployMinutes`, and the window of incidents begun before it was read. */
export const DEPLOY_WINDOW_MINUTES = 60;

async function diagnose(ctx: RunbookContext): Promise<AuthFacts> {
  const t = ctx.target;
  // users/me first: its own refusal is then in the logs read below.
  const evidence = patched('evidence-before-conclusions');
  // An answer that lacks what the settings name is unknown. (Incidents begun before this rule failed
  // their diagnosis on it, and replay so.)
  const unreadable = (err: unknown): string => {
    const why = evidence ? settingFailure(err) : undefined;
    if (why === undefined) throw err;
    return why;
  };
  let meUnreadable: string | undefined;
  const me = await acts.whoAmI({ target: t }).catch((err: unknown): WhoAmI => {
    meUnreadable = unreadable(err);
    return { status: 0 };
  });
  // Recorded as unknown below.
  const meUnknown = evidence && (meUnreadable !== undefined || (me.status === 200 && me.isAdmin === undefined));
  if (!meUnknown) {
    ctx.finding(
      ME_CHECK,
      me.status === 200 && me.isAdmin === true,
      me.status === 200 ? `200 as ${me.email ?? '?'}${me.isAdmin ? ' (admin)' : ' (not admin)'}` : `${me.status || 'no answer'}: ${me.error ?? ''}`,
    );
  }
  const useSettings = usesLogMetricSettings();
  let keyHashUnreadable: string | undefined;
  const [keyHash, health, found, sso, release, good] = await Promise.all([
    acts.adminKeyHashCheck({ target: t }).catch((err: unknown): KeyHashCheck => {
      keyHashUnreadable = unreadable(err);
      return { reachable: true, matches: false };
    }),
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
  if (keyHash.reachable && keyHashUnreadable === undefined) {
    ctx.finding(
      KEY_HASH_CHECK,
      keyHash.matches,
      keyHash.matches ? `the stored hash belongs to the configured admin key (${keyHash.email ?? '?'})` : 'no user holds the hash of the configured admin key',
    );
  }
  const apiDatabase = typeof health.body?.database === 'string' ? health.body.database : undefined;
  if (apiDatabase) ctx.finding('api /health database', apiDatabase === 'healthy', apiDatabase);
  const apiDatabaseUnreadable =
    evidence && !apiDatabase ? `GET /health answered ${health.status || 'nothing'} without a database field${health.error ? `: ${health.error}` : ''}` : undefined;
  const reasons = Object.entries(authErrors.byReason).map(([r, n]) => `${r} ×${n}`).join(', ');
  const facts: AuthFacts = {
    me,
    keyHash,
    ...(apiDatabase ? { apiDatabase } : {}),
    authErrors,
    ssoRequired: sso.value === 'true',
    api: { tag: release.tag, createdAt: release.containerCreatedAt, lastGoodTag: good.tag },
    now: Date.now(),
    deployWindowMinutes: DEPLOY_WINDOW_MINUTES,
    ...(evidence ? { evidenceRule: true } : {}),
    ...(meUnreadable !== undefined ? { meUnreadable } : {}),
    ...(keyHashUnreadable !== undefined ? { keyHashUnreadable } : {}),
    ...(apiDatabaseUnreadable !== undefined ? { apiDatabaseUnreadable } : {}),
  };
  const unknown = unobservedAuth(facts);
  for (const u of unknown) ctx.unknown(u.check, u.why);
  if (!unknown.some((u) => u.check === AUTH_ERRORS_CHECK)) ctx.finding(AUTH_ERRORS_CHECK, authErrors.total === 0, `${authErrors.total} in ${LOG_WINDOW_SECONDS / 60} min${reasons ? ` (${reasons})` : ''}`);
  const ssoRequired = sso.value === 'true';
  ctx.finding(SSO_FLAG, !ssoRequired, sso.set ? `${SSO_FLAG}=${sso.value ?? '?'}` : 'not set (false)');
  ctx.finding('api release', true, `${release.tag}, container created ${release.containerCreatedAt}; last known good ${good.tag ?? 'none'}`);
  const window = ctx.input.params?.deployWindowMinutes;
  // The target's window for a recent deploy. (Incidents recorded before it was a setting did not
  // read it, and replay with the old constant.)
  const targetWindow = patched('threshold-settings')
    ? setting((await acts.describeTarget({ target: t })).thresholds.recentDeployMinutes, DEPLOY_WINDOW_MINUTES)
    : DEPLOY_WINDOW_MINUTES;
  return { ...facts, deployWindowMinutes: typeof window === 'number' && window > 0 ? window : targetWindow };
}

export type AuthStep = StepIdOf<typeof meta>;

/** Pure decision over the findings. */
export function planAuthFailure(f: AuthFacts): Decision<AuthStep> {
  const unknown = unobservedAuth(f);
  const cannot = (checks: string[]): Decision<AuthStep> | undefined => {
    const u = unknown.filter((x) => checks.includes(x.check));
    if (u.length === 0) return undefined;
    const list = u.map((x) => `could not observe ${x.check}: ${x.why}`).join('; ');
    return { diagnosis: list, escalate: list, steps: [] };
  };
  // Whether the admin key signs in is what every branch rests on.
  const me = cannot([ME_CHECK]);
  if (me) return me;
  if (f.me.status === 200 && f.me.isAdmin === true && unknown.length > 0) {
    return { ...cannot(unknown.map((u) => u.check)), diagnosis: `the admin key signs in (${f.me.email ?? '?'}), but ${unknown.map((u) => u.check).join(', ')} could not be observed`, steps: [] };
  }
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
  // The causes below read the api's refusals.
  const logs = cannot([AUTH_ERRORS_CHECK]);
  if (logs) return logs;
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
      diagnosis: `api ${f.api.tag} deployed ${Math.max(0, Math.round(deployAgeMin))} min ago refuses keys (${otherRefusals} auth errors) although the stored key hash ${f.keyHashUnreadable !== undefined ? 'could not be checked' : f.keyHash.matches ? 'matches' : 'does not match'}: bad deploy`,
      rootCause: `Release ${f.api.tag} broke authentication`,
      steps: ['rollback-release'],
    };
  }
  const hash = cannot([KEY_HASH_CHECK]);
  if (hash) return hash;
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
  meta,
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
    const steps = buildSteps(meta, p.steps, {
      'database-incident': (id) =>
        childIncidentStep(ctx, id, {
          runbook: 'databaseUnreachable',
          reason: `INC-06 on ${t}: ${p.diagnosis}`,
        }),
      'disable-sso': () => ({
        resource: API,
        describe: `recreate the api container with ${SSO_FLAG}=false, keeping its image and every other setting`,
        precondition: ssoStillRequired,
        run: async () => (await longActs.recreateContainer({ target: t, component: API, env: { [SSO_FLAG]: 'false' } })).detail,
      }),
      'rollback-release': (id) => {
        const reason = `INC-06 on ${t}: ${p.diagnosis}`;
        return childIncidentStep(ctx, id, {
          runbook: 'rollback',
          reason,
          describe: `roll the api back from ${f.api.tag} to ${f.api.lastGoodTag ?? '?'} in a child rollback incident: ${reason}`,
          // The tag the approver was told, not one the child might choose differently.
          params: { services: [API], tag: f.api.lastGoodTag, reason: `INC-06 bad deploy ${f.api.tag}` },
          precondition: stillRefused,
        });
      },
    });
    return { ...p, steps };
  },
  async verify(ctx, f): Promise<Check> {
    if (f.evidenceRule) {
      // An answer or a column the settings name but the target lacks: recovery is not observed.
      try {
        const [me, keyHash] = await Promise.all([acts.whoAmI({ target: ctx.target }), acts.adminKeyHashCheck({ target: ctx.target })]);
        return verifySignIn(me, keyHash.email ?? f.keyHash.email);
      } catch (err) {
        const why = settingFailure(err);
        if (why === undefined) throw err;
        return { ok: false, detail: why, unknown: `${ME_CHECK} or ${KEY_HASH_CHECK}: ${why}` };
      }
    }
    const [me, keyHash] = await Promise.all([acts.whoAmI({ target: ctx.target }), acts.adminKeyHashCheck({ target: ctx.target })]);
    const expected = keyHash.email ?? f.keyHash.email;
    const ok = me.status === 200 && me.isAdmin === true && (expected === undefined || me.email === expected);
    return {
      ok,
      detail: me.status === 200 ? `/v1/users/me returns ${me.email ?? '?'}${expected && me.email !== expected ? ` (expected ${expected})` : ''}` : `/v1/users/me answers ${me.status || 'nothing'}`,
    };
  },
};

/**
 * Pure: recovery is /v1/users/me answering the admin's email with the admin flag. An answer without
 * the flag or the email, or an admin email that could not be looked up, shows nothing.
 */
export function verifySignIn(me: WhoAmI, expected: string | undefined): Check {
  if (me.status !== 200) return { ok: false, detail: `/v1/users/me answers ${me.status || 'nothing'}` };
  const detail = `/v1/users/me returns ${me.email ?? '?'}${expected && me.email !== expected ? ` (expected ${expected})` : ''}`;
  if (me.isAdmin === undefined) return { ok: false, detail, unknown: `${ME_CHECK}: the answer does not say whether the key is an admin's (setting api.fields.usersMe.isAdmin)` };
  if (me.email === undefined) return { ok: false, detail, unknown: `${ME_CHECK}: the answer has no email` };
  if (expected === undefined) return { ok: false, detail, unknown: `${KEY_HASH_CHECK}: the admin's email could not be looked up in the users table` };
  return { ok: me.isAdmin && me.email === expected, detail };
}

/** INC-06: authentication failure. */
export async function authFailure(input: IncidentInput): Promise<IncidentRecord> {
  return runIncident(runbook, input);
}
