/**
 * `smtp-refuse`: the drill's primary SMTP relay refuses mail (seed 004, "Email delivery issues":
 * `Connection refused` from SMTP, no verification emails). `--at connect` (default) answers 554 to
 * every greeting; `--at rcpt` accepts the session but rejects each recipient with 550. Undo makes the
 * primary accept mail again. The sandbox relay is never touched.
 */
import type { FaultDef } from './catalog';
import { FaultUsageError } from './catalog';
import { REFUSAL_MODES, readRefusal, writeRefusal, type RefusalMode } from '../smtp-relays';

function modeOf(v: string | boolean | undefined): RefusalMode {
  if (v === undefined || v === true) return 'connect';
  if ((REFUSAL_MODES as readonly unknown[]).includes(v)) return v as RefusalMode;
  throw new FaultUsageError(`--at must be one of ${REFUSAL_MODES.join(', ')}`);
}

export const smtpRefuse: FaultDef = {
  name: 'smtp-refuse',
  summary: 'the primary SMTP relay refuses mail: 554 on connect (--at connect) or 550 per recipient (--at rcpt)',
  options: { at: 'connect|rcpt' },
  async apply(ctx, opts) {
    const mode = modeOf(opts.at);
    if (readRefusal(ctx.env.stackDir) === mode) return { messages: [`the primary SMTP relay already refuses at ${mode}`] };
    writeRefusal(ctx.env.stackDir, mode);
    return { messages: [`the primary SMTP relay now refuses at ${mode}`] };
  },
  async undo(ctx) {
    if (readRefusal(ctx.env.stackDir) === null) return { messages: ['the primary SMTP relay already accepts mail'] };
    writeRefusal(ctx.env.stackDir, null);
    return { messages: ['the primary SMTP relay accepts mail again'] };
  },
};
