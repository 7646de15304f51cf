/**
 * Fault injector for the drill target: breaks one thing on the running stack, or puts it back.
 *   npx tsx scripts/fault.ts <fault> [--undo] [options]
 *   npx tsx scripts/fault.ts --help
 * Exit codes: 0 done (including "already so"), 1 the fault could not be applied, 2 bad usage.
 */
import { FAULTS, FaultUsageError, findFault, runFault, type FaultOptions } from '../drill/src/faults/catalog';
import { DrillEnvError } from '../drill/src/faults/env';

function help(): string {
  const width = Math.max(...FAULTS.map((f) => f.name.length));
  const lines = FAULTS.map((f) => {
    const opts = Object.entries(f.options)
      .map(([k, v]) => (v ? `[--${k} ${v}]` : `[--${k}]`))
      .join(' ');
    return `  ${f.name.padEnd(width)}  ${f.summary}${opts ? `\n  ${''.padEnd(width)}  options: ${opts}` : ''}`;
  });
  return [
    'usage: npx tsx scripts/fault.ts <fault> [--undo] [options]',
    '',
    'Injects a fault into the drill stack (scripts/stack.sh up); --undo reverses it. Both are idempotent.',
    '',
    'faults:',
    ...lines,
    '',
    'common options: --undo (reverse the fault), --json (print the result as JSON)',
  ].join('\n');
}

class UsageError extends Error {}

function parseArgs(argv: string[]): {
  fault?: string;
  undo: boolean;
  json: boolean;
  help: boolean;
  opts: FaultOptions;
} {
  const out = {
    fault: undefined as string | undefined,
    undo: false,
    json: false,
    help: false,
    opts: {} as FaultOptions,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '-h' || arg === '--help') out.help = true;
    else if (arg === '--undo') out.undo = true;
    else if (arg === '--json') out.json = true;
    else if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const key = eq > 0 ? arg.slice(2, eq) : arg.slice(2);
      if (eq > 0) out.opts[key] = arg.slice(eq + 1);
      else if (argv[i + 1] !== undefined && !argv[i + 1]!.startsWith('--')) out.opts[key] = argv[++i]!;
      else out.opts[key] = true;
    } else if (!out.fault) out.fault = arg;
    else throw new UsageError(`unexpected argument "${arg}"`);
  }
  return out;
}

async function main(): Promise<number> {
  let args: ReturnType<typeof parseArgs>;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (err) {
    console.error(`error: ${(err as Error).message}\n\n${help()}`);
    return 2;
  }
  if (args.help) {
    console.log(help());
    return 0;
  }
  if (!args.fault) {
    console.error(`error: name a fault\n\n${help()}`);
    return 2;
  }
  const def = findFault(args.fault);
  if (!def) {
    console.error(`error: unknown fault "${args.fault}"; known: ${FAULTS.map((f) => f.name).join(', ')}`);
    return 2;
  }
  const unknown = Object.keys(args.opts).filter((k) => !(k in def.options));
  if (unknown.length) {
    const known = Object.keys(def.options);
    console.error(
      `error: ${def.name} does not take ${unknown.map((k) => `--${k}`).join(', ')}` +
        (known.length ? `; it takes ${known.map((k) => `--${k}`).join(', ')}` : '; it takes no options'),
    );
    return 2;
  }
  try {
    const result = await runFault(def.name, args.undo, args.opts);
    if (args.json) console.log(JSON.stringify({ fault: def.name, undo: args.undo, ...result }, null, 2));
    else for (const m of result.messages) console.log(`${def.name}${args.undo ? ' --undo' : ''}: ${m}`);
    return 0;
  } catch (err) {
    if (err instanceof FaultUsageError) {
      console.error(`error: ${err.message}`);
      return 2;
    }
    if (err instanceof DrillEnvError) {
      console.error(`error: ${err.message}`);
      return 1;
    }
    console.error(`error: ${def.name}${args.undo ? ' --undo' : ''} failed: ${(err as Error).message}`);
    return 1;
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
