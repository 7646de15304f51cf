import { defineCommand } from '../command';

export default defineCommand({
  name: 'whoami',
  summary: 'who the codec server takes your credential for',
  usage: '',
  options: {},
  needs: 'identity',
  async run(ctx, me) {
    ctx.print(
      { name: me.name, via: me.via, server: me.codecUrl, credentials: me.credential },
      `${me.name} (via ${me.via}) at ${me.codecUrl}; credential ${me.credential}`,
    );
    return 0;
  },
});
