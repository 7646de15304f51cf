/**
 * Where things are. Paths the engineer gives (`--out`, `--config`, $ENGINE_CONFIG, $REMEDIATE_CREDENTIALS)
 * resolve against the directory the command runs in; what lives in the repository (config/engine.yaml,
 * .stack) resolves against the repository, wherever the command is run from. A relative $STACK_DIR is
 * the repository's, as in the stack scripts (scripts/lib.sh).
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

const PACKAGE_NAME = 'remediation-engine';

function packageJsonIn(dir: string): { name?: string; version?: string } | undefined {
  const file = path.join(dir, 'package.json');
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
  } catch {
    return undefined;
  }
}

let repo: string | undefined;

/** The repository this script belongs to: the nearest directory above it holding the engine's package.json. */
export function repoRoot(): string {
  if (repo) return repo;
  // Source (scripts/remediate) and build (dist/scripts/remediate) sit at different depths: walk up.
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    if (packageJsonIn(dir)?.name === PACKAGE_NAME) return (repo = dir);
    if (path.dirname(dir) === dir) throw new Error(`no ${PACKAGE_NAME} package.json above ${__dirname}`);
  }
}

/** The engine's version, as package.json states it. */
export function packageVersion(): string {
  return packageJsonIn(repoRoot())?.version ?? 'unknown';
}

/** A path the engineer typed, resolved against the directory they run the command in. */
export function userPath(p: string, cwd = process.cwd()): string {
  return path.resolve(cwd, p);
}

/** The stack's state directory: $STACK_DIR (relative to the repository), else the repository's .stack. */
export function stackDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(repoRoot(), env.STACK_DIR || '.stack');
}

/** The engine config: --config, else $ENGINE_CONFIG (both the caller's), else the repository's config/engine.yaml. */
export function configFile(
  flag: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
  cwd = process.cwd(),
): string {
  if (flag !== undefined) return userPath(flag, cwd);
  if (env.ENGINE_CONFIG) return userPath(env.ENGINE_CONFIG, cwd);
  return path.join(repoRoot(), 'config', 'engine.yaml');
}
