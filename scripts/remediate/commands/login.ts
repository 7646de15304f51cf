import { whoami } from '../../../src/lib/codec/remote';
import { defineCommand } from '../command';
import { withCodecErrors } from '../codec';
import { credentialsFile, readTokenFromStdin, writeCredential } from '../credential';
import { UsageError } from '../errors';

/** `remediate login`: a token from stdin, checked with the codec server, stored as the credential. */
export default defineCommand({
  name: 'login',
  summary: 'store your personal token (read from stdin) as your credential',
  usage: '',
  description:
    'Reads your personal token from stdin (typed at a prompt, not echoed, or piped), checks it with the codec\n' +
    'server and writes it to $REMEDIATE_CREDENTIALS or ~/.config/remediate/credentials (mode 600).',
  options: {},
  needs: 'config',
  async run(ctx, cfg) {
    const token = await readTokenFromStdin();
    if (!token) throw new UsageError('no token on stdin: remediate login reads your personal token (one line)');
    const server = cfg.codec.serverUrl;
    const me = await withCodecErrors(() => whoami({ url: server, token }), server);
    const file = credentialsFile();
    writeCredential(file, token);
    ctx.print(
      { name: me.name, via: me.via, server, credentials: file },
      `signed in as ${me.name} at ${server}; credential stored in ${file} (mode 600)`,
    );
    return 0;
  },
});
