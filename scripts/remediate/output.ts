/**
 * What the engineer reads: results on stdout (text, or JSON under --json), failures on stderr (a line
 * of text, or under --json only `{"error": "...", "code": <exit code>}`).
 */

/** Prints a result: `json` under --json, else `text`. */
export function printResult(asJson: boolean | undefined, json: unknown, text: string): void {
  console.log(asJson ? JSON.stringify(json, null, 2) : text);
}

/** Prints a failure and nothing else. */
export function printError(asJson: boolean, error: string, code: number): void {
  console.error(asJson ? JSON.stringify({ error, code }) : `error: ${error}`);
}

/** True when the arguments ask for JSON (before a `--`, after which everything is an operand). */
export function wantsJson(argv: string[]): boolean {
  const end = argv.indexOf('--');
  return (end === -1 ? argv : argv.slice(0, end)).includes('--json');
}
