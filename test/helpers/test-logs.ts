/**
 * Where the engine's processes started by the tests log: `.stack/logs/test-<name>.log`, JSON lines
 * appended by every test run (beside the stack's own logs in `.stack/logs`). The secrets scan
 * (test/reliability/secrets.test.ts) reads them: what a test worker, receiver or codec server
 * writes is scanned, not a file nothing writes.
 */
import { appendFileSync, mkdirSync, renameSync, statSync } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import pino, { type Logger } from 'pino';
import { REDACT_PATHS } from '../../src/lib/logger';

const STACK_DIR = process.env.STACK_DIR ?? path.resolve(__dirname, '../../.stack');
export const LOG_DIR = path.join(STACK_DIR, 'logs');

export const TEST_LOGS = ['worker', 'receiver', 'codec-server'] as const;
export type TestLog = (typeof TEST_LOGS)[number];

/** Past this size a test log starts again (the previous one is kept as `.1`). */
const ROTATE_BYTES = 64 * 1024 * 1024;

export function testLogFile(name: TestLog): string {
  return path.join(LOG_DIR, `test-${name}.log`);
}

/** Keeps each test log under ROTATE_BYTES (called once per jest run, by the global setup). */
export function rotateTestLogs(): void {
  for (const name of TEST_LOGS) {
    const file = testLogFile(name);
    try {
      if (statSync(file).size > ROTATE_BYTES) renameSync(file, `${file}.1`);
    } catch {
      /* not there yet */
    }
  }
}

/** A stream appending to the named test log, line by line and synchronously (nothing is lost at exit). */
export function testLogStream(name: TestLog): Writable {
  mkdirSync(LOG_DIR, { recursive: true });
  const file = testLogFile(name);
  return new Writable({
    write(chunk: Buffer, _enc, cb) {
      appendFileSync(file, chunk);
      cb();
    },
  });
}

/** A logger for an engine component in a test: the engine's own redaction, written to its test log. */
export function testLogger(name: TestLog, level = 'info'): Logger {
  return pino({ name, level, redact: { paths: REDACT_PATHS, censor: '[redacted]' } }, testLogStream(name));
}
