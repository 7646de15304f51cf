/**
 * API key trace (seed 000, "Authentication / API key failures"): given the user's email, the
 * approximate time and the request id, look up the key's usage around that time (charged requests,
 * the api's request log, key rotations) and give a verdict a support engineer can paste into the
 * ticket. Diagnose-first: it changes nothing; 5xx or repeated failures are escalated (seed 000).
 */
import { patched } from '@temporalio/workflow';
import { acts, runIncident, type Check, type Plan, type Runbook, type RunbookContext } from './kernel';
import type { IncidentInput, IncidentRecord, Severity } from './contracts';
import type { ApiLogTrace, KeyEvent, RequestRows, SupportUser } from '../activities/postgres/support';
import { renderSupportReport, type ReportStatus, type SupportCheck } from './support-report';
import { notConfiguredMessage, recordChecks } from './support-evidence';
import { setting } from './threshold-settings';
import { defineRunbook, type Decision, type StepIdOf } from './shape';

/** What this runbook is: the catalog, routes, the client script and the README's table read it. */
export const meta = defineRunbook({
  name: 'apiKeyTrace',
  scenario: 'SUP-KEY',
  title: 'API key trace (support)',
  severity: 3,
  source: 'seed 000',
  alerts: [],
  diagnostics: [
    'the account behind the email',
    "the user's charged requests around the time (request_logs)",
    'the request id in request_logs and in the api log',
    'key rotations / erasures (audit_logs)',
    'failed authentications in the api log',
  ],
  steps: [],
  verify: 'the service side is healthy (/health), so the answer lies with the client',
});

export interface KeyTraceFacts {
  email: string;
  requestId?: string;
  /** The reported time, and the window searched around it (ISO-8601). */
  at: string;
  from: string;
  to: string;
  user: SupportUser;
  rows?: RequestRows;
  log?: ApiLogTrace;
  keyEvents: KeyEvent[];
  serviceHealthy: boolean;
  serviceDetail: string;
  /** Why the user's charged requests (`request_logs`) could not be read, when they could not. */
  rowsError?: string;
  /**
   * What runs now, for the escalation seed 000 asks for ("request IDs, user info, affected endpoints,
   * and recent deploys"): each service's tag and since when, or why it could not be read. Absent in
   * facts of incidents started before it was read.
   */
  deploys?: string[];
  /**
   * Signals that were not observed are unknown, never "nothing there" (absent in facts of incidents
   * started before this rule, which read them as nothing there).
   */
  evidenceRule?: boolean;
  /** `thresholds.repeatedServerErrors` (absent in facts of incidents started before it was read). */
  repeatedServerErrors?: number;
}

/** The trace changes nothing: it declares no step. */
export type KeyTraceStep = StepIdOf<typeof meta>;

/** The verdict a support engineer pastes into the ticket, as the runbook's decision. */
export interface KeyTraceDecision extends Decision<KeyTraceStep> {
  status: ReportStatus;
  solution?: string;
  nextSteps: string[];
}

/**
 * What the trace found, before it is settled into a decision. `escalate`: why the incident
 * escalates, when it is not the diagnosis itself (what could not be observed).
 */
interface Verdict {
  status: ReportStatus;
  diagnosis: string;
  rootCause?: string;
  solution?: string;
  nextSteps: string[];
  escalate?: string;
}

/**
 * Repeated server errors for one user in the window: seed 000 says "If logs show 5xx errors or
 * repeated failures, escalate to SRE"; the count is not in the seeds. The default of
 * `thresholds.repeatedServerErrors`, and its value in incidents started before it was a setting.
 */
export const REPEATED_5XX = 3;

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v ? v : undefined;
}

