/**
 * codec-secrets: creates and edits the codec's secrets file (src/lib/codec/secrets.ts). Run
 * `npx tsx scripts/codec-secrets.ts --help`.
 *
 * The file is written 0600, atomically, and validated before it replaces the old one. Nothing
 * secret is printed, except a new personal token, once, by add-token.
 *
 * Exit codes: 0 success; 1 failure; 2 bad usage.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { stringify as stringifyYaml } from 'yaml';
import {
  hashPassword,
  newKey,
  newToken,
  parseSecrets,
  readSecretsDocument,
  type SecretsFile,
} from '../src/lib/codec/secrets';

export class UsageError extends Error {}

const HELP = `codec-secrets — the codec's secrets file: encryption and seal keys, operators

Usage:
  codec-secrets init [--force]              create the file with fresh encryption and seal keys
  codec-secrets add-operator <name>         read a password from stdin, store its scrypt hash
  codec-secrets add-token <name>            print a new personal token (once), store its sha256
  codec-secrets remove-operator <name>      remove an operator (their sessions end at the next restart)
  codec-secrets rotate-encryption           new active encryption key; older keys still decrypt
  codec-secrets rotate-seal                 new active seal key; older keys still verify

Options:
  --file FILE    the secrets file (default: $CODEC_SECRETS_FILE or .stack/secrets/codec.yaml)
  -h, --help     show this help

A password is read from stdin: typed at a prompt (not echoed), or piped (the first line).
Keep every old key while histories that used it may still be read or replayed.`;

type Doc = {
  encryption: { active: string; keys: Record<string, string> };
  seal?: { active: string; keys: Record<string, string> };
  operators?: Array<{ name: string; password?: string; token?: string }>;
  oidc?: SecretsFile['oidc'];
};

/** The next id after the highest `<prefix><n>` in use: k1 → k2. */
export function nextKeyId(prefix: string, ids: string[]): string {
  const used = ids.map((id) => new RegExp(`^${prefix}(\\d+)$`).exec(id)).map((m) => (m ? Number(m[1]) : 0));
  let n = Math.max(0, ...used) + 1;
  while (ids.includes(`${prefix}${n}`)) n += 1;
  return `${prefix}${n}`;
}

export function freshDocument(): Doc {
  return {
    encryption: { active: 'k1', keys: { k1: newKey() } },
    seal: { active: 's1', keys: { s1: newKey() } },
    operators: [],
  };
}

export function rotate(doc: Doc, which: 'encryption' | 'seal'): string {
  const ring = doc[which];
  if (!ring) {
    doc[which] = { active: 's1', keys: { s1: newKey() } };
    return 's1';
  }
  const id = nextKeyId(which === 'encryption' ? 'k' : 's', Object.keys(ring.keys));
  ring.keys = { [id]: newKey(), ...ring.keys };
  ring.active = id;
  return id;
}

function operator(doc: Doc, name: string): { name: string; password?: string; token?: string } {
  doc.operators ??= [];
  let op = doc.operators.find((o) => o.name === name);
  if (!op) {
    op = { name };
    doc.operators.push(op);
  }
  return op;
}

export function setPassword(doc: Doc, name: string, hash: string): void {
  operator(doc, name).password = hash;
}

export function setToken(doc: Doc, name: string, stored: string): void {
  operator(doc, name).token = stored;
}

const HEADER = `# Codec secrets (src/lib/codec/secrets.ts): keep this file 0600 and out of version control.
# Edit with scripts/codec-secrets.ts. Keep old keys while histories that used them may be read or replayed.
`;

/** Validates, then writes atomically with mode 0600. */
export function writeSecrets(file: string, doc: Doc): void {
  const abs = path.resolve(file);
  parseSecrets(doc, abs);
  mkdirSync(path.dirname(abs), { recursive: true, mode: 0o700 });
  const text = abs.endsWith('.json') ? `${JSON.stringify(doc, null, 2)}\n` : HEADER + stringifyYaml(doc);
  const tmp = `${abs}.${process.pid}.tmp`;
  writeFileSync(tmp, text, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, abs);
}

