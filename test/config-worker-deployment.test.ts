/**
 * `worker.deployment`: the worker runs as a version of a Temporal worker deployment when the config
 * files get WORKER_BUILD_ID, and unversioned without it; the SDK options it becomes; what is refused.
 * (test/cluster/rolling-upgrade.test.ts runs the upgrade itself on the cluster profile.)
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ConfigError, DEFAULT_DEPLOYMENT_NAME, loadConfig } from '../src/config';
import { deploymentOptions } from '../src/workers/worker';

const REPO = path.resolve(__dirname, '..');
const FILES = ['config/engine.yaml', 'config/engine.compose.yaml'];

describe.each(FILES)('%s', (file) => {
  const load = (env: NodeJS.ProcessEnv) => loadConfig(path.join(REPO, file), { STACK_DIR: '/tmp/stack', ...env });

  test('without WORKER_BUILD_ID the worker is unversioned', () => {
    const cfg = load({});
    expect(cfg.worker.deployment).toBeUndefined();
    expect(deploymentOptions(cfg.worker)).toEqual({});
  });

  test('WORKER_BUILD_ID makes it a version of the remediation-engine deployment, its workflows pinned', () => {
    // 1.10 would be the number 1.1 if the file did not quote it.
    const cfg = load({ WORKER_BUILD_ID: '1.10' });
    expect(cfg.worker.deployment).toEqual({
      name: DEFAULT_DEPLOYMENT_NAME,
      buildId: '1.10',
      defaultBehavior: 'pinned',
    });
    expect(deploymentOptions(cfg.worker)).toEqual({
      workerDeploymentOptions: {
        useWorkerVersioning: true,
        version: { deploymentName: 'remediation-engine', buildId: '1.10' },
        defaultVersioningBehavior: 'PINNED',
      },
    });
  });

  test('WORKER_DEPLOYMENT_NAME and WORKER_VERSIONING_BEHAVIOR set the rest', () => {
    const cfg = load({
      WORKER_BUILD_ID: 'abc123',
      WORKER_DEPLOYMENT_NAME: 'remediation-eu',
      WORKER_VERSIONING_BEHAVIOR: 'auto-upgrade',
    });
    expect(deploymentOptions(cfg.worker).workerDeploymentOptions).toMatchObject({
      version: { deploymentName: 'remediation-eu', buildId: 'abc123' },
      defaultVersioningBehavior: 'AUTO_UPGRADE',
    });
  });

  test('a behaviour it does not know is refused, naming the setting', () => {
    expect(() => load({ WORKER_BUILD_ID: 'b1', WORKER_VERSIONING_BEHAVIOR: 'sometimes' })).toThrow(
      /worker\.deployment\.defaultBehavior: Invalid enum value\. Expected 'pinned' \| 'auto-upgrade', received 'sometimes'/,
    );
  });
});

describe('a config file that writes worker.deployment itself', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'engine-deployment-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  function load(deployment: string): ReturnType<typeof loadConfig> {
    const file = path.join(dir, 'engine.yaml');
    writeFileSync(
      file,
      [
        'docker: { socketPath: /run/docker.sock }',
        'policy: { approvers: [alice], tiers: [{ name: t1, waitMs: 1000 }] }',
        'targets: { alfred: { baseUrl: "http://127.0.0.1:58000", containers: { project: alfred }, components: [api] } }',
        'worker:',
        `  deployment: ${deployment}`,
      ].join('\n'),
    );
    return loadConfig(file, {});
  }

  test('takes a name and a build id; the behaviour defaults to pinned', () => {
    expect(load('{ name: engine, buildId: "2025-06-01" }').worker.deployment).toEqual({
      name: 'engine',
      buildId: '2025-06-01',
      defaultBehavior: 'pinned',
    });
  });

  test.each([
    ['{ name: engine }', /worker\.deployment\.buildId: Required/],
    ['{ buildId: b1 }', /worker\.deployment\.name: Required/],
    ['{ name: my.engine, buildId: b1 }', /worker\.deployment\.name: a deployment name cannot contain "\." or ":"/],
    ['{ name: "a:b", buildId: b1 }', /worker\.deployment\.name: a deployment name cannot contain/],
    [
      '{ name: engine, buildId: __unversioned__ }',
      /worker\.deployment\.buildId: a build id cannot be "__unversioned__"/,
    ],
    ['{ name: engine, buildId: b1, pinned: true }', /worker\.deployment: Unrecognized key\(s\) in object: 'pinned'/],
  ])('refuses %s', (deployment, message) => {
    expect(() => load(deployment)).toThrow(ConfigError);
    expect(() => load(deployment)).toThrow(message);
  });
});
