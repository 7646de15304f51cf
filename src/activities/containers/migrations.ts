/**
 * Schema migrations the seeds' way (seed 002, INC-12): alembic, run inside the service's containers.
 *
 *   alembic -c src/backend/config/alembic.ini current | history | heads | upgrade head | downgrade -1
 *
 * - What the database is at and what the running release ships: `current`, `heads` and `history` in
 *   the running migrations component (docker compose exec api ...). A database at a revision the
 *   running code does not know (alembic: "Can't locate revision identified by 'X'") is reported as
 *   that revision, unknown to the release: after a rollback the older code cannot see the newer
 *   migration.
 * - What another release ships: `heads` in a one-off container of its image (docker compose run --rm
 *   --no-deps api alembic ... heads), which needs no database.
 * - A downgrade runs in a one-off container of the release that brought the migration (only its code
 *   knows how to revert it), with the component's environment and network, as `docker compose run`
 *   would start it: `alembic ... current` first, and `downgrade -1` only while the database is still
 *   at the revision the caller names, so a repeat never reverts a second migration.
 *
 * The command (`postgres.migrations.command`, default the seeds' `alembic -c
 * src/backend/config/alembic.ini`) and the component (`postgres.migrations.component`, default `api`)
 * are settings.
 */
import { PassThrough } from 'node:stream';
import type Docker from 'dockerode';
import type { ActivityDeps } from '../engine/deps';
import { dockerFor, targetConfig } from '../engine/deps';
import { findContainer, inspectComponent } from './containers';
import { describeError, ErrorType, permanent } from '../engine/errors';
import { parseHistory, parseRevisions, type Revision } from '../../lib/migration-chain';

export type { Revision } from '../../lib/migration-chain';

/** Seed 002, INC-12: `alembic -c src/backend/config/alembic.ini current`. */
export const SEED_ALEMBIC = ['alembic', '-c', 'src/backend/config/alembic.ini'];

export interface AlembicStatus {
  available: boolean;
  /** The database's revision (alembic_version); null for an empty one. */
  current?: string | null;
  /** False when the running release's code does not know `current` (a newer release migrated it). */
  known?: boolean;
  /** The head the running release ships (what it migrates to). */
  head?: string;
  /** The running release's chain, newest first. */
  history: Revision[];
  component: string;
  error?: string;
}

export interface ReleaseHeads {
  available: boolean;
  image: string;
  head?: string;
  error?: string;
}

export interface DowngradeOutcome {
  performed: boolean;
  detail: string;
  /** The database's revision afterwards, as the release's own code reads it. */
  current: string | null;
}

interface Run {
  exitCode: number;
  stdout: string;
  stderr: string;
}

