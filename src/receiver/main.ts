/**
 * The alert receiver as its own process: Alertmanager, PagerDuty, Grafana and generic webhooks in,
 * incident workflows out (see docs/receiver.md).
 */
import { loadConfig } from '../config';
import { engineDataConverter } from '../lib/codec';
import { applyListenFlags, parseServerFlags, serveUntilSignal, settingsOrExit } from '../lib/server-main';
import { connectClient, loadCodecSecrets } from '../lib/temporal';
import { loadReceiverConfig, resolveAuth, SOURCES } from './config';
import { loadRoutes } from './routes';
import { createReceiver, createReceiverLogger } from './server';

const USAGE = `Usage: npm run receiver -- [options]

Receives alert webhooks and turns them into incident workflows (docs/receiver.md).

Options:
  --config FILE         receiver settings (default: $RECEIVER_CONFIG or config/receiver.yaml)
  --engine-config FILE  engine settings: Temporal, targets, policy, the codec's secrets file
                        (default: $ENGINE_CONFIG or config/engine.yaml)
  --routes FILE         routing rules (default: routesFile in the receiver settings)
  --host HOST           listen address (default: listen.host, 127.0.0.1)
  --port PORT           listen port (default: listen.port, 8095)
  --check               validate the settings and routes, print a summary, and exit
  -h, --help            show this help

Endpoints: POST /alerts/{alertmanager,pagerduty,grafana,generic}, GET /healthz, GET /readyz, GET /metrics.
Exit status: 0 on a clean shutdown (SIGINT/SIGTERM) or a passing --check, 1 on any error.`;

async function main(): Promise<void> {
  const values = parseServerFlags(['engine-config', 'routes']);
  if (values.help) {
    console.log(USAGE);
    return;
  }

  const codecWarnings: string[] = [];
  const { engine, config, routes, auth, secrets } = settingsOrExit('receiver', () => {
    const engine = loadConfig(values['engine-config'] ?? process.env.ENGINE_CONFIG ?? 'config/engine.yaml');
    const config = loadReceiverConfig(values.config ?? process.env.RECEIVER_CONFIG ?? 'config/receiver.yaml');
    if (values.routes) config.routesFile = values.routes;
    applyListenFlags(config.listen, values);
    const routes = loadRoutes(config.routesFile, engine);
    const auth = resolveAuth(config);
    // What the receiver starts and signals is encrypted: it needs the encryption keys (docs/codec.md).
    const secrets = loadCodecSecrets(engine, (w) => codecWarnings.push(w));
    return { engine, config, routes, auth, secrets };
  });
  const logger = createReceiverLogger(config.logLevel, auth.grafana?.hmac ? [auth.grafana.hmac.header] : []);
  for (const w of codecWarnings) logger.warn(w);

  const enabled = SOURCES.filter((s) => auth[s]);
  for (const s of enabled) {
    const a = auth[s];
    const secrets =
      a && 'signingSecrets' in a ? a.signingSecrets : a && 'bearerTokens' in a ? (a.bearerTokens ?? []) : [];
    const grafanaHmac = s === 'grafana' ? (auth.grafana?.hmac?.secrets ?? []) : [];
    if (secrets.length + grafanaHmac.length === 0)
      logger.warn({ source: s }, 'no secret resolved for %s: it will refuse every request', s);
  }
  if (values.check) {
    console.log(
      `receiver config OK: ${routes.rules.length} routes from ${routes.origin}, sources: ${enabled.join(', ') || '(none)'}, ` +
        `listen ${config.listen.host}:${config.listen.port}, targets: ${[...routes.targets].join(', ')}, ` +
        `codec secrets ${secrets.origin} (encryption key ${secrets.encryption.active})`,
    );
    return;
  }

  const client = await connectClient(engine, engineDataConverter(secrets));
  try {
    const receiver = createReceiver({ config, engine, routes, client, logger, auth, defaultMetrics: true });
    await serveUntilSignal(receiver, logger, 'receiver');
  } finally {
    await client.connection.close();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