async function diagnose(ctx: RunbookContext): Promise<KeyTraceFacts> {
  const p = ctx.input.params ?? {};
  const email = str(p.email) ?? '';
  const requestId = str(p.requestId);
  const minutes = typeof p.windowMinutes === 'number' ? p.windowMinutes : 15;
  const now = Date.now();
  const atMs = str(p.at) ? Math.min(Date.parse(p.at as string), now) : now;
  const from = new Date(atMs - minutes * 60_000).toISOString();
  const to = new Date(Math.min(atMs + minutes * 60_000, now)).toISOString();
  const t = ctx.target;
  // Incidents recorded before this rule failed on an unreadable request_logs and read logs the
  // settings do not recognise as empty; they replay so.
  const evidence = patched('evidence-before-conclusions');

  const [user, health] = await Promise.all([acts.lookupUser({ target: t, email }), acts.httpHealth({ target: t })]);
  const serviceDetail = `/health ${health.status || 'unreachable'}${health.body ? `: database ${String(health.body.database)}, redis ${String(health.body.redis)}` : ''}`;
  const facts: KeyTraceFacts = {
    email,
    ...(requestId ? { requestId } : {}),
    at: new Date(atMs).toISOString(),
    from,
    to,
    user,
    keyEvents: [],
    serviceHealthy: health.ok,
    serviceDetail,
    ...(evidence ? { evidenceRule: true } : {}),
  };
  if (user.found && user.userId) {
    const userId = user.userId;
    const [rows, log, keys] = await Promise.all([
      acts.requestRows({ target: t, userId, ...(requestId ? { requestId } : {}), from, to }).catch((err: unknown) => {
        // A column the target lacks (a `postgres.schema` setting) shows no rows: the read is unknown.
        const why = evidence ? notConfiguredMessage(err) : undefined;
        if (why === undefined) throw err;
        facts.rowsError = why;
        return undefined;
      }),
      acts.apiRequestLog({ target: t, userId, ...(requestId ? { requestId } : {}), from, to }),
      acts.keyEvents({ target: t, userId, to }),
    ]);
    if (rows) facts.rows = rows;
    facts.log = log;
    facts.keyEvents = keys.events;
  }
  // Seed 000's escalation carries the recent deploys. (Incidents recorded before this read none.)
  if (patched('escalation-deploys')) facts.deploys = await recentDeploys(t);
  // The target's own count of repeated server errors. (Incidents recorded before it was a setting
  // did not read it, and replay with the old constant.)
  if (patched('threshold-settings')) {
    const info = await acts.describeTarget({ target: t });
    facts.repeatedServerErrors = setting(info.thresholds.repeatedServerErrors, REPEATED_5XX);
  }
  recordChecks(ctx, checksOf(facts));
  return facts;
}

/** The api's and worker's running release and since when (the seed's Compose services). */
async function recentDeploys(t: string): Promise<string[]> {
  return Promise.all(
    (['api', 'worker'] as const).map((component) =>
      acts.releaseInfo({ target: t, component }).then(
        (r) => `${component} ${r.tag} since ${r.containerCreatedAt}`,
        (err: unknown) => `${component}: not read (${err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : String(err)})`,
      ),
    ),
  );
}

/** Seed 000: "escalate to SRE and include: request IDs, user info, affected endpoints, and recent deploys". */
function escalationStep(f: KeyTraceFacts, what: string): string {
  const deploys = f.deploys ? f.deploys.join('; ') : 'not read';
  return `Escalated to SRE with ${what}; recent deploys: ${deploys} (seed 000).`;
}

function statusList(by: Record<string, number>): string {
  const parts = Object.entries(by).map(([s, n]) => `${s}×${n}`);
  return parts.length ? parts.join(', ') : 'none';
}

function lastRotation(f: KeyTraceFacts, before: string): KeyEvent | undefined {
  // Results recorded before `kind` existed name the replica's action.
  return f.keyEvents.find((e) => (e.kind ? e.kind === 'rotation' : e.action === 'api_key_rotated') && e.at <= before);
}

/** A rejected key (401): rotated, erased, or simply not this account's. */
function rejectedKey(f: KeyTraceFacts, when: string): Verdict {
  const rotated = lastRotation(f, when);
  if (rotated) {
    return {
      status: 'answered',
      diagnosis: `the key sent was refused (401): this account's key was rotated at ${rotated.at} and the client still sends the old one`,
      rootCause: `The API key was rotated at ${rotated.at}; requests still use the previous key.`,
      solution: 'Use the new key issued at rotation (or ask an admin for a new one) in the client configuration.',
      nextSteps: ['Confirm with the customer which key their client is configured with.'],
    };
  }
  return {
    status: 'answered',
    diagnosis: "the key sent was refused (401): it matches no account's key hash (wrong, mistyped or revoked key)",
    rootCause: 'The API key sent does not match the key on this account.',
    solution: 'Check the key in the client configuration (no spaces or truncation) or issue a new one.',
    nextSteps: ['Ask the customer to re-copy the key from the dashboard.'],
  };
}

/**
 * The signals a verdict of absence ("never reached the api", "no request from this account") rests
 * on, each with why it could not be observed; empty when all were. Pure.
 */
