import { defineCommand } from '../command';
import { bashCompletion, zshCompletion } from '../completion';
import { UsageError } from '../errors';
import type { AnyCommand } from '../help';

/** `remediate completion bash|zsh`, completing the commands `all()` lists. */
export function completionCommand(all: () => readonly AnyCommand[]) {
  return defineCommand({
    name: 'completion',
    summary: 'print a shell completion script (bash or zsh)',
    usage: 'bash|zsh',
    description: [
      'Completes commands, their options, runbook names and option values known in advance.',
      '',
      'bash:  remediate completion bash > ~/.local/share/bash-completion/completions/remediate',
      '       (or add  source <(remediate completion bash)  to ~/.bashrc)',
      'zsh:   remediate completion zsh > "${fpath[1]}/_remediate"  (any directory on $fpath), then restart zsh',
      '       (or add  source <(remediate completion zsh)  to ~/.zshrc, after compinit)',
    ].join('\n'),
    operands: [{ name: 'shell', complete: ['bash', 'zsh'] }],
    options: {},
    needs: 'nothing',
    async run(ctx) {
      const shell = ctx.operands[0];
      if (shell === 'bash') console.log(bashCompletion(all()).trimEnd());
      else if (shell === 'zsh') console.log(zshCompletion(all()).trimEnd());
      else throw new UsageError(`usage: remediate completion bash|zsh${shell ? ` (not "${shell}")` : ''}`);
      return 0;
    },
  });
}
