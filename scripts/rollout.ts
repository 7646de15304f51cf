/**
 * Rolling upgrades of the engine's worker deployment (docs/production.md, "Upgrading without
 * stopping incidents"): the new build's workers run beside the old ones, `promote` routes new
 * incidents to the new build and moves the keepers there, and `status` says when nothing holds the
 * old build any more, so its workers may stop.
 *
 *   npx tsx scripts/rollout.ts promote <build-id>
 *   npx tsx scripts/rollout.ts status [<build-id>]
 *   (in the engine's image: node dist/scripts/rollout.js ...)
 *
 * Exit codes: 0 done / drained, 1 failed / still in use, 2 bad usage.
 */
import os from 'node:os';
import { Client, type Connection } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { ConfigError, DEFAULT_DEPLOYMENT_NAME, loadConfig, type EngineConfig } from '../src/config';
import { connectService } from '../src/lib/temporal';
import { KEEPER_WORKFLOW_TYPES } from '../src/workflows/contracts';

const HELP = `usage: npx tsx scripts/rollout.ts <command> [options]

commands:
  promote <build-id>    make <build-id> the current version of the worker deployment: new incidents
                        start on it; incidents already open finish on the build they started on. The
                        keepers (${KEEPER_WORKFLOW_TYPES.join(', ')}) pinned to another build
                        move to it. Waits up to --wait for the build's workers to poll.
  status [<build-id>]   the deployment's versions; with <build-id>: that version's drainage and the
                        workflows still pinned to it. Exit 0 once nothing holds it (its workers may
                        stop), 1 while something does.

options:
  --deployment NAME     the worker deployment (default: WORKER_DEPLOYMENT_NAME, else ${DEFAULT_DEPLOYMENT_NAME})
  --wait SECONDS        promote: how long to wait for the build's workers to poll (default 60)
  --config FILE         engine config: Temporal address, namespace, TLS (default: $ENGINE_CONFIG, else config/engine.yaml)
  --json                machine-readable output
  -h, --help            this help`;

class UsageError extends Error {}
class Failure extends Error {}

interface Args {
  command?: string;
  buildId?: string;
  deployment?: string;
  waitMs: number;
  config?: string;
  json: boolean;
  help: boolean;
}

function parseArgs(argv: string[]): Args {
  const out: Args = { waitMs: 60_000, json: false, help: false };
  const operands: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined || v.startsWith('-')) throw new UsageError(`${arg} needs a value`);
      return v;
    };
    if (arg === '-h' || arg === '--help') out.help = true;
    else if (arg === '--json') out.json = true;
    else if (arg === '--deployment') out.deployment = value();
    else if (arg === '--config') out.config = value();
    else if (arg === '--wait') {
      const v = value();
      if (!/^\d+$/.test(v)) throw new UsageError(`--wait takes a number of seconds, not "${v}"`);
      out.waitMs = Number(v) * 1000;
    } else if (arg.startsWith('-')) throw new UsageError(`unknown option ${arg}`);
    else operands.push(arg);
  }
  [out.command, out.buildId] = operands;
  if (operands.length > 2) throw new UsageError(`unexpected argument "${operands[2]}"`);
  if (out.help) return out;
  if (out.command === undefined) throw new UsageError('name a command: promote or status');
  if (out.command !== 'promote' && out.command !== 'status') throw new UsageError(`unknown command "${out.command}"`);
  if (out.command === 'promote' && !out.buildId) throw new UsageError('promote needs the build id to make current');
  return out;
}

const { VersionDrainageStatus, WorkerDeploymentVersionStatus } = temporal.api.enums.v1;

/** `DRAINING` from `VERSION_DRAINAGE_STATUS_DRAINING`: what the temporal CLI shows too. */
function enumName(values: Record<string, string | number>, prefix: string, v: number | null | undefined): string {
  const name = Object.keys(values).find((k) => values[k] === (v ?? 0)) ?? String(v);
  return name.replace(prefix, '').toLowerCase();
}

interface Deployment {
  conn: Connection;
  client: Client;
  namespace: string;
  name: string;
  identity: string;
}

/** `remediation-engine:v1`: how Temporal's search attributes name a version. */
const versionId = (d: Deployment, buildId: string): string => `${d.name}:${buildId}`;
const quote = (s: string): string => `'${s.replace(/'/g, "\\'")}'`;