export function unobservedSignals(f: KeyTraceFacts): Array<{ signal: string; why: string }> {
  if (!f.evidenceRule || !f.user.found) return [];
  const out: Array<{ signal: string; why: string }> = [];
  const window = `between ${f.from} and ${f.to}`;
  if (f.rowsError !== undefined || !f.rows) out.push({ signal: 'charged requests in the window', why: `request_logs could not be read: ${f.rowsError ?? 'no answer'}` });
  const log = f.log;
  if (!log || !log.available) {
    out.push({ signal: 'the api request log', why: `the api log could not be read: ${log?.error ?? 'not read'}` });
    return out;
  }
  if (log.linesRead === undefined) return out;
  if (log.linesRead === 0) {
    out.push({ signal: 'the api request log', why: `no api log line ${window}` });
    return out;
  }
  if (!log.requestLines) {
    out.push({ signal: 'the api request log', why: `no request line recognised among ${log.linesRead} api log lines ${window} (settings logs.status, logs.timestamp)` });
    return out;
  }
  if (f.requestId && !log.withRequestId) {
    out.push({ signal: 'request ids in the api log', why: `none of ${log.requestLines} request lines ${window} carries a request id (setting logs.requestId)` });
  }
  if (!log.withUser) {
    out.push({ signal: 'user ids in the api log', why: `none of ${log.requestLines} request lines ${window} carries a user id (setting logs.userId)` });
  }
  if ((log.unauthorized ?? 0) > 0 && log.authFailures === 0) {
    out.push({ signal: 'failed authentications in the api log', why: `${log.unauthorized ?? 0} requests answered 401 ${window}, none of them recognised as a failed authentication (setting logs.authFailed)` });
  }
  return out;
}

/** An absence that rests on signals that could not be observed is not known: escalate, naming them. */
function notDetermined(f: KeyTraceFacts, what: string, unseen: Array<{ signal: string; why: string }>): Verdict {
  const text = unseen.map((u) => `could not observe ${u.signal}: ${u.why}`).join('; ');
  return {
    status: 'escalated',
    diagnosis: `could not determine whether ${what} between ${f.from} and ${f.to}: ${unseen.map((u) => u.signal).join(', ')} not observed`,
    rootCause: 'Not determined: the request logs could not be read.',
    nextSteps: [`Escalated: ${text}.`],
    escalate: text,
  };
}

/** The verdict on one request id. */
function traceRequest(f: KeyTraceFacts, id: string): Verdict {
  const match = f.rows?.match;
  const seen = f.log?.request;
  if (match && !match.mine) {
    return {
      status: 'answered',
      diagnosis: `request ${id} was made with another account's key (charged to that account)`,
      rootCause: `Request ${id} authenticated as a different account than ${f.email}.`,
      solution: "Configure the client with this account's own key.",
      nextSteps: [],
    };
  }
  if (match) {
    return {
      status: 'nothing-wrong',
      diagnosis: `request ${id} authenticated with this account's key and was served (${match.status}, ${match.amount} tokens at ${match.createdAt})`,
      solution: 'No change was needed: the key works.',
      nextSteps: ['If the customer still sees an error, ask for a screenshot and the exact endpoint they call.'],
    };
  }
  if (seen && seen.status === 401) return rejectedKey(f, seen.at);
  if (seen && seen.status >= 500) {
    return {
      status: 'escalated',
      diagnosis: `request ${id} failed on our side (${seen.status} on ${seen.path})`,
      rootCause: `Server error ${seen.status} on ${seen.path}.`,
      nextSteps: [escalationStep(f, `request id ${id}, user ${f.email}, endpoint ${seen.path}`)],
    };
  }
  if (seen && seen.status >= 400) {
    const why: Record<number, string> = { 402: 'the account is at its quota', 403: 'the client address is blocked', 429: 'the client was rate limited' };
    return {
      status: 'answered',
      diagnosis: `request ${id} was authenticated but refused with ${seen.status}${why[seen.status] ? `: ${why[seen.status]}` : ''}`,
      rootCause: `The key is valid; the request was refused with ${seen.status}${why[seen.status] ? ` because ${why[seen.status]}` : ''}.`,
      solution: seen.status === 429 ? 'Slow down or spread the requests.' : seen.status === 402 ? 'Top up the account or wait for the next billing period.' : 'See the status code above.',
      nextSteps: [],
    };
  }
  if (seen) {
    if (seen.userId && seen.userId !== f.user.userId) {
      return {
        status: 'answered',
        diagnosis: `request ${id} authenticated as another account`,
        rootCause: `Request ${id} used a key of a different account than ${f.email}.`,
        solution: "Configure the client with this account's own key.",
        nextSteps: [],
      };
    }
    return {
      status: 'nothing-wrong',
      diagnosis: `request ${id} succeeded (${seen.status} on ${seen.path} at ${seen.at})`,
      solution: 'No change was needed: the key works.',
      nextSteps: [],
    };
  }
  const unseen = unobservedSignals(f).filter((u) => u.signal !== 'user ids in the api log' && u.signal !== 'failed authentications in the api log');
  if (unseen.length > 0) return notDetermined(f, `request ${id} reached the api`, unseen);
  return {
    status: 'answered',
    diagnosis: `request ${id} never reached the api between ${f.from} and ${f.to}`,
    rootCause: 'The request did not reach our API (wrong endpoint or base URL), or it was made at another time.',
    solution: 'Check the API base URL the client uses; send the exact time and request id of a failing call.',
    nextSteps: ['Ask for the full URL and a screenshot of the error.'],
  };
}

