/**
 * Temporal's time-skipping test server (the Java SDK's, from the jars scripts/install.sh copies), for
 * tests of rules that take hours of workflow time: approval tiers, expiry, stale decisions. Runs the
 * real workflow bundle on a worker with the engine's codecs and a throwaway key ring; decisions are
 * sealed by a client codec with that ring, at the server's clock (which runs ahead of the wall clock
 * as time is skipped).
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import { Client } from '@temporalio/client';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { installRuntime } from '../../src/workers/worker';
import { EncryptionCodec, engineDataConverter, parseSecrets, seal, type CodecSecrets, type KeyRing } from '../../src/lib/codec';
import { acquireLockSignal, guardWorkflowId, SA_PHASE, SA_RUNBOOK, SA_SCENARIO, SA_SEVERITY, SA_TARGET, type GuardInput } from '../../src/workflows/contracts';

const REPO = path.resolve(__dirname, '../..');
/** The wrapper that runs the server's jars: `scripts/temporal-test-server <port>`. */
export const TEST_SERVER = path.join(REPO, 'scripts/temporal-test-server');
/** The workflow bundle test/global-setup.ts builds. */
export const BUNDLE = path.join(REPO, '.stack/build/test-workflow-bundle.js');

/** A key ring of its own per test file: encryption and seal keys nobody else holds. */
export function testSecrets(): CodecSecrets {
  const key = (): string => randomBytes(32).toString('base64');
  return parseSecrets({ encryption: { active: 'test-e1', keys: { 'test-e1': key() } }, seal: { active: 'test-s1', keys: { 'test-s1': key() } } }, '(test key ring)');
}

/** Starts the test server (about a second) with the engine's search attributes registered. */
export async function startTimeSkipping(secrets: CodecSecrets): Promise<TestWorkflowEnvironment> {
  const stackDir = process.env.STACK_DIR ? path.resolve(REPO, process.env.STACK_DIR) : path.join(REPO, '.stack');
  if (!existsSync(path.join(stackDir, 'test-server/lib'))) throw new Error(`no test server in ${stackDir}/test-server: run scripts/install.sh`);
  installRuntime();
  const env = await createWithRetries(secrets);
  const { INDEXED_VALUE_TYPE_KEYWORD: KEYWORD, INDEXED_VALUE_TYPE_INT: INT } = temporal.api.enums.v1.IndexedValueType;
  await env.connection.operatorService.addSearchAttributes({
    namespace: 'default',
    searchAttributes: { [SA_SCENARIO.name]: KEYWORD, [SA_SEVERITY.name]: INT, [SA_TARGET.name]: KEYWORD, [SA_PHASE.name]: KEYWORD, [SA_RUNBOOK.name]: KEYWORD },
  });
  return env;
}

/**
 * The SDK gives the server's JVM five seconds to listen; on a machine busy with the rest of the suite
 * it sometimes needs longer. Only that failure is tried again (three tries in all), each on a new port.
 */
async function createWithRetries(secrets: CodecSecrets): Promise<TestWorkflowEnvironment> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await TestWorkflowEnvironment.createTimeSkipping({
        server: { executable: { type: 'existing-path', path: TEST_SERVER } },
        // env.client: waiting on a result skips time; it encrypts and decrypts as the engine does.
        client: { dataConverter: engineDataConverter(secrets) },
      });
    } catch (err) {
      const message = String((err as Error)?.message ?? err);
      const slow = /at 127\.0\.0\.1:(\d+) did not start within/.exec(message);
      // The late JVM is not the SDK's any more: stopped here, so it neither lingers nor holds the output.
      if (slow) spawnSync('pkill', ['-KILL', '-f', `io\\.temporal\\.testserver\\.TestServer ${slow[1]}( |$)`]);
      if (attempt >= 3 || !slow) throw err;
      process.stderr.write(`time-skipping server: slow start (try ${attempt} of 3), trying again\n`);
    }
  }
}

/** A worker on the test server: the real workflow bundle, the given activities, the engine's codecs. */
export function testWorker(env: TestWorkflowEnvironment, secrets: CodecSecrets, taskQueue: string, activities: object): Promise<Worker> {
  return Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    workflowBundle: { codePath: BUNDLE },
    activities,
    dataConverter: engineDataConverter(secrets),
  });
}

/** Seals every payload as `identity` at the time `at` gives (the server's clock by default). */
export class SealAsCodec implements PayloadCodec {
  constructor(
    private readonly ring: KeyRing,
    private readonly identity: string,
    private readonly at: () => Promise<Date>,
  ) {}

  async encode(payloads: Payload[]): Promise<Payload[]> {
    const at = await this.at();
    return payloads.map((p) => seal(p, this.identity, { via: 'token', at }, this.ring));
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads;
  }
}

/**
 * A client whose signals and updates count for `identity`: sealed with the test ring, then encrypted,
 * as the codec server does for an operator. `at`: when the seal says it was made (default: now, on
 * the server's clock).
 */
export function sealedClient(env: TestWorkflowEnvironment, secrets: CodecSecrets, identity: string, at?: () => Promise<Date>): Client {
  const ring = secrets.seal;
  if (!ring) throw new Error('the test key ring has no seal keys');
  const serverNow = async (): Promise<Date> => new Date(await env.currentTimeMs());
  return new Client({
    connection: env.connection,
    dataConverter: { payloadCodecs: [new SealAsCodec(ring, identity, at ?? serverNow), new EncryptionCodec(secrets.encryption)] },
  });
}

/**
 * The engine's `requestTargetLock` activity on the test server's client: it starts (or signals) the
 * real guard workflow as the engine does, with a 15-minute lease and a guard that idles out after an hour.
 */
export function requestTargetLockOn(env: TestWorkflowEnvironment) {
  return async function requestTargetLock(input: { target: string; resource: string; requester: string; requestId: string; actionKey: string }): Promise<{ guardId: string }> {
    const guardId = guardWorkflowId(input.target, input.resource);
    const guardInput: GuardInput = { target: input.target, resource: input.resource, leaseMs: 15 * 60_000, idleMs: 3600_000 };
    await env.client.workflow.signalWithStart('targetGuard', {
      workflowId: guardId,
      taskQueue: Context.current().info.taskQueue,
      args: [guardInput],
      signal: acquireLockSignal,
      signalArgs: [{ requester: input.requester, requestId: input.requestId, actionKey: input.actionKey }],
    });
    return { guardId };
  };
}