/** Running workflows pinned to a version of the deployment (the query Temporal's drainage counts). */
function pinnedQuery(d: Deployment, buildId: string, types?: readonly string[]): string {
  return [
    `TemporalWorkerDeploymentVersion = ${quote(versionId(d, buildId))}`,
    `TemporalWorkflowVersioningBehavior = 'Pinned'`,
    `ExecutionStatus = 'Running'`,
    ...(types ? [`WorkflowType IN (${types.map(quote).join(', ')})`] : []),
  ].join(' AND ');
}

async function list(
  d: Deployment,
  query: string,
  limit = 50,
): Promise<{ workflowId: string; runId: string; type: string }[]> {
  const out: { workflowId: string; runId: string; type: string }[] = [];
  for await (const wf of d.client.workflow.list({ query })) {
    out.push({ workflowId: wf.workflowId, runId: wf.runId, type: wf.type });
    if (out.length >= limit) break;
  }
  return out;
}

async function describeDeployment(d: Deployment) {
  try {
    const res = await d.conn.workflowService.describeWorkerDeployment({
      namespace: d.namespace,
      deploymentName: d.name,
    });
    return res.workerDeploymentInfo ?? undefined;
  } catch (err) {
    if ((err as { code?: number }).code === 5) return undefined; // NOT_FOUND: no worker of it has polled yet
    throw err;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function promote(d: Deployment, buildId: string, waitMs: number, say: (line: string) => void) {
  const before = await describeDeployment(d);
  const previous = before?.routingConfig?.currentDeploymentVersion?.buildId || undefined;
  const deadline = Date.now() + waitMs;
  for (let waiting = false; ;) {
    try {
      await d.conn.workflowService.setWorkerDeploymentCurrentVersion({
        namespace: d.namespace,
        deploymentName: d.name,
        buildId,
        identity: d.identity,
      });
      break;
    } catch (err) {
      const message = (err as Error).message;
      // The version (and, the first time, the deployment) exists once one of its workers has polled.
      const notYet = /not found|no worker deployment found/i.test(message);
      if (!notYet || Date.now() > deadline) {
        throw new Failure(
          `${versionId(d, buildId)} could not be made current: ${message}${notYet ? ' (are workers with this build id running against this namespace and task queue?)' : ''}`,
        );
      }
      if (!waiting) say(`waiting for workers of ${versionId(d, buildId)} to poll ...`);
      waiting = true;
      await sleep(1000);
    }
  }
  say(
    `${versionId(d, buildId)} is current${previous && previous !== buildId ? ` (was ${previous})` : ''}: new incidents start on it`,
  );

  // Keepers serve every incident of their target: none may stay behind on an old build.
  const moved: { workflowId: string; from: string }[] = [];
  const versions = ((await describeDeployment(d))?.versionSummaries ?? [])
    .map((v) => v.deploymentVersion?.buildId ?? '')
    .filter((b) => b && b !== buildId);
  for (const old of versions) {
    for (const wf of await list(d, pinnedQuery(d, old, KEEPER_WORKFLOW_TYPES), 10_000)) {
      await d.conn.workflowService.updateWorkflowExecutionOptions({
        namespace: d.namespace,
        workflowExecution: { workflowId: wf.workflowId, runId: wf.runId },
        workflowExecutionOptions: { versioningOverride: { autoUpgrade: true } },
        updateMask: { paths: ['versioning_override'] },
      });
      moved.push({ workflowId: wf.workflowId, from: old });
    }
  }
  say(
    moved.length
      ? `moved ${moved.length} keeper(s) to it at their next task: ${moved.map((m) => `${m.workflowId} (from ${m.from})`).join(', ')}`
      : 'no keeper was pinned to another build',
  );
  if (previous && previous !== buildId) {
    const holding = await d.client.workflow.count(pinnedQuery(d, previous));
    say(
      `${holding.count} incident(s) still run on ${previous}: keep its workers until \`scripts/rollout.ts status ${previous}\` says drained`,
    );
  }
  return { deployment: d.name, current: buildId, ...(previous ? { previous } : {}), movedKeepers: moved };
}

async function status(d: Deployment, buildId: string | undefined, say: (line: string) => void) {
  const info = await describeDeployment(d);
  if (!info)
    throw new Failure(`no worker deployment ${d.name} in namespace ${d.namespace}: no versioned worker has polled yet`);
  const current = info.routingConfig?.currentDeploymentVersion?.buildId || undefined;
  const ramping = info.routingConfig?.rampingDeploymentVersion?.buildId || undefined;
  if (!buildId) {
    const versions = (info.versionSummaries ?? []).map((v) => ({
      buildId: v.deploymentVersion?.buildId ?? '',
      status: enumName(WorkerDeploymentVersionStatus, 'WORKER_DEPLOYMENT_VERSION_STATUS_', v.status),
    }));
    say(`${d.name}: current ${current ?? '(none: unversioned workers)'}${ramping ? `, ramping ${ramping}` : ''}`);
    for (const v of versions) say(`  ${v.buildId}  ${v.status}`);
    return { result: { deployment: d.name, current, ramping, versions }, inUse: false };
  }
  let version;
  try {
    version = (
      await d.conn.workflowService.describeWorkerDeploymentVersion({
        namespace: d.namespace,
        deploymentVersion: { deploymentName: d.name, buildId },
      })
    ).workerDeploymentVersionInfo;
  } catch (err) {
    throw new Failure(`${versionId(d, buildId)}: ${(err as Error).message}`);
  }
  const state = enumName(WorkerDeploymentVersionStatus, 'WORKER_DEPLOYMENT_VERSION_STATUS_', version?.status);
  const drainage = enumName(VersionDrainageStatus, 'VERSION_DRAINAGE_STATUS_', version?.drainageInfo?.status);
  const pinned = await list(d, pinnedQuery(d, buildId));
  const count = (await d.client.workflow.count(pinnedQuery(d, buildId))).count;
  // Temporal's own verdict (refreshed every few minutes) and the live count must both say nothing holds it.
  const inUse = !(state === 'drained' || state === 'inactive') || count > 0;
  say(
    `${versionId(d, buildId)}: ${state}${state === 'draining' || state === 'drained' ? ` (drainage ${drainage}, checked ${String(version?.drainageInfo?.lastCheckedTime ? new Date(Number(version.drainageInfo.lastCheckedTime.seconds) * 1000).toISOString() : 'not yet')})` : ''}`,
  );
  say(
    `${count} running workflow(s) pinned to it${pinned.length ? `: ${pinned.map((w) => `${w.workflowId} (${w.type})`).join(', ')}${count > pinned.length ? ', ...' : ''}` : ''}`,
  );
  say(inUse ? `in use: keep its workers running` : `nothing holds it: its workers may stop`);
  return {
    result: { deployment: d.name, buildId, status: state, drainage, pinned: count, workflows: pinned, inUse },
    inUse,
  };
}

async function main(): Promise<number> {
  let args: Args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (err) {
    console.error(`error: ${(err as Error).message}\n\n${HELP}`);
    return 2;
  }
  if (args.help) {
    console.log(HELP);
    return 0;
  }
  let cfg: EngineConfig;
  try {
    cfg = loadConfig(args.config);
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`error: ${err.message}`);
      return 2;
    }
    throw err;
  }
  const name =
    args.deployment ?? cfg.worker.deployment?.name ?? (process.env.WORKER_DEPLOYMENT_NAME || DEFAULT_DEPLOYMENT_NAME);
  const conn = await connectService(cfg);
  const d: Deployment = {
    conn,
    client: new Client({ connection: conn, namespace: cfg.temporal.namespace }),
    namespace: cfg.temporal.namespace,
    name,
    identity: `${os.userInfo().username}@${os.hostname()} (rollout.ts)`,
  };
  const lines: string[] = [];
  const say = (line: string): void => {
    if (args.json) lines.push(line);
    else console.log(line);
  };
  try {
    if (args.command === 'promote') {
      const result = await promote(d, args.buildId as string, args.waitMs, say);
      if (args.json) console.log(JSON.stringify(result, null, 2));
      return 0;
    }
    const { result, inUse } = await status(d, args.buildId, say);
    if (args.json) console.log(JSON.stringify(result, null, 2));
    return inUse ? 1 : 0;
  } catch (err) {
    if (err instanceof Failure) {
      console.error(`error: ${err.message}`);
      return 1;
    }
    throw err;
  } finally {
    await conn.close();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