function readDoc(file: string): Doc {
  const raw = readSecretsDocument(file);
  parseSecrets(raw, path.resolve(file)); // refuse to edit a file that is already invalid
  return raw as Doc;
}

async function readPassword(): Promise<string> {
  const stdin = process.stdin;
  if (!stdin.isTTY) {
    const text = readFileSync(0, 'utf8');
    return text.split(/\r?\n/)[0] ?? '';
  }
  process.stderr.write('Password: ');
  stdin.setRawMode(true);
  stdin.resume();
  stdin.setEncoding('utf8');
  return new Promise((resolve, reject) => {
    let value = '';
    const onData = (chunk: string) => {
      for (const c of chunk) {
        if (c === '\r' || c === '\n' || c === '\u0004') {
          stdin.setRawMode(false);
          stdin.pause();
          stdin.off('data', onData);
          process.stderr.write('\n');
          resolve(value);
          return;
        }
        if (c === '\u0003') {
          stdin.setRawMode(false);
          reject(new UsageError('cancelled'));
          return;
        }
        if (c === '\u007f' || c === '\b') value = value.slice(0, -1);
        else value += c;
      }
    };
    stdin.on('data', onData);
  });
}

export async function run(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      file: { type: 'string' },
      force: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    allowPositionals: true,
    strict: true,
  });
  const [command, name, ...rest] = positionals;
  if (values.help || !command) {
    console.log(HELP);
    return;
  }
  if (rest.length > 0) throw new UsageError(`unexpected arguments: ${rest.join(' ')}`);
  const file = path.resolve(values.file ?? process.env.CODEC_SECRETS_FILE ?? '.stack/secrets/codec.yaml');
  const needName = () => {
    if (!name) throw new UsageError(`${command} needs an operator name`);
    if (!/^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,127}$/.test(name))
      throw new UsageError(`"${name}" is not an operator name (letters, digits and _ . @ + -)`);
    return name;
  };
  switch (command) {
    case 'init': {
      if (existsSync(file) && !values.force)
        throw new UsageError(`${file} exists; rotate its keys instead, or pass --force to replace it`);
      writeSecrets(file, freshDocument());
      console.log(`created ${file} (encryption key k1, seal key s1); add operators with add-operator or add-token`);
      return;
    }
    case 'add-operator': {
      const who = needName();
      const doc = readDoc(file);
      const password = await readPassword();
      if (password.length < 8) throw new UsageError('the password must have at least 8 characters');
      setPassword(doc, who, await hashPassword(password));
      writeSecrets(file, doc);
      console.log(`operator ${who}: password stored in ${file}`);
      return;
    }
    case 'add-token': {
      const who = needName();
      const doc = readDoc(file);
      const { token, stored } = newToken();
      setToken(doc, who, stored);
      writeSecrets(file, doc);
      console.error(`operator ${who}: new personal token stored in ${file} (it replaces any earlier one). Shown once:`);
      console.log(token);
      return;
    }
    case 'remove-operator': {
      const who = needName();
      const doc = readDoc(file);
      const before = doc.operators?.length ?? 0;
      doc.operators = (doc.operators ?? []).filter((o) => o.name !== who);
      if (doc.operators.length === before) throw new UsageError(`no operator "${who}" in ${file}`);
      writeSecrets(file, doc);
      console.log(`operator ${who} removed from ${file}`);
      return;
    }
    case 'rotate-encryption':
    case 'rotate-seal': {
      const which = command === 'rotate-seal' ? 'seal' : 'encryption';
      const doc = readDoc(file);
      const id = rotate(doc, which);
      writeSecrets(file, doc);
      console.log(
        `${which}: new active key ${id}; older keys kept (${Object.keys(doc[which]?.keys ?? {}).join(', ')})`,
      );
      console.log('restart the worker, the receiver and the codec server to use it');
      return;
    }
    default:
      throw new UsageError(`unknown command "${command}"; see --help`);
  }
}

if (require.main === module) {
  run(process.argv.slice(2)).then(
    () => process.exit(0),
    (err: unknown) => {
      const usage = err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS');
      console.error(`codec-secrets: ${(err as Error).message}`);
      process.exit(usage ? 2 : 1);
    },
  );
}
