/** Log lines of the replica and of a target that logs JSON, with that target's `logs` settings. */
import { TargetSchema } from '../../src/config';
import { LOG_PATTERN_DEFAULTS, compileLogPatterns, type LogMatchers, type LogPattern } from '../../src/lib/target-signals';

/** Lines as the replica's api writes them (drill/alfred/app/log.py). */
export const REPLICA_LINES = [
  'ts=2026-12-01T07:48:46.447Z level=error role=api msg="provider error" provider=openai status=502 model=gpt-4o request_id=req_1',
  'ts=2026-12-01T07:48:46.512Z level=warn role=api msg="provider failover" from=openai to=anthropic request_id=req_1',
  'ts=2026-12-01T07:48:46.530Z level=info role=api method=POST path=/v1/chat/completions status=200 duration_ms=83 client_ip=10.0.0.7 provider=anthropic user_id=11 request_id=req_1',
  'ts=2026-12-01T07:48:47.001Z level=error role=api msg="provider error" provider=openai status=502 model=gpt-4o request_id=req_2',
  'ts=2026-12-01T07:48:47.100Z level=info role=api method=POST path=/v1/chat/completions status=402 duration_ms=4 client_ip=10.0.0.8 provider=openai user_id=12 request_id=req_3',
  'ts=2026-12-01T07:48:47.200Z level=warn role=api msg="auth failed" reason=sso_provider_unreachable path=/v1/users/me client_ip=10.0.0.9',
];

/** The same events from a Python service logging one JSON object per line. */
export const JSON_LINES = [
  '{"timestamp": "2026-12-01T07:48:46.447Z", "level": "ERROR", "message": "provider error", "provider": "openai", "status": 502}',
  '{"timestamp": "2026-12-01T07:48:46.512Z", "level": "WARNING", "message": "provider failover", "from": "openai", "to": "anthropic"}',
  '{"timestamp": "2026-12-01T07:48:46.530Z", "level": "INFO", "message": "request", "path": "/v1/chat/completions", "status": 200, "user": "11"}',
  '{"timestamp": "2026-12-01T07:48:47.001Z", "level": "ERROR", "message": "provider error", "provider": "openai", "status": 502}',
  '{"timestamp": "2026-12-01T07:48:47.100Z", "level": "INFO", "message": "request", "path": "/v1/chat/completions", "status": 402, "user": "12"}',
  '{"timestamp": "2026-12-01T07:48:47.200Z", "level": "WARNING", "message": "auth failed", "reason": "idp_down", "path": "/v1/users/me"}',
];

/** The target's `logs` settings for the JSON service, as an operator writes them in engine.yaml. */
export const JSON_LOGS = {
  authFailed: '"message":\\s*"auth failed"',
  authReason: '"reason":\\s*"(?<reason>[\\w.-]+)"',
  ssoUnreachable: '"reason":\\s*"idp_down"',
  providerError: '"message":\\s*"provider error"',
  providerFailover: '"message":\\s*"provider failover"',
  provider: '"provider":\\s*"(?<provider>\\w+)"',
  rateLimited: '"message":\\s*"rate limit exceeded"',
  clientIp: '"client_ip":\\s*"(?<client>[^"]+)"',
  keyId: '"key_id":\\s*"(?<key>[0-9a-f]+)"',
  timestamp: '"timestamp":\\s*"(?<ts>[^"]+)"',
  path: '"path":\\s*"(?<path>[^"]+)"',
  status: '"status":\\s*(?<status>\\d{3})',
  quotaRefused: '"status":\\s*402\\b',
  userId: '"user":\\s*"(?<user>[^"]+)"',
  apiKey: '\\b(?<key>sk-live-[A-Za-z0-9]{24,})\\b',
};

/** The JSON service's settings through the schema (defaults for the rest), compiled as activities do. */
export function jsonMatchers(): LogMatchers {
  const t = TargetSchema.parse({ baseUrl: 'http://127.0.0.1:9', containers: { project: 'py' }, components: ['api'], logs: JSON_LOGS });
  const patterns = Object.fromEntries((Object.keys(LOG_PATTERN_DEFAULTS) as LogPattern[]).map((k) => [k, t.logs[k]]));
  return compileLogPatterns(patterns as Record<LogPattern, string>);
}

