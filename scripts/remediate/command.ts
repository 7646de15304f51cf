/**
 * What a command is: its name, one line for the overview, its operands, its own options, and what it
 * needs before it runs. Help, completion, option parsing and dispatch are all built from these
 * definitions (commands/index.ts lists them), so a command is one module and nothing else.
 */
import type { Client } from '@temporalio/client';
import type { PayloadCodec } from '@temporalio/common';
import type { EngineConfig } from '../../src/config';

export interface OptionDef {
  type: 'string' | 'boolean';
  short?: string;
  multiple?: boolean;
  /** The value's placeholder in help (`--target T`). */
  value?: string;
  /** What the shell completes the value with: files, or a fixed list of words. */
  complete?: 'file' | readonly string[];
  help: string;
  /** Parsed (so it can be refused with a reason) but shown nowhere. */
  hidden?: boolean;
}

export type Options = Record<string, OptionDef>;

type ValueOf<D extends OptionDef> = D['type'] extends 'boolean'
  ? boolean
  : D extends { multiple: true }
    ? string[]
    : string;

/** The values of a command's options once parsed: each may be absent. */
export type Values<O extends Options> = { [K in keyof O]?: ValueOf<O[K]> };

/** Options every command takes. */
export const GLOBAL_OPTIONS = {
  json: { type: 'boolean', help: 'machine-readable output; errors too, as {"error": "...", "code": N} on stderr' },
  config: {
    type: 'string',
    value: 'FILE',
    complete: 'file',
    help: "engine config (default: $ENGINE_CONFIG, else the repository's config/engine.yaml)",
  },
  help: { type: 'boolean', short: 'h', help: 'this help' },
  version: { type: 'boolean', help: 'print the version and exit' },
  // Refused with its own message: who you are comes from the credential, never from a flag.
  as: { type: 'string', hidden: true, help: '' },
} as const satisfies Options;

export type GlobalValues = Values<typeof GLOBAL_OPTIONS>;

/** What every command gets: its parsed options and operands, and the shared output. */
export interface Ctx<O extends Options> {
  opts: Values<O> & GlobalValues;
  operands: string[];
  /** Prints a result: `json` under --json, else `text`. */
  print(json: unknown, text: string): void;
}

/** Signed in: who the codec server takes the credential for, and how to reach it. */
export interface Identity {
  cfg: EngineConfig;
  name: string;
  via: string;
  codecUrl: string;
  credential: string;
}

/** Signed in and connected: a Temporal client whose payloads go through the codec server. */
export interface Session extends Identity {
  client: Client;
  codecs: PayloadCodec[];
}

/** An operand as help and completion show it. */
export interface Operand {
  name: string;
  /** The words the shell completes it with, when they are known in advance. */
  complete?: readonly string[];
}

interface Common<O extends Options> {
  name: string;
  summary: string;
  /** Operands, then options, as the usage line shows them after `remediate <name>`. */
  usage: string;
  /** More than the summary, for `remediate <name> --help`. */
  description?: string;
  operands?: readonly Operand[];
  /** At most this many operands (default: as many as `operands` lists). */
  maxOperands?: number;
  options: O;
}

/**
 * What a command needs decides when it runs: `nothing` (no config read), `config`, `identity` (the
 * credential read and checked with the codec server) or `client`, whose `prepare` checks everything it
 * can before the credential is read or anything is sent, and returns what runs once connected.
 */
export type CommandDef<O extends Options = Options> = Common<O> &
  (
    | { needs: 'nothing'; run(ctx: Ctx<O>): Promise<number> }
    | { needs: 'config'; run(ctx: Ctx<O>, cfg: EngineConfig): Promise<number> }
    | { needs: 'identity'; run(ctx: Ctx<O>, me: Identity): Promise<number> }
    | { needs: 'client'; prepare(ctx: Ctx<O>, cfg: EngineConfig): (s: Session) => Promise<number> }
  );

/** Declares a command; the options' types flow into its handlers. */
export function defineCommand<const O extends Options>(def: CommandDef<O>): CommandDef<O> {
  return def;
}