/** Without a request id: what the account's key did in the window. */
function traceWindow(f: KeyTraceFacts): Verdict {
  const log = f.log;
  const served = f.rows?.inWindow ?? 0;
  const byStatus = log?.userByStatus ?? {};
  const serverErrors = Object.entries(byStatus).filter(([s]) => Number(s) >= 500).reduce((a, [, n]) => a + n, 0);
  if (serverErrors >= setting(f.repeatedServerErrors, REPEATED_5XX)) {
    return {
      status: 'escalated',
      diagnosis: `${serverErrors} server errors for this account between ${f.from} and ${f.to}`,
      rootCause: 'Repeated server errors on our side.',
      nextSteps: [escalationStep(f, `user ${f.email}, ${f.from} to ${f.to}, answers ${statusList(byStatus)}`)],
    };
  }
  const ok = Object.entries(byStatus).filter(([s]) => Number(s) < 400).reduce((a, [, n]) => a + n, 0);
  if (served > 0 || ok > 0) {
    const rotated = lastRotation(f, f.to);
    if (rotated && f.rows?.last && rotated.at > f.rows.last) return rejectedKey(f, f.to);
    return {
      status: 'nothing-wrong',
      diagnosis: `the key works: ${Math.max(served, ok)} authenticated requests between ${f.from} and ${f.to}`,
      solution: 'No change was needed: the key authenticates.',
      nextSteps: ['Ask for the request id of a failing call (the x-request-id response header).'],
    };
  }
  if ((log?.authFailures ?? 0) > 0) return rejectedKey(f, f.to);
  const unseen = unobservedSignals(f).filter((u) => u.signal !== 'request ids in the api log');
  if (unseen.length > 0) return notDetermined(f, 'any request from this account reached the api', unseen);
  return {
    status: 'answered',
    diagnosis: `no request from this account reached the api between ${f.from} and ${f.to}`,
    rootCause: 'No request from this account reached our API in that time.',
    solution: 'Check the API base URL and that the client actually sends requests; give the time of a failing call.',
    nextSteps: ['Ask for the request id (x-request-id header) and the exact time.'],
  };
}

/**
 * Pure decision over the findings: the verdict, a false alarm when nothing is wrong, and the reason
 * it escalates when it does (what could not be observed, else the diagnosis and what was done).
 */
export function planApiKeyTrace(f: KeyTraceFacts): KeyTraceDecision {
  const v = verdictOf(f);
  return {
    ...v,
    ...(v.status === 'nothing-wrong' ? { falseAlarm: true } : {}),
    ...(v.status === 'escalated' ? { escalate: v.escalate ?? `${v.diagnosis}: ${v.nextSteps.join(' ')}` } : {}),
    steps: [],
  };
}

/** The verdict over the findings. */
function verdictOf(f: KeyTraceFacts): Verdict {
  if (!f.user.found) {
    return {
      status: 'answered',
      diagnosis: `no such user: no account is registered under ${f.email}`,
      rootCause: `There is no account with the email ${f.email}.`,
      solution: 'Ask the customer to confirm the email address of the account (it may have been erased on request).',
      nextSteps: ['Confirm the email address with the customer.'],
    };
  }
  if (!f.serviceHealthy) {
    return {
      status: 'escalated',
      diagnosis: `the service itself is unhealthy (${f.serviceDetail})`,
      rootCause: 'Our service is degraded.',
      nextSteps: ['Escalated to SRE: the service health check fails.'],
    };
  }
  return f.requestId ? traceRequest(f, f.requestId) : traceWindow(f);
}

