/** Log patterns: the replica's defaults, and a target that logs JSON (a Python service). No stack needed. */
import { DEFAULT_LOG_MATCHERS, LOG_PATTERN_DEFAULTS, countLogLines, logPatternProblem, logValue, type LogPattern } from '../../src/lib/target-signals';
import { JSON_LINES, REPLICA_LINES, jsonMatchers } from '../helpers/log-fixtures';

describe('log patterns', () => {
  it('defaults count the replica lines: provider errors by provider, failovers, quota refusals by user', () => {
    const counts = countLogLines(DEFAULT_LOG_MATCHERS, REPLICA_LINES, {
      errors: { pattern: 'providerError', by: 'provider' },
      failovers: { pattern: 'providerFailover' },
      refused: { pattern: 'quotaRefused', by: 'userId' },
      auth: { pattern: 'authFailed', by: 'authReason' },
      sso: { pattern: 'ssoUnreachable' },
    });
    expect(counts).toEqual({
      errors: { matched: 2, by: { openai: 2 } },
      failovers: { matched: 1, by: {} },
      refused: { matched: 1, by: { '12': 1 } },
      auth: { matched: 1, by: { sso_provider_unreachable: 1 } },
      sso: { matched: 1, by: {} },
    });
  });

  it('a target logging JSON counts the same events with its own settings', () => {
    const m = jsonMatchers();
    expect(
      countLogLines(m, JSON_LINES, {
        errors: { pattern: 'providerError', by: 'provider' },
        failovers: { pattern: 'providerFailover' },
        refused: { pattern: 'quotaRefused', by: 'userId' },
        auth: { pattern: 'authFailed', by: 'authReason' },
        sso: { pattern: 'ssoUnreachable' },
      }),
    ).toEqual({
      errors: { matched: 2, by: { openai: 2 } },
      failovers: { matched: 1, by: {} },
      refused: { matched: 1, by: { '12': 1 } },
      auth: { matched: 1, by: { idp_down: 1 } },
      sso: { matched: 1, by: {} },
    });
    // The replica's patterns find nothing in those lines: the settings are what makes them readable.
    expect(countLogLines(DEFAULT_LOG_MATCHERS, JSON_LINES, { errors: { pattern: 'providerError' } }).errors?.matched).toBe(0);
  });

  it('extract logfmt values, quoted or not, and never from a longer field name', () => {
    const m = DEFAULT_LOG_MATCHERS;
    expect(logValue(m, 'path', 'ts=1 path="/v1/a" status=200')).toBe('/v1/a');
    expect(logValue(m, 'status', 'ts=1 upstream_status=502 status=200')).toBe('200');
    expect(logValue(m, 'status', 'ts=1 upstream_status=502')).toBeUndefined();
    expect(logValue(m, 'message', 'ts=1 level=warn msg="job failed; requeued" transfer_id=7')).toBe('job failed; requeued');
    expect(logValue(m, 'message', 'ts=1 level=warn msg=skipped transfer_id=7')).toBe('skipped');
    expect(logValue(m, 'transferId', 'ts=1 level=warn msg=skipped transfer_id=7')).toBe('7');
    expect(m.ignoredPaths.test('/v1/drill/faults')).toBe(true);
    expect(m.ignoredPaths.test('/v1/chat/completions')).toBe(false);
  });

  it('name what is wrong with a pattern', () => {
    expect(logPatternProblem('provider', 'provider=(\\w+')).toMatch(/not a valid regular expression/);
    expect(logPatternProblem('provider', 'provider=(\\w+)')).toBe('needs the named group (?<provider>...) holding the value');
    expect(logPatternProblem('provider', 'provider=(?<provider>\\w+)')).toBeUndefined();
    expect(logPatternProblem('providerError', 'provider error')).toBeUndefined();
    for (const [k, p] of Object.entries(LOG_PATTERN_DEFAULTS)) expect([k, logPatternProblem(k as LogPattern, p)]).toEqual([k, undefined]);
  });
});
