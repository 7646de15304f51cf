/**
 * What the runbooks look for in a target's logs and /metrics, as per-target settings (`logs.*`,
 * `metrics.*` in `TargetSchema`). The defaults are what the replica (the drill target) writes: logfmt
 * lines (`ts=… level=… msg="…" key=value …`) and Prometheus series named `alfred_*`. A target that logs
 * JSON, or names its series differently, changes the settings; see docs/targets.md.
 *
 * Free of Node imports: the configuration, the activities and the tests share it.
 */

/** A logfmt field `name=value` (value quoted or not), its value in the named group `group`. */
const field = (name: string, group: string, value = '[^\\s"]+'): string => `(?:^|\\s)${name}="?(?<${group}>${value})`;

/**
 * Log patterns. Lines match case-insensitively, like the log filter of `containerLogs`. Patterns that
 * extract a value name it with a named group (`LOG_PATTERN_GROUPS`); the others only select lines.
 */
export const LOG_PATTERN_DEFAULTS = {
  /** A refused authentication (INC-06, apiKeyTrace). */
  authFailed: 'auth failed',
  /** The reason of a refused authentication, in the group `reason`. */
  authReason: field('reason', 'reason', '[\\w.-]+'),
  /** A refusal because the SSO provider is unreachable (INC-06: with SSO required, SSO is disabled). */
  ssoUnreachable: '(?:^|\\s)reason="?sso_provider_unreachable\\b',
  /** A failed call to an upstream provider (INC-02). */
  providerError: 'msg="?provider error',
  /** The gateway moved a request to another provider (INC-02). */
  providerFailover: 'msg="?provider failover',
  /** The provider a line is about, in the group `provider`. */
  provider: field('provider', 'provider', '\\w+'),
  /** A request refused by the rate limiter (INC-10). */
  rateLimited: 'msg="?rate limit exceeded',
  /** The client address of a line, in the group `client` (seed 002: `client_ip=`). */
  clientIp: field('client_ip', 'client'),
  /** The id of the API key a line is about (a prefix of the key's sha256, never the key), in the group `key`. */
  keyId: field('key_id', 'key'),
  /** The time of a line (ISO-8601), in the group `ts`. */
  timestamp: field('ts', 'ts'),
  /** The request path of a request line, in the group `path`. */
  path: field('path', 'path'),
  /** The HTTP status of a request line, in the group `status`; a line without one is not a request line. */
  status: field('status', 'status', '\\d{3}'),
  /** Paths that are not user load (monitoring, the replica's drill endpoints); matched against the path. */
  ignoredPaths: '^/(?:metrics|v1/drill/)',
  /** A request refused because the user is at their quota (INC-07). */
  quotaRefused: '(?:^|\\s)status=402\\b',
  /** The user a line is about, in the group `user`. */
  userId: field('user_id', 'user'),
  /** The request id of a line, in the group `request`. */
  requestId: field('request_id', 'request'),
  /** An error line (transferNotApplied: the queue consumer's errors). */
  levelError: '(?:^|\\s)level="?error\\b',
  /** A warning line (transferNotApplied: the queue consumer's warnings). */
  levelWarning: '(?:^|\\s)level="?warn\\b',
  /** The message of a line, in the group `message` (quoted or not). */
  message: '(?:^|\\s)msg="?(?<message>(?<=")(?:[^"\\\\]|\\\\.)*|[^\\s"]+)',
  /** The token transfer a line is about, in the group `transfer`. */
  transferId: field('transfer_id', 'transfer'),
  /** A migration refused for lack of privileges (migrationPermissions; seed 004 quotes the first two). */
  migrationPermissionError: 'permission denied|42501|must be owner',
  /** A user API key in clear text (INC-14 PII scan), in the group `key`. */
  apiKey: '\\b(?<key>ak_[0-9a-f]{32,})\\b',
} as const;

export type LogPattern = keyof typeof LOG_PATTERN_DEFAULTS;

/** The named group each extracting pattern must have. */
export const LOG_PATTERN_GROUPS: Partial<Record<LogPattern, string>> = {
  authReason: 'reason',
  provider: 'provider',
  clientIp: 'client',
  keyId: 'key',
  timestamp: 'ts',
  path: 'path',
  status: 'status',
  userId: 'user',
  requestId: 'request',
  transferId: 'transfer',
  message: 'message',
  apiKey: 'key',
};

