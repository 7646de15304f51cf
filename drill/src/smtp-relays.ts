/**
 * The drill's two SMTP relays on loopback (seed 004, "Email delivery issues"): the "primary" the api
 * sends through, and the "sandbox" relay (seed 004's mailhog on port 1025) that captures mail instead
 * of delivering it. Shared by the relay process (smtp-peer.ts) and the fault that makes the primary
 * refuse mail (faults/smtp.ts): the refusal is a file, so it survives a restart of either side.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export type RelayName = 'primary' | 'sandbox';

/** Where the primary refuses: the greeting (554, nothing else works) or each recipient (550). */
export const REFUSAL_MODES = ['connect', 'rcpt'] as const;
export type RefusalMode = (typeof REFUSAL_MODES)[number];

const port = (v: string | undefined, fallback: number) => (v && /^\d+$/.test(v) ? Number(v) : fallback);

/** Ports follow scripts/lib.sh (DRILL_SMTP_PORT, DRILL_SMTP_SANDBOX_PORT). */
export function relayPorts(env: NodeJS.ProcessEnv = process.env): Record<RelayName, number> {
  return { primary: port(env.DRILL_SMTP_PORT, 58025), sandbox: port(env.DRILL_SMTP_SANDBOX_PORT, 58026) };
}

function refusalFile(stackDir: string): string {
  return path.join(stackDir, 'drill', 'smtp', 'primary.refuse');
}

/** How the primary refuses right now, or null when it accepts mail. */
export function readRefusal(stackDir: string): RefusalMode | null {
  const file = refusalFile(stackDir);
  if (!existsSync(file)) return null;
  const mode = readFileSync(file, 'utf8').trim();
  return (REFUSAL_MODES as readonly string[]).includes(mode) ? (mode as RefusalMode) : 'connect';
}

export function writeRefusal(stackDir: string, mode: RefusalMode | null): void {
  const file = refusalFile(stackDir);
  if (mode === null) {
    rmSync(file, { force: true });
    return;
  }
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, `${mode}\n`);
}
