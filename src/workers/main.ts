/**
 * The engine's worker: runs every runbook and its activities.
 *   npm run worker            (bundles workflows from source)
 *   node dist/src/workers/main.js   (uses dist/workflow-bundle.js when present)
 * Stops gracefully on SIGINT/SIGTERM: in-flight activities finish, workflows resume elsewhere.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { ConfigError, loadConfig } from '../config';
import { createLogger } from '../lib/logger';
import { connectClient, connectWorker, engineDataConverterOf } from '../lib/temporal';
import { createEngineWorker, installRuntime } from './worker';

const HELP = `remediation-engine worker

Usage: npm run worker [-- --help]

Environment:
  ENGINE_CONFIG      config file (default config/engine.yaml); its codec.secretsFile holds the keys
                     payloads are encrypted and seals verified with (docs/codec.md)
  WORKFLOW_BUNDLE    pre-built workflow bundle (default dist/workflow-bundle.js if present)
  LOG_LEVEL          pino level (default info)
  WORKER_BUILD_ID    run as this build of the worker deployment WORKER_DEPLOYMENT_NAME (default
                     remediation-engine): incidents stay on the build they started on; unset,
                     the worker is unversioned (docs/production.md, "Upgrading without stopping incidents")
Metrics: Prometheus text at http://<worker.metricsAddress>/metrics (default 127.0.0.1:9464).`;

async function main(): Promise<void> {
  if (process.argv.includes('--help') || process.argv.includes('-h')) {
    console.log(HELP);
    return;
  }
  const logger = createLogger('worker');
  let setup;
  try {
    const config = loadConfig();
    // One codec for the worker and its client: payloads encrypted, seals verified (docs/codec.md).
    setup = { config, dataConverter: engineDataConverterOf(config, (w) => logger.warn(w)) };
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`worker: ${err.message}`);
      process.exit(1);
    }
    throw err;
  }
  const { config, dataConverter } = setup;
  installRuntime(config.worker.metricsAddress);
  const bundlePath = process.env.WORKFLOW_BUNDLE ?? path.resolve('dist/workflow-bundle.js');
  const connection = await connectWorker(config);
  const client = await connectClient(config, dataConverter);
  try {
    const worker = await createEngineWorker({
      config,
      connection,
      client,
      logger,
      dataConverter,
      ...(existsSync(bundlePath) ? { workflowBundle: { codePath: bundlePath } } : {}),
    });
    const d = config.worker.deployment;
    logger.info(
      {
        taskQueue: config.temporal.taskQueue,
        address: config.temporal.address,
        metrics: config.worker.metricsAddress,
        deployment: d ? { name: d.name, buildId: d.buildId, defaultBehavior: d.defaultBehavior } : 'unversioned',
      },
      'worker started',
    );
    await worker.run();
    logger.info('worker stopped');
  } finally {
    await connection.close();
    await client.connection.close();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
