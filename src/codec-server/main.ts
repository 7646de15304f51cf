/**
 * The codec server as its own process (`npm run codec-server`): the Temporal UI's and CLI's remote
 * codec, with authenticated, sealed encodes (docs/codec.md).
 */
import { loadSecrets } from '../lib/codec/secrets';
import { createLogger } from '../lib/logger';
import { applyListenFlags, parseServerFlags, serveUntilSignal, settingsOrExit } from '../lib/server-main';
import { loadCodecServerConfig } from './config';
import { createCodecServer } from './server';

const USAGE = `Usage: npm run codec-server -- [options]

Temporal's remote codec (POST /encode, /decode) for the Temporal UI and CLI: decrypts payloads for
signed-in operators, and seals what they send with their name (docs/codec.md).

Options:
  --config FILE    settings (default: $CODEC_SERVER_CONFIG or config/codec-server.yaml, if present)
  --secrets FILE   secrets file (default: secretsFile in the settings, .stack/secrets/codec.yaml)
  --host HOST      listen address (default: listen.host, 127.0.0.1)
  --port PORT      listen port (default: listen.port, 8234)
  --check          validate the settings and the secrets file, print a summary, and exit
  -h, --help       show this help

Environment: CODEC_LISTEN=host:port, CODEC_SECRETS_FILE, CODEC_UI_ORIGINS (comma-separated), CODEC_SESSION_TTL.
Exit status: 0 on a clean shutdown (SIGINT/SIGTERM) or a passing --check, 1 on any error.`;

async function main(): Promise<void> {
  const values = parseServerFlags(['secrets']);
  if (values.help) {
    console.log(USAGE);
    return;
  }

  const { config, secrets } = settingsOrExit('codec-server', () => {
    const config = loadCodecServerConfig(values.config);
    if (values.secrets) config.secretsFile = values.secrets;
    applyListenFlags(config.listen, values);
    return { config, secrets: loadSecrets(config.secretsFile) };
  });
  const logger = createLogger('codec-server', config.logLevel);
  for (const w of secrets.warnings) logger.warn(w);

  const server = settingsOrExit('codec-server', () => createCodecServer({ config, secrets, logger }));
  if (values.check) {
    console.log(
      `codec server config OK: listen ${config.listen.host}:${config.listen.port}, secrets ${secrets.origin}, ` +
        `${secrets.operators.length} operators${secrets.oidc ? `, OIDC issuer ${secrets.oidc.issuer}` : ''}, ` +
        `encryption key ${secrets.encryption.active} (${secrets.encryption.keys.size} known), ` +
        `seal key ${secrets.seal?.active} (${secrets.seal?.keys.size} known), UI origins ${config.uiOrigins.join(', ')}`,
    );
    return;
  }
  await serveUntilSignal(server, logger, 'codec server');
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
