/** Help text, built from the command definitions: the overview and each command's own. */
import { GLOBAL_OPTIONS, type CommandDef, type OptionDef, type Options } from './command';

export type AnyCommand = CommandDef<Options>;

const CREDENTIAL = `Who you are comes from your credential, not from a flag: a personal token (an admin creates it:
npx tsx scripts/codec-secrets.ts add-token <you>; the local stack's are in .stack/secrets/tokens/)
in $REMEDIATE_CREDENTIALS or ~/.config/remediate/credentials, readable by you only (chmod 600).
\`remediate login\` checks a token with the codec server and writes that file. Every command but
runbooks, completion and help goes through the codec server (codec.serverUrl in the engine config): it
seals what you send with your name (approve, reject, close, abort, start) and decrypts what you read.
You cannot approve an incident you opened.`;

const EXIT_CODES = `Exit codes: 0 success, 1 failed or not resolved, 2 bad usage or input (a missing or unsafe credential too).
Under --json a failure prints only {"error": "...", "code": <exit code>}, on stderr.
Paths you give (--out, --config, $ENGINE_CONFIG, $REMEDIATE_CREDENTIALS) are relative to where you run
the command; config/engine.yaml and .stack default to the repository's.`;

/** `--target T` as help shows it. */
function flag(name: string, def: OptionDef): string {
  const long = `--${name}${def.value ? ` ${def.value}` : ''}`;
  return def.short ? `-${def.short}, ${long}` : long;
}

/** Two columns, the second aligned; a first column too wide puts the second on the next line. */
function columns(rows: [string, string][], max = 44): string[] {
  const width = Math.min(max, Math.max(...rows.map(([a]) => a.length)));
  return rows.flatMap(([a, b]) =>
    a.length > width ? [`  ${a}`, `  ${' '.repeat(width)}  ${b}`] : [`  ${a.padEnd(width)}  ${b}`],
  );
}

function optionRows(options: Options): [string, string][] {
  return Object.entries(options)
    .filter(([, d]) => !d.hidden)
    .map(([name, d]) => [flag(name, d), d.help]);
}

/** `remediate --help`: every command with its usage, then what all commands share. */
export function overview(commands: readonly AnyCommand[]): string {
  return [
    'remediate — start, watch and decide remediation incidents',
    '',
    'Usage: remediate <command> [options]',
    '',
    'Commands:',
    ...columns(
      commands.map((c) => [`${c.name}${c.usage ? ` ${c.usage}` : ''}`, c.summary]),
      52,
    ),
    '',
    "`remediate <command> --help` or `remediate help <command>` shows a command's own options.",
    '',
    CREDENTIAL,
    '',
    'Global options:',
    ...columns(optionRows(GLOBAL_OPTIONS)),
    '',
    EXIT_CODES,
  ].join('\n');
}

/** `remediate <command> --help`. */
export function commandHelp(c: AnyCommand): string {
  const own = optionRows(c.options);
  return [
    `Usage: remediate ${c.name}${c.usage ? ` ${c.usage}` : ''}`,
    '',
    `${c.summary.charAt(0).toUpperCase()}${c.summary.slice(1)}.`,
    ...(c.description ? ['', c.description] : []),
    ...(own.length ? ['', 'Options:', ...columns(own)] : []),
    '',
    'Global options:',
    ...columns(optionRows(GLOBAL_OPTIONS)),
    '',
    EXIT_CODES,
  ].join('\n');
}
