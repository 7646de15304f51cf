/**
 * Parsing and dispatch, built from the command definitions: the command is the first operand; options
 * before it must be global ones; after it, the global options and the command's own, nothing else.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ConfigError, loadConfig, type EngineConfig } from '../../src/config';
import { GLOBAL_OPTIONS, type Ctx, type GlobalValues, type Options } from './command';
import { signIn, withSession } from './codec';
import { COMMANDS } from './commands';
import { UsageError } from './errors';
import { commandHelp, overview, type AnyCommand } from './help';
import { printResult } from './output';
import { configFile, packageVersion, stackDir } from './paths';

const AS_REFUSED =
  '--as is not an option: who you are comes from your credential (remediate whoami shows it; remediate login changes it)';

function parserOptions(options: Options): NonNullable<ParseArgsConfig['options']> {
  return Object.fromEntries(
    Object.entries(options).map(([name, d]) => [
      name,
      { type: d.type, ...(d.short ? { short: d.short } : {}), ...(d.multiple ? { multiple: true } : {}) },
    ]),
  );
}

/** The command's name and the arguments without it; an option before the command must be a global one. */
function splitCommand(argv: string[]): { name?: string; rest: string[] } {
  const { tokens } = parseArgs({
    args: argv,
    options: parserOptions(GLOBAL_OPTIONS),
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  for (const t of tokens) {
    if (t.kind === 'positional')
      return { name: t.value, rest: [...argv.slice(0, t.index), ...argv.slice(t.index + 1)] };
    if (t.kind === 'option' && !Object.hasOwn(GLOBAL_OPTIONS, t.name))
      throw new UsageError(`unknown option ${t.rawName} (see remediate --help; a command's own options go after it)`);
  }
  return { rest: argv };
}

/** Strict parsing against `options`; an option the command does not take is named in the error. */
function parse(
  args: string[],
  options: Options,
  where: { name?: string },
): { values: Record<string, unknown>; operands: string[] } {
  const config = parserOptions(options);
  const cmd = where.name ? `remediate ${where.name}` : 'remediate';
  const loose = parseArgs({ args, options: config, strict: false, allowPositionals: true, tokens: true });
  for (const t of loose.tokens)
    if (t.kind === 'option' && !Object.hasOwn(options, t.name))
      throw new UsageError(`unknown option ${t.rawName} for ${cmd} (see ${cmd} --help)`);
  try {
    const strict = parseArgs({ args, options: config, strict: true, allowPositionals: true });
    return { values: strict.values, operands: strict.positionals };
  } catch (err) {
    throw new UsageError(`${(err as Error).message} (see ${cmd} --help)`);
  }
}

function printVersion(json: boolean | undefined): number {
  printResult(json, { version: packageVersion() }, packageVersion());
  return 0;
}

/** The engine config, with .stack defaulting to the repository's; a bad file is bad input. */
function config(values: GlobalValues): EngineConfig {
  try {
    return loadConfig(configFile(values.config), { ...process.env, STACK_DIR: stackDir() });
  } catch (err) {
    if (err instanceof ConfigError) throw new UsageError(err.message);
    throw err;
  }
}

/** Runs one command; resolves to the exit code, rejects with UsageError (exit 2) or Failure (exit 1). */
export async function run(argv: string[]): Promise<number> {
  const { name, rest } = splitCommand(argv);
  if (name === undefined) {
    const global = parse(rest, GLOBAL_OPTIONS, {}).values as GlobalValues;
    if (global.as !== undefined) throw new UsageError(AS_REFUSED);
    if (global.version) return printVersion(global.json);
    if (global.help) {
      console.log(overview(COMMANDS));
      return 0;
    }
    if (global.json) throw new UsageError('a command is required (see remediate --help)');
    console.log(overview(COMMANDS));
    return 2;
  }
  const cmd: AnyCommand | undefined = COMMANDS.find((c) => c.name === name);
  if (!cmd) throw new UsageError(`unknown command "${name}" (see remediate --help)`);
  const parsed = parse(rest, { ...GLOBAL_OPTIONS, ...cmd.options }, cmd);
  const opts = parsed.values as Ctx<Options>['opts'];
  if (opts.as !== undefined) throw new UsageError(AS_REFUSED);
  if (opts.version) return printVersion(opts.json);
  if (opts.help) {
    console.log(commandHelp(cmd));
    return 0;
  }
  const maxOperands = cmd.maxOperands ?? cmd.operands?.length ?? 0;
  if (parsed.operands.length > maxOperands)
    throw new UsageError(`usage: remediate ${cmd.name}${cmd.usage ? ` ${cmd.usage}` : ''}`);
  const ctx: Ctx<Options> = {
    opts,
    operands: parsed.operands,
    print: (json, text) => printResult(opts.json, json, text),
  };
  switch (cmd.needs) {
    case 'nothing':
      return cmd.run(ctx);
    case 'config':
      return cmd.run(ctx, config(opts));
    case 'identity':
      return cmd.run(ctx, await signIn(config(opts)));
    case 'client': {
      const cfg = config(opts);
      // Everything that can be checked is checked before the credential is read or anything is sent.
      const runSignedIn = cmd.prepare(ctx, cfg);
      return withSession(cfg, runSignedIn);
    }
  }
}
