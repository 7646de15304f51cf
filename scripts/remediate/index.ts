/**
 * remediate: the engineer's client for incidents. Start runbooks (rollback first among them), watch
 * them, approve or reject steps, close or abort incidents. Run `remediate --help`; each command is a
 * module in commands/, and help, completion and parsing are built from them.
 *
 * Who you are comes from your credential: a personal token (scripts/codec-secrets.ts add-token) in
 * $REMEDIATE_CREDENTIALS or ~/.config/remediate/credentials (mode 600; `remediate login` writes it).
 * The script holds no key: every payload goes through the codec server (`codec.serverUrl`), which
 * seals what you send with your name and decrypts what you read (docs/codec.md).
 *
 * Exit codes: 0 success; 1 the operation failed or the incident did not resolve; 2 bad usage or input
 * (a missing or unsafe credential included). Under --json a failure prints only
 * {"error": "...", "code": <exit code>} on stderr.
 */
import { run } from './cli';
import { exitCodeOf } from './errors';
import { printError, wantsJson } from './output';

export { run } from './cli';
export { Failure, UsageError } from './errors';
export { credentialsFile, readCredential } from './credential';

/** Runs the command and reports a failure as text, or under --json as one JSON object; resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  try {
    return await run(argv);
  } catch (err) {
    const code = exitCodeOf(err);
    printError(wantsJson(argv), err instanceof Error ? err.message : String(err), code);
    return code;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    // Only a failure to print could land here.
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
