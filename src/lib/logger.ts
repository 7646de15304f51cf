/** Structured logs (pino). Secret-bearing fields are redacted wherever they appear. */
import pino, { type Logger } from 'pino';

export const REDACT_PATHS = [
  'authorization',
  '*.authorization',
  'headers.authorization',
  '*.headers.authorization',
  'password',
  '*.password',
  'apiKey',
  '*.apiKey',
  'adminKey',
  '*.adminKey',
  'secret',
  '*.secret',
  'token',
  '*.token',
];

export function createLogger(name: string, level = process.env.LOG_LEVEL ?? 'info'): Logger {
  return pino({ name, level, redact: { paths: REDACT_PATHS, censor: '[redacted]' } });
}
