/** What activities are built from: configuration and injected clients (real ones in the worker and tests). */
import type Docker from 'dockerode';
import type { Client } from '@temporalio/client';
import type { Logger } from 'pino';
import { readSecret, type EngineConfig, type TargetConfig } from '../../config';
import { ErrorType, permanent } from './errors';
import { LOG_PATTERN_DEFAULTS, compileLogPatterns, type LogMatchers, type LogPattern } from '../../lib/target-signals';
import type { CliSpawn } from '../redis/redis-cli';
import { DockerHosts } from '../containers/docker-hosts';

export interface ActivityDeps {
  config: EngineConfig;
  /** The engine-wide Docker API (`docker.socketPath`): the one of every target without its own. */
  docker: Docker;
  /**
   * Every target's Docker client (`targets.<name>.docker`), one per distinct host; built from
   * `config` and `docker` when not given. Container activities get theirs through `dockerFor`.
   */
  dockerHosts?: DockerHosts;
  /** For activities that start or signal other workflows (the per-target guard). */
  client?: Client;
  logger: Logger;
  fetch?: typeof fetch;
  /** Resolves secrets; defaults to reading the refs in the config. */
  secrets?: { adminKey(target: string): string | undefined; pgPassword(target: string): string | undefined };
  /**
   * Starts redis-cli for `redis.via: exec` in place of the Docker exec in the redis component's
   * container (tests run it against a local redis-server).
   */
  redisCliSpawn?: CliSpawn;
}

export function targetConfig(deps: ActivityDeps, target: string): TargetConfig {
  const t = Object.prototype.hasOwnProperty.call(deps.config.targets, target) ? deps.config.targets[target] : undefined;
  if (!t) throw permanent(ErrorType.UnknownTarget, `unknown target "${target}"`);
  return t;
}

export function adminKey(deps: ActivityDeps, target: string): string | undefined {
  return deps.secrets ? deps.secrets.adminKey(target) : readSecret(targetConfig(deps, target).adminKey);
}

export function pgPassword(deps: ActivityDeps, target: string): string | undefined {
  if (deps.secrets) return deps.secrets.pgPassword(target);
  return readSecret(targetConfig(deps, target).postgres?.password);
}

const hostsOf = new WeakMap<ActivityDeps, DockerHosts>();

/** The Docker client of the target's own Docker API (`targets.<name>.docker`, else `docker`). */
export function dockerFor(deps: ActivityDeps, target: string): Docker {
  // An unknown target is refused here rather than handed the engine-wide client.
  targetConfig(deps, target);
  let hosts = deps.dockerHosts ?? hostsOf.get(deps);
  if (!hosts) {
    hosts = new DockerHosts(deps.config, deps.docker);
    hostsOf.set(deps, hosts);
  }
  return hosts.forTarget(target);
}

const compiled = new WeakMap<TargetConfig, LogMatchers>();

/** The target's log patterns (`logs.*`), compiled once per configuration. */
export function logMatchers(deps: ActivityDeps, target: string): LogMatchers {
  const t = targetConfig(deps, target);
  let m = compiled.get(t);
  if (!m) {
    const logs = t.logs;
    m = compileLogPatterns(Object.fromEntries((Object.keys(LOG_PATTERN_DEFAULTS) as LogPattern[]).map((k) => [k, logs[k]])) as Record<LogPattern, string>);
    compiled.set(t, m);
  }
  return m;
}