const UNKNOWN_REVISION = /Can't locate revision identified by '([^']+)'/;

function lastLine(text: string): string {
  return text.trim().split('\n').filter(Boolean).pop()?.slice(0, 300) ?? '';
}

export function createMigrationActivities(deps: ActivityDeps) {
  function settings(target: string): { component: string; command: string[] } {
    const m = targetConfig(deps, target).postgres?.migrations;
    return { component: m?.component ?? 'api', command: m?.command ?? SEED_ALEMBIC };
  }

  async function collect(stream: NodeJS.ReadableStream, tty: boolean): Promise<{ stdout: string; stderr: string }> {
    const out = new PassThrough();
    const err = new PassThrough();
    const o: Buffer[] = [];
    const e: Buffer[] = [];
    out.on('data', (d: Buffer) => o.push(d));
    err.on('data', (d: Buffer) => e.push(d));
    if (tty) stream.pipe(out);
    // Only the stream's framing: the same for every Docker host.
    else deps.docker.modem.demuxStream(stream, out, err);
    await new Promise<void>((resolve, reject) => {
      stream.on('end', () => resolve());
      stream.on('close', () => resolve());
      stream.on('error', reject);
    });
    return { stdout: Buffer.concat(o).toString('utf8'), stderr: Buffer.concat(e).toString('utf8') };
  }

  /** `docker compose exec <component> <cmd>`: stdout and stderr apart. */
  async function exec(target: string, component: string, cmd: string[]): Promise<Run> {
    const c = await findContainer(deps, target, component);
    if (c.State !== 'running') throw permanent(ErrorType.Refused, `the ${component} container is not running; cannot run ${cmd[0]} in it`);
    const e = await dockerFor(deps, target).getContainer(c.Id).exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true });
    const { stdout, stderr } = await collect(await e.start({ hijack: true, stdin: false }), false);
    const exitCode = (await e.inspect()).ExitCode ?? -1;
    if (exitCode === 126 || exitCode === 127)
      throw permanent(ErrorType.NotConfigured, `${cmd[0]} cannot run in the ${component} container (exit ${exitCode}): ${lastLine(stderr || stdout)}; setting postgres.migrations.command`);
    return { exitCode, stdout, stderr };
  }

  /**
   * `docker compose run --rm --no-deps <component> <cmd>` on `image`: a one-off container that is not
   * part of the service (no compose labels, so no lookup ever takes it for the component), removed
   * afterwards. It gets the component's volumes and, with `environment`, its own variables (not its
 * image's) and network.
   */
  async function runOnce(target: string, component: string, image: string, cmd: string[], environment: boolean): Promise<Run> {
    const info = await inspectComponent(deps, target, component);
    const docker = dockerFor(deps, target);
    let env: string[] = [];
    if (environment) {
      const imageEnv = new Set((await docker.getImage(info.Image).inspect()).Config?.Env ?? []);
      env = (info.Config.Env ?? []).filter((kv) => !imageEnv.has(kv));
    }
    const project = targetConfig(deps, target).containers.project;
    const created: Docker.Container = await docker.createContainer({
      name: `${project}-${component}-run-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`,
      Image: image,
      // The tool is the entrypoint (`docker run --entrypoint alembic`): an image whose entrypoint is the
      // service itself would otherwise take the command as its arguments.
      Entrypoint: cmd.slice(0, 1),
      Cmd: cmd.slice(1),
      Env: env,
      ...(info.Config.WorkingDir ? { WorkingDir: info.Config.WorkingDir } : {}),
      Labels: { 'remediation.oneoff': component },
      ...(info.Config.User ? { User: info.Config.User } : {}),
      // The service's volumes come along, as with `docker compose run`; its network only with its environment.
      HostConfig: {
        Binds: info.HostConfig.Binds,
        Mounts: info.HostConfig.Mounts,
        NetworkMode: environment ? info.HostConfig.NetworkMode : 'none',
      },
    });
    try {
      await created.start();
      const done = (await created.wait()) as { StatusCode?: number };
      const logs = (await created.logs({ stdout: true, stderr: true, follow: false })) as unknown as Buffer;
      const pass = new PassThrough();
      const result = collect(pass, false);
      pass.end(logs);
      const { stdout, stderr } = await result;
      const exitCode = done.StatusCode ?? -1;
      if (exitCode === 126 || exitCode === 127)
        throw permanent(ErrorType.NotConfigured, `${cmd[0]} cannot run in ${image} (exit ${exitCode}): ${lastLine(stderr || stdout)}; setting postgres.migrations.command`);
      return { exitCode, stdout, stderr };
    } finally {
      await created.remove({ force: true }).catch(() => undefined);
    }
  }

  function currentOf(run: Run): { current: string | null; known: boolean } {
    const unknown = UNKNOWN_REVISION.exec(run.stderr);
    if (run.exitCode !== 0 && unknown) return { current: unknown[1] as string, known: false };
    if (run.exitCode !== 0) throw new Error(`alembic current failed (exit ${run.exitCode}): ${lastLine(run.stderr || run.stdout)}`);
    return { current: parseRevisions(run.stdout)[0] ?? null, known: true };
  }

  /** The database's revision, and the head and chain of the running release (alembic current, heads, history). */
  async function alembicStatus(input: { target: string }): Promise<AlembicStatus> {
    const s = settings(input.target);
    try {
      const current = currentOf(await exec(input.target, s.component, [...s.command, 'current']));
      const heads = await exec(input.target, s.component, [...s.command, 'heads']);
      const history = await exec(input.target, s.component, [...s.command, 'history']);
      if (heads.exitCode !== 0) throw new Error(`alembic heads failed: ${lastLine(heads.stderr)}`);
      const head = parseRevisions(heads.stdout)[0];
      return {
        available: true,
        ...current,
        ...(head ? { head } : {}),
        history: parseHistory(history.stdout),
        component: s.component,
      };
    } catch (err) {
      return { available: false, history: [], component: s.component, error: describeError(err) };
    }
  }

  /** `<repository of the component's image>:<tag>`: the image of another release of the component. */
  async function releaseImage(target: string, component: string, tag: string): Promise<string> {
    const image = (await inspectComponent(deps, target, component)).Config.Image;
    const at = image.lastIndexOf(':');
    return `${at > image.lastIndexOf('/') ? image.slice(0, at) : image}:${tag}`;
  }

  /** The head release `tag` ships: `alembic heads` in a one-off container of its image. */
  async function releaseMigrationHead(input: { target: string; tag: string }): Promise<ReleaseHeads> {
    const s = settings(input.target);
    const image = await releaseImage(input.target, s.component, input.tag);
    try {
      const r = await runOnce(input.target, s.component, image, [...s.command, 'heads'], false);
      if (r.exitCode !== 0) throw new Error(`alembic heads failed (exit ${r.exitCode}): ${lastLine(r.stderr || r.stdout)}`);
      const head = parseRevisions(r.stdout)[0];
      return { available: true, image, ...(head ? { head } : {}) };
    } catch (err) {
      return { available: false, image, error: describeError(err) };
    }
  }

  /**
   * `alembic downgrade -1` with the code of release `tag`, only while the database is at `expect`: a
   * database already below it is left alone (performed: false), one at another revision is refused.
   */
  async function alembicDowngrade(input: { target: string; tag: string; expect: string }): Promise<DowngradeOutcome> {
    const s = settings(input.target);
    const image = await releaseImage(input.target, s.component, input.tag);
    const before = currentOf(await runOnce(input.target, s.component, image, [...s.command, 'current'], true));
    if (before.current !== input.expect) {
      return { performed: false, detail: `the database is at ${before.current ?? 'no revision'}, not ${input.expect}: nothing reverted`, current: before.current };
    }
    const down = await runOnce(input.target, s.component, image, [...s.command, 'downgrade', '-1'], true);
    if (down.exitCode !== 0) throw new Error(`alembic downgrade -1 failed (exit ${down.exitCode}): ${lastLine(down.stderr || down.stdout)}`);
    const after = currentOf(await runOnce(input.target, s.component, image, [...s.command, 'current'], true));
    return { performed: true, detail: `reverted ${input.expect} with ${image}; the database is at ${after.current ?? 'no revision'}`, current: after.current };
  }

  /** `alembic upgrade head` in the running migrations component (a no-op at head). */
  async function alembicUpgrade(input: { target: string }): Promise<{ detail: string; current: string | null }> {
    const s = settings(input.target);
    const was = currentOf(await exec(input.target, s.component, [...s.command, 'current']));
    const up = await exec(input.target, s.component, [...s.command, 'upgrade', 'head']);
    if (up.exitCode !== 0) throw new Error(`alembic upgrade head failed (exit ${up.exitCode}): ${lastLine(up.stderr || up.stdout)}`);
    const now = currentOf(await exec(input.target, s.component, [...s.command, 'current']));
    const from = was.current ?? 'no revision';
    const to = now.current ?? 'no revision';
    return { detail: from === to ? `alembic upgrade head: already at ${to}` : `alembic upgrade head: ${from} → ${to}`, current: now.current };
  }

  return { alembicStatus, releaseMigrationHead, alembicDowngrade, alembicUpgrade };
}
