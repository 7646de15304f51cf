/**
 * The engine's failure converter: a failure's message and stack trace travel in its encoded
 * attributes, a payload, so the codec encrypts them like any other; the history shows only
 * "Encoded failure". An activity's error ("could not connect to redis://alfred-redis:6379 ...") says
 * as much about the target as its results do.
 *
 * Loaded by path (the SDK requires the `failureConverter` export): by the worker for activities and
 * by the workflow bundle for workflow code (src/workers/bundle.ts), by clients through
 * `engineDataConverter`. Failures recorded before this stay plain and still read.
 */
import { DefaultFailureConverter } from '@temporalio/common';

export const failureConverter = new DefaultFailureConverter({ encodeCommonAttributes: true });
