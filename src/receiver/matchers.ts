/**
 * Alertmanager's label matchers, as its routes write them: `alertname="X"`, `severity=~"crit|warn"`,
 * `env!="dev"`, `job!~"test.*"`. One string may hold one matcher or several, separated by commas and
 * optionally wrapped in braces (`{env="prod", job!~"test.*"}`).
 *
 * As in Alertmanager: values may be double-quoted (with `\"`, `\\` and `\n` escapes) or bare; regular
 * expressions are anchored at both ends; a label the alert lacks has the value "" (so `env!="dev"`
 * holds for an alert without `env`, and `env=""` requires it absent). A leading `(?i)` makes a regular
 * expression ignore case (RE2's inline flag; JavaScript has none).
 */

export type MatchOp = '=' | '!=' | '=~' | '!~';

export interface LabelMatcher {
  label: string;
  op: MatchOp;
  value: string;
  /** Whether the matcher selects alerts by what they have (`=`, `=~`) rather than by what they lack. */
  positive: boolean;
  test(value: string): boolean;
}

export class MatcherSyntaxError extends Error {}

/** Compiles a regular expression the way Alertmanager applies it: anchored, `(?i)` as the `i` flag. */
export function compileAnchored(source: string): RegExp {
  const ignoreCase = source.startsWith('(?i)');
  return new RegExp(`^(?:${ignoreCase ? source.slice('(?i)'.length) : source})$`, ignoreCase ? 'i' : '');
}

export function labelMatcher(label: string, op: MatchOp, value: string): LabelMatcher {
  const base = { label, op, value, positive: op === '=' || op === '=~' };
  switch (op) {
    case '=':
      return { ...base, test: (v) => v === value };
    case '!=':
      return { ...base, test: (v) => v !== value };
    case '=~':
    case '!~': {
      let re: RegExp;
      try {
        re = compileAnchored(value);
      } catch (err) {
        throw new MatcherSyntaxError(`${label}${op}: ${(err as Error).message}`);
      }
      return op === '=~' ? { ...base, test: (v) => re.test(v) } : { ...base, test: (v) => !re.test(v) };
    }
  }
}

const LABEL = /^[A-Za-z_][A-Za-z0-9_]*/;
const OPS: readonly MatchOp[] = ['=~', '!~', '!=', '='];

/** Parses a double-quoted string starting at `text[at]`; returns the value and the index after it. */
function quoted(text: string, at: number, what: string): [string, number] {
  let out = '';
  for (let i = at + 1; i < text.length; i++) {
    const c = text[i]!;
    if (c === '"') return [out, i + 1];
    if (c === '\\') {
      const next = text[i + 1];
      if (next === undefined) break;
      out += next === 'n' ? '\n' : next;
      i++;
      continue;
    }
    out += c;
  }
  throw new MatcherSyntaxError(`${what} has an unterminated quoted string`);
}

/** Parses one string of matchers (see the module comment); every error says where and what. */
export function parseMatchers(input: string): LabelMatcher[] {
  let text = input.trim();
  if (text.startsWith('{')) {
    if (!text.endsWith('}')) throw new MatcherSyntaxError(`"${input}": "{" without a closing "}"`);
    text = text.slice(1, -1);
  }
  const out: LabelMatcher[] = [];
  let i = 0;
  const skipSpace = (): void => {
    while (i < text.length && /\s/.test(text[i]!)) i++;
  };
  for (;;) {
    skipSpace();
    if (i >= text.length) break;
    let label: string;
    if (text[i] === '"') {
      [label, i] = quoted(text, i, `"${input}"`);
    } else {
      const m = LABEL.exec(text.slice(i));
      if (!m) throw new MatcherSyntaxError(`"${input}": expected a label name at "${text.slice(i)}"`);
      label = m[0];
      i += label.length;
    }
    skipSpace();
    const op = OPS.find((o) => text.startsWith(o, i));
    if (!op)
      throw new MatcherSyntaxError(`"${input}": expected one of =, !=, =~, !~ after "${label}" at "${text.slice(i)}"`);
    i += op.length;
    skipSpace();
    let value: string;
    if (text[i] === '"') {
      [value, i] = quoted(text, i, `"${input}"`);
    } else {
      const end = text.indexOf(',', i);
      value = text.slice(i, end === -1 ? text.length : end).trim();
      if (value.includes('"')) throw new MatcherSyntaxError(`"${input}": a value with a quote must be quoted`);
      i = end === -1 ? text.length : end;
    }
    out.push(labelMatcher(label, op, value));
    skipSpace();
    if (i >= text.length) break;
    if (text[i] !== ',') throw new MatcherSyntaxError(`"${input}": expected "," at "${text.slice(i)}"`);
    i++;
  }
  if (out.length === 0) throw new MatcherSyntaxError(`"${input}" holds no matcher`);
  return out;
}
