import { defineCommand } from '../command';
import { UsageError } from '../errors';
import { commandHelp, overview, type AnyCommand } from '../help';

/** `remediate help [command]`: the overview, or one command's help. */
export function helpCommand(all: () => readonly AnyCommand[], names: readonly string[]) {
  return defineCommand({
    name: 'help',
    summary: "this overview, or a command's own help",
    usage: '[command]',
    operands: [{ name: 'command', complete: names }],
    options: {},
    needs: 'nothing',
    async run(ctx) {
      const name = ctx.operands[0];
      if (name === undefined) {
        console.log(overview(all()));
        return 0;
      }
      const c = all().find((x) => x.name === name);
      if (!c) throw new UsageError(`unknown command "${name}" (see remediate --help)`);
      console.log(commandHelp(c));
      return 0;
    },
  });
}