/** The ticket report for a verdict. */
export function apiKeyTraceReport(f: KeyTraceFacts, v: KeyTraceDecision, meta: { incidentId: string; at: string; severity: Severity; checks: SupportCheck[] }): string {
  return renderSupportReport({
    title: 'API key trace',
    incidentId: meta.incidentId,
    at: meta.at,
    severity: meta.severity,
    customer: f.email,
    issue: `API requests${f.requestId ? ` (request ${f.requestId})` : ''} failing around ${f.at}`,
    status: v.status,
    verdict: v.diagnosis,
    ...(v.rootCause ? { rootCause: v.rootCause } : {}),
    ...(v.solution ? { solution: v.solution } : {}),
    verification: v.status === 'escalated' ? 'We will confirm once the fix is verified.' : `Traced in our request logs between ${f.from} and ${f.to}.`,
    facts: [
      ['user email', f.email],
      ['approximate time', f.at],
      ['request id', f.requestId ?? '(not given)'],
      ['window searched', `${f.from} – ${f.to}`],
    ],
    checks: meta.checks,
    nextSteps: v.nextSteps,
  });
}

const runbook: Runbook<KeyTraceFacts> = {
  meta,
  diagnose,
  plan(f, ctx): Plan {
    const p = planApiKeyTrace(f);
    const rec = { incidentId: ctx.incidentId, at: new Date().toISOString(), severity: ctx.input.severity ?? meta.severity, checks: checksOf(f) };
    return {
      diagnosis: p.diagnosis,
      ...(p.rootCause ? { rootCause: p.rootCause } : {}),
      ...(p.falseAlarm ? { falseAlarm: true } : {}),
      ...(p.escalate ? { escalate: p.escalate } : {}),
      report: apiKeyTraceReport(f, p, rec),
      steps: [],
    };
  },
  async verify(ctx): Promise<Check> {
    // Nothing was changed: the answer holds if our side is healthy, so the fix lies with the client.
    const h = await acts.httpHealth({ target: ctx.target });
    return { ok: h.ok, detail: `service /health ${h.status || 'unreachable'}` };
  },
};

/** The checks behind the verdict: recorded as findings and listed in the report; a signal not observed is unknown. */
export function checksOf(f: KeyTraceFacts): SupportCheck[] {
  const out: SupportCheck[] = [
    { check: 'service health', ok: f.serviceHealthy, detail: f.serviceDetail },
    { check: 'account', ok: f.user.found, detail: f.user.found ? `user #${f.user.userId ?? '?'}` : `no user with email ${f.email}` },
  ];
  if (!f.user.found) return out;
  const unseen = unobservedSignals(f);
  const unknown = (signal: string): SupportCheck | undefined => {
    const u = unseen.find((x) => x.signal === signal);
    return u ? { check: signal, ok: false, detail: u.why, unknown: true } : undefined;
  };
  const logUnknown = unknown('the api request log');
  out.push(
    unknown('charged requests in the window') ?? { check: 'charged requests in the window', ok: true, detail: `${f.rows?.inWindow ?? 0}${f.rows?.last ? `, last at ${f.rows.last}` : ''}` },
  );
  if (f.requestId) {
    const m = f.rows?.match;
    if (f.rows || !f.evidenceRule) {
      out.push({ check: `request ${f.requestId} in request_logs`, ok: m?.mine ?? false, detail: m ? `row #${m.rowId} at ${m.createdAt} (${m.mine ? "this user's" : "another account's"})` : 'not found' });
    }
    const seen = f.log?.request;
    const idsUnknown = logUnknown ?? unknown('request ids in the api log');
    if (seen || !idsUnknown) {
      out.push({ check: `request ${f.requestId} in the api log`, ok: seen ? seen.status < 400 : false, detail: seen ? `${seen.path} → ${seen.status} at ${seen.at}` : 'not seen' });
    } else {
      out.push({ ...idsUnknown, check: `request ${f.requestId} in the api log` });
    }
  }
  if (logUnknown) out.push({ ...logUnknown, check: 'api log for this user' });
  else if (f.log) {
    // Traced by its id, a request's verdict rests on that request, not on the account's other lines:
    // what is unknown about those is told, aside.
    const aside = (c: SupportCheck | undefined): SupportCheck | undefined => (c && f.requestId ? { ...c, aside: true } : c);
    out.push(
      aside(unknown('user ids in the api log')) ?? {
        check: 'api log for this user',
        ok: f.log.available,
        detail: `${f.log.userRequests} requests (${statusList(f.log.userByStatus)}), ${f.log.authFailures} failed authentications`,
      },
    );
    const auth = aside(unknown('failed authentications in the api log'));
    if (auth) out.push(auth);
  }
  out.push({ check: 'key events', ok: true, detail: f.keyEvents.length ? f.keyEvents.map((e) => `${e.action} at ${e.at}`).join(', ') : 'none' });
  return out;
}

/** Support: trace an API key problem a user reported. */
export async function apiKeyTrace(input: IncidentInput): Promise<IncidentRecord> {
  return runIncident(runbook, input);
}
