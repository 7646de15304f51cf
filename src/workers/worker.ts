/**
 * Builds the engine's worker from configuration and injected clients. The entrypoint (main.ts) and
 * the tests both use it, so tests run exactly the worker users run.
 */
import Docker from 'dockerode';
import { type Client } from '@temporalio/client';
import type { DataConverter, VersioningBehavior } from '@temporalio/common';
import { DefaultLogger, Runtime, Worker, type NativeConnection, type WorkerOptions } from '@temporalio/worker';
import type { Logger } from 'pino';
import { createActivities, type ActivityDeps } from '../activities';
import { DockerHosts } from '../activities/containers/docker-hosts';
import { WORKFLOWS_PATH, workflowBundleOptions } from './bundle';
import type { EngineConfig } from '../config';
import { engineDataConverterOf } from '../lib/temporal';

export interface EngineWorkerOptions {
  config: EngineConfig;
  connection: NativeConnection;
  client: Client;
  logger: Logger;
  taskQueue?: string;
  /** Pre-bundled workflow code (production); otherwise workflows are bundled from source. */
  workflowBundle?: { codePath: string } | { code: string };
  docker?: Docker;
  /** The activities to register; by default the real ones built from the deps. */
  activities?: ReturnType<typeof createActivities>;
  /**
   * How payloads are encrypted and seals verified; by default the engine's codec with the keys of
   * `codec.secretsFile` (docs/codec.md).
   */
  dataConverter?: DataConverter;
  overrides?: Partial<WorkerOptions>;
}

export function dockerFromConfig(config: EngineConfig): Docker {
  return new Docker({ socketPath: config.docker.socketPath });
}

export async function createEngineWorker(opts: EngineWorkerOptions): Promise<Worker> {
  const docker = opts.docker ?? dockerFromConfig(opts.config);
  const deps: ActivityDeps = {
    config: opts.config,
    docker,
    // Every target's Docker client is built here, once: a certificate that cannot be read stops the
    // worker at start, naming its setting, rather than an incident half-way.
    dockerHosts: new DockerHosts(opts.config, docker).buildAll(),
    client: opts.client,
    logger: opts.logger,
  };
  const dataConverter = opts.dataConverter ?? engineDataConverterOf(opts.config, (w) => opts.logger.warn(w));
  return Worker.create({
    connection: opts.connection,
    namespace: opts.config.temporal.namespace,
    dataConverter,
    taskQueue: opts.taskQueue ?? opts.config.temporal.taskQueue,
    ...(opts.workflowBundle
      ? { workflowBundle: opts.workflowBundle }
      : { workflowsPath: WORKFLOWS_PATH, bundlerOptions: { preloadModules: workflowBundleOptions().preloadModules ?? [] } }),
    activities: opts.activities ?? createActivities(deps),
    maxConcurrentActivityTaskExecutions: opts.config.worker.maxConcurrentActivityTaskExecutions,
    shutdownGraceTime: opts.config.worker.shutdownGraceTimeMs,
    ...workflowCacheOptions(opts.config.worker),
    ...deploymentOptions(opts.config.worker),
    ...opts.overrides,
  });
}

/** The sticky-cache options that are set in configuration; the SDK's defaults stand for the rest. */
function workflowCacheOptions(w: EngineConfig['worker']): Partial<WorkerOptions> {
  return {
    ...(w.maxCachedWorkflows !== undefined ? { maxCachedWorkflows: w.maxCachedWorkflows } : {}),
    ...(w.maxConcurrentWorkflowTaskExecutions !== undefined ? { maxConcurrentWorkflowTaskExecutions: w.maxConcurrentWorkflowTaskExecutions } : {}),
  };
}

/**
 * A version of a worker deployment when `worker.deployment` is set, so the server routes each
 * workflow to the build it belongs to (docs/production.md). Unset: unversioned, as before.
 */
export function deploymentOptions(w: EngineConfig['worker']): Pick<WorkerOptions, 'workerDeploymentOptions'> {
  const d = w.deployment;
  if (!d) return {};
  return {
    workerDeploymentOptions: {
      useWorkerVersioning: true,
      version: { deploymentName: d.name, buildId: d.buildId },
      defaultVersioningBehavior: VERSIONING_BEHAVIOR[d.defaultBehavior],
    },
  };
}

const VERSIONING_BEHAVIOR = { pinned: 'PINNED', 'auto-upgrade': 'AUTO_UPGRADE' } as const satisfies Record<string, VersioningBehavior>;

let runtimeInstalled = false;

/** Worker runtime: Prometheus metrics endpoint and log forwarding; installed once per process. */
export function installRuntime(metricsAddress?: string): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  Runtime.install({
    logger: new DefaultLogger('WARN'),
    ...(metricsAddress ? { telemetryOptions: { metrics: { prometheus: { bindAddress: metricsAddress } } } } : {}),
  });
}
