/**
 * One enum of failure types. Activities throw `ApplicationFailure.nonRetryable(message, type)` for
 * permanent failures (bad input, refused, unknown target); transient errors stay plain `Error`s so
 * Temporal retries them with backoff.
 */
import { ApplicationFailure } from '@temporalio/common';

export enum ErrorType {
  UnknownTarget = 'UnknownTarget',
  UnknownContainer = 'UnknownContainer',
  BadInput = 'BadInput',
  Refused = 'Refused',
  NotConfigured = 'NotConfigured',
  HttpClientError = 'HttpClientError',
}

export function permanent(type: ErrorType, message: string): ApplicationFailure {
  return ApplicationFailure.nonRetryable(message, type);
}

/** A short, secret-free description of an error for findings and the incident record. */
export function describeError(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return typeof code === 'string' && !err.message.includes(code) ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
}