/** A log pattern as the engine uses it: case-insensitive. */
export function compileLogPattern(pattern: string, flags = ''): RegExp {
  return new RegExp(pattern, `i${flags}`);
}

/** Why a pattern cannot be used for `key`, or undefined when it can. */
export function logPatternProblem(key: LogPattern, pattern: string): string | undefined {
  let re: RegExp;
  try {
    re = compileLogPattern(pattern);
  } catch (err) {
    return `not a valid regular expression: ${(err as Error).message}`;
  }
  const group = LOG_PATTERN_GROUPS[key];
  if (group && !new RegExp(`\\(\\?<${group}>`).test(re.source)) return `needs the named group (?<${group}>...) holding the value`;
  return undefined;
}

/** Compiled log patterns of one target. */
export type LogMatchers = Record<LogPattern, RegExp>;

export function compileLogPatterns(patterns: Record<LogPattern, string>): LogMatchers {
  return Object.fromEntries(Object.entries(patterns).map(([k, p]) => [k, compileLogPattern(p)])) as LogMatchers;
}

/** The replica's patterns, compiled (tests, and callers without a target). */
export const DEFAULT_LOG_MATCHERS: LogMatchers = compileLogPatterns(LOG_PATTERN_DEFAULTS);

/** The value an extracting pattern finds in a line, if any. */
export function logValue(m: LogMatchers, key: LogPattern, line: string): string | undefined {
  const group = LOG_PATTERN_GROUPS[key];
  const found = m[key].exec(line);
  if (!found) return undefined;
  return group ? found.groups?.[group] : found[0];
}

/** Prometheus series names the runbooks read, and the labels they read on them. */
export const METRIC_DEFAULTS = {
  /** Connections of the api's database pool (INC-01, INC-04): open, idle, waiting for one, the most it opens. */
  dbPoolTotal: 'alfred_db_pool_total',
  dbPoolIdle: 'alfred_db_pool_idle',
  dbPoolWaiting: 'alfred_db_pool_waiting',
  dbPoolMax: 'alfred_db_pool_max',
  /** The service's own resident memory in bytes (INC-11). */
  residentMemory: 'process_resident_memory_bytes',
} as const;

export type MetricGauge = keyof typeof METRIC_DEFAULTS;

export const PROVIDER_REQUESTS_DEFAULTS = {
  /** A counter of calls to upstream providers (INC-02). */
  name: 'alfred_provider_requests_total',
  /** The label naming the provider. */
  providerLabel: 'provider',
  /** The label holding a call's outcome, and its value for a failed call. */
  resultLabel: 'result',
  errorResult: 'error',
};

export const HTTP_REQUESTS_DEFAULTS = {
  /** A counter of HTTP requests the gateway answered (INC-02: do chat completions still work). */
  name: 'alfred_http_requests_total',
  /** The label holding the request path (chat completions are `/v1/chat/completions`) and the one holding the status (5xx is an error). */
  pathLabel: 'path',
  statusLabel: 'status',
};

export const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
export const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** Lines to count in a log: those matching `pattern`, optionally broken down by the value `by` extracts. */
export interface LogCountSpec {
  pattern: LogPattern;
  by?: LogPattern;
}

export interface LogCount {
  matched: number;
  /** Matching lines by extracted value; lines without the value are not in it. */
  by: Record<string, number>;
}

/** Pure: counts of each spec over the lines. */
export function countLogLines(m: LogMatchers, lines: string[], specs: Record<string, LogCountSpec>): Record<string, LogCount> {
  const out: Record<string, LogCount> = {};
  for (const [name, spec] of Object.entries(specs)) {
    const c: LogCount = { matched: 0, by: {} };
    for (const line of lines) {
      if (!m[spec.pattern].test(line)) continue;
      c.matched++;
      const v = spec.by ? logValue(m, spec.by, line) : undefined;
      if (v !== undefined) c.by[v] = (c.by[v] ?? 0) + 1;
    }
    out[name] = c;
  }
  return out;
}
