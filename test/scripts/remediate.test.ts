/**
 * The client script as engineers run it (a subprocess), against the real Temporal server, a real
 * engine worker and the real codec server (in-process, TEST-ONLY secrets): usage errors, unknown ids
 * and targets, the personal credential (who you are comes from it, not from a flag), refusals,
 * dry-run rollback with --wait.
 */
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { incidentWorkflowId } from '../../src/workflows/contracts';
import { credentialFile, startTestCodecServer, tokenOf, type FixtureOperator, type TestCodecServer } from '../helpers/codec';
import { REPO, STACK_DIR, startEngine, type Engine } from '../helpers/engine';

jest.setTimeout(120_000);

let engine: Engine;
let codec: TestCodecServer;
let credentials: string;

type Result = { code: number; stdout: string; stderr: string };

/** The script as `who` (a fixture operator's credential), or with `env` as given (no credential, another file). */
async function remediateWith(env: Record<string, string | undefined>, args: string[], stdin?: string): Promise<Result> {
  const child = spawn(path.join(REPO, 'bin/remediate'), args, {
    env: { ...process.env, STACK_DIR, TEMPORAL_TASK_QUEUE: engine.taskQueue, CODEC_SERVER_URL: codec.url, REMEDIATE_CREDENTIALS: undefined, ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  child.stdin.end(stdin ?? '');
  const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
  const code = await new Promise<number>((resolve) => child.once('close', (c) => resolve(c ?? -1)));
  clearTimeout(timer);
  return { code, stdout, stderr };
}

async function as(who: FixtureOperator, ...args: string[]): Promise<Result> {
  return remediateWith({ REMEDIATE_CREDENTIALS: path.join(credentials, who) }, args);
}

/** Commands that need no credential (help, usage errors found before it is read). */
async function remediate(...args: string[]): Promise<Result> {
  return as('erin', ...args);
}

beforeAll(async () => {
  codec = await startTestCodecServer();
  credentials = mkdtempSync(path.join(tmpdir(), 'remediate-creds-'));
  for (const who of ['alice', 'bob', 'dave', 'erin'] as const) credentialFile(who, credentials);
  engine = await startEngine();
});

afterAll(async () => {
  for (const id of [incidentWorkflowId('rollback', 'alfred'), incidentWorkflowId('cacheFailure', 'alfred')]) {
    try {
      const h = engine.client.workflow.getHandle(id);
      const d = await h.describe();
      if (d.status.name === 'RUNNING' && d.taskQueue === engine.taskQueue) await h.terminate('test finished');
    } catch {
      /* none */
    }
  }
  await engine.stop();
  await codec.close();
  rmSync(credentials, { recursive: true, force: true });
});

test('--help documents every command; bad usage exits 2 with a message', async () => {
  const help = await remediate('--help');
  expect(help.code).toBe(0);
  for (const c of ['login', 'whoami', 'runbooks', 'list', 'show', 'start', 'rollback', 'approve', 'reject', 'close', 'abort', '--reason', 'postmortem', 'schedules', '--dry-run', '--wait', 'REMEDIATE_CREDENTIALS', '~/.config/remediate/credentials']) {
    expect(help.stdout).toContain(c);
  }
  expect(help.stdout).not.toContain('--as');
  const bad = await remediate('explode');
  expect(bad).toMatchObject({ code: 2 });
  expect(bad.stderr).toMatch(/unknown command "explode"/);
  expect((await remediate('rollback')).stderr).toMatch(/--target is required/);
  expect((await remediate('approve', 'x')).stderr).toMatch(/usage: remediate approve <incident-id> <step-id>/);
  expect((await remediate('start', 'cacheFailure', '--target', 'alfred', '--severity', '9')).stderr).toMatch(/--severity must be/);
  expect((await remediate('list', '--frobnicate')).code).toBe(2);
});

test('unknown targets and runbooks are refused before any workflow starts', async () => {
  const r = await remediate('rollback', '--target', 'mainframe');
  expect(r.code).toBe(2);
  expect(r.stderr).toMatch(/unknown target "mainframe"; configured: alfred/);
  const u = await remediate('start', 'fixEverything', '--target', 'alfred');
  expect(u.code).toBe(2);
  expect(u.stderr).toMatch(/unknown runbook "fixEverything"/);
  await expect(engine.client.workflow.getHandle(incidentWorkflowId('fixEverything', 'alfred')).describe()).rejects.toThrow();
});

test('who you are comes from the credential: --as is a usage error, none is a clear error, whoami names its owner', async () => {
  const withAs = await remediate('approve', 'incident-x', 'step', '--as', 'alice');
  expect(withAs.code).toBe(2);
  expect(withAs.stderr).toMatch(/--as is not an option: who you are comes from your credential/);
  expect((await remediate('rollback', '--target', 'alfred', '--as', 'erin')).stderr).toMatch(/who you are comes from your credential/);

  // No credential: the file it looked for, and how to get one. Exit 2, as for any bad setup.
  const nowhere = path.join(credentials, 'none', 'credentials');
  for (const args of [['list'], ['show', 'incident-x'], ['approve', 'incident-x', 'step'], ['whoami']]) {
    const r = await remediateWith({ REMEDIATE_CREDENTIALS: nowhere }, args);
    expect({ args, code: r.code }).toEqual({ args, code: 2 });
    expect(r.stderr).toContain(`no credential: ${nowhere} does not exist`);
    expect(r.stderr).toContain('remediate login');
  }
  // The default place when REMEDIATE_CREDENTIALS is not set.
  const home = mkdtempSync(path.join(tmpdir(), 'remediate-home-'));
  const byDefault = await remediateWith({ HOME: home }, ['list']);
  expect(byDefault.code).toBe(2);
  expect(byDefault.stderr).toContain(`no credential: ${path.join(home, '.config/remediate/credentials')} does not exist`);

  // A credential others can read is refused, with the chmod that fixes it.
  const open = path.join(credentials, 'open');
  writeFileSync(open, tokenOf('alice'));
  chmodSync(open, 0o644);
  const refused = await remediateWith({ REMEDIATE_CREDENTIALS: open }, ['whoami']);
  expect(refused.code).toBe(2);
  expect(refused.stderr).toContain(`credential ${open} can be read by others (mode 0644): chmod 600 ${open}`);

  // whoami: the token's owner, as the codec server takes it.
  const me = await as('alice', 'whoami');
  expect(me.code).toBe(0);
  expect(me.stdout).toMatch(/^alice \(via token\) at http:\/\/127\.0\.0\.1:\d+/);
  expect(JSON.parse((await as('dave', 'whoami', '--json')).stdout)).toMatchObject({ name: 'dave', via: 'token', server: codec.url });

  // A token the codec server does not know: exit 1, sign in again.
  const stale = path.join(credentials, 'stale');
  writeFileSync(stale, 'not-a-token-of-anyone', { mode: 0o600 });
  const unknown = await remediateWith({ REMEDIATE_CREDENTIALS: stale }, ['list']);
  expect(unknown.code).toBe(1);
  expect(unknown.stderr).toContain(`does not accept the credential in ${stale} (401)`);
  expect(unknown.stderr).toContain('remediate login');
  rmSync(home, { recursive: true, force: true });
});

test('remediate login checks the token with the codec server and stores it, mode 600', async () => {
  const home = mkdtempSync(path.join(tmpdir(), 'remediate-home-'));
  try {
    const file = path.join(home, '.config/remediate/credentials');
    const wrong = await remediateWith({ HOME: home }, ['login'], 'not-a-token\n');
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/does not accept this token \(401\)/);
    expect(existsSync(file)).toBe(false);
    expect((await remediateWith({ HOME: home }, ['login'], '\n')).code).toBe(2);

    const ok = await remediateWith({ HOME: home }, ['login'], `${tokenOf('bob')}\n`);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain(`signed in as bob at ${codec.url}; credential stored in ${file} (mode 600)`);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(path.dirname(file)).mode & 0o777).toBe(0o700);
    expect(readFileSync(file, 'utf8').trim()).toBe(tokenOf('bob'));
    const me = await remediateWith({ HOME: home }, ['whoami']);
    expect(me.stdout).toMatch(/^bob \(via token\)/);
    // Another token replaces it.
    expect((await remediateWith({ HOME: home }, ['login'], tokenOf('carol'))).code).toBe(0);
    expect((await remediateWith({ HOME: home }, ['whoami'])).stdout).toMatch(/^carol /);
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});

test('unknown incident ids get a clear error', async () => {
  const r = await remediate('show', 'incident-nope-nowhere');
  expect(r.code).toBe(1);
  expect(r.stderr).toMatch(/no incident "incident-nope-nowhere"/);
});

test('a dry-run rollback with --wait prints progress and the plan, and exits 0', async () => {
  const r = await as('erin', 'rollback', '--target', 'alfred', '--dry-run', '--wait');
  expect(r.code).toBe(0);
  expect(r.stdout).toMatch(/started incident-rollback-alfred/);
  expect(r.stdout).toMatch(/\[TRIAGE\] phase TRIAGE/);
  expect(r.stdout).toMatch(/step recreate-api \[approve\] would-do/);
  expect(r.stdout).toMatch(/outcome dry-run/);
  const json = await remediate('show', incidentWorkflowId('rollback', 'alfred'), '--json');
  expect(JSON.parse(json.stdout)).toMatchObject({ runbook: 'rollback', outcome: 'dry-run', requestedBy: 'erin' });
  // The post-mortem is written from the incident's event history.
  const pm = await remediate('postmortem', incidentWorkflowId('rollback', 'alfred'));
  expect(pm.code).toBe(0);
  expect(pm.stdout).toMatch(/## Post-Mortem: INC-\d{4}-\d{2}-\d{2}-rollback/);
  expect(pm.stdout).toMatch(/\| \d{2}:\d{2}:\d{2} \| Incident opened by erin/);
  expect(pm.stdout).toMatch(/Incident closed: dry-run/);
});

test('approvals through the script: requester and strangers refused, reject escalates, close ends it', async () => {
  const id = incidentWorkflowId('rollback', 'alfred');
  const started = await as('erin', 'rollback', '--target', 'alfred', '--services', 'api', '--tag', '1.0.0');
  expect(started.code).toBe(0);
  await engine.waitFor(engine.client.workflow.getHandle(id), (s) => s.pending.some((p) => p.stepId === 'recreate-api'));

  const listed = await remediate('list', '--target', 'alfred');
  expect(listed.stdout).toContain(id);

  const own = await as('erin', 'approve', id, 'recreate-api');
  expect(own.code).toBe(1);
  expect(own.stderr).toMatch(/refused: erin opened this incident and cannot approve/);
  // dave signs in fine but is not among the policy's approvers.
  const stranger = await as('dave', 'approve', id, 'recreate-api');
  expect(stranger.stderr).toMatch(/not an allowed approver/);
  const notPending = await as('alice', 'approve', id, 'restore-backup');
  expect(notPending.stderr).toMatch(/not waiting for approval/);

  const again = await as('erin', 'rollback', '--target', 'alfred');
  expect(again.code).toBe(1);
  expect(again.stderr).toMatch(/already open/);

  const rejected = await as('bob', 'reject', id, 'recreate-api', '--comment', 'not now');
  expect(rejected.code).toBe(0);
  expect(rejected.stdout).toMatch(/^rejected recreate-api on incident-rollback-alfred as bob: step is now rejected/);
  await engine.waitFor(engine.client.workflow.getHandle(id), (s) => s.phase === 'ESCALATED');
  const shown = await remediate('show', id);
  expect(shown.stdout).toMatch(/step recreate-api \[approve\] rejected/);
  expect(shown.stdout).toMatch(/remediate close/);
  const closed = await as('bob', 'close', id, '--note', 'kept 1.1.0');
  expect(closed.code).toBe(0);
  expect(closed.stdout).toMatch(/closed incident-rollback-alfred as bob/);
  const rec = await engine.result(engine.client.workflow.getHandle(id));
  expect(rec.outcome).toBe('escalated');
  // What reached the workflow: sealed by the credential's owner, naming the incident; no name typed in.
  const pm = await as('alice', 'postmortem', id);
  expect(pm.code).toBe(0);
  expect(pm.stdout).toMatch(/\| Incident opened by erin/);
  expect(pm.stdout).toMatch(/\| bob rejected recreate-api/);
  expect(pm.stdout).toMatch(/\| bob sent close: kept 1\.1\.0/);
});

test('an abort through the script: an early close points to it, it needs a reason and an approver, and it stops the incident', async () => {
  const id = incidentWorkflowId('rollback', 'alfred');
  const h = engine.client.workflow.getHandle(id);
  expect((await as('erin', 'rollback', '--target', 'alfred', '--services', 'api', '--tag', '1.0.0')).code).toBe(0);
  await engine.waitFor(h, (s) => s.pending.some((p) => p.stepId === 'recreate-api'));

  const early = await as('bob', 'close', id);
  expect(early.code).toBe(1);
  expect(early.stderr).toMatch(/not escalated; .*remediate abort incident-rollback-alfred --reason/);
  const noReason = await as('bob', 'abort', id);
  expect(noReason.code).toBe(2);
  expect(noReason.stderr).toMatch(/an abort needs a reason/);
  // dave signs in fine but may not approve, so he may not abort either: the workflow refuses it.
  expect((await as('dave', 'abort', id, '--reason', 'I want it gone')).code).toBe(0);
  await engine.waitFor(h, (s) => s.timeline.some((t) => t.event === 'refused abort from dave: not an allowed approver'));
  expect((await h.query('status')) as { phase: string }).toMatchObject({ phase: 'MITIGATE' });

  const aborted = await as('bob', 'abort', id, '--reason', 'wrong target: handled by hand');
  expect(aborted.code).toBe(0);
  expect(aborted.stdout).toMatch(/abort of incident-rollback-alfred sent as bob/);
  const rec = await engine.result(h);
  expect(rec.outcome).toBe('aborted');
  expect(rec.aborted).toMatchObject({ by: 'bob', reason: 'wrong target: handled by hand' });
  expect(rec.actions.find((a) => a.stepId === 'recreate-api')).toMatchObject({ state: 'skipped' });
  const pm = await as('alice', 'postmortem', id);
  expect(pm.stdout).toMatch(/\| dave sent abort: I want it gone/);
  expect(pm.stdout).toMatch(/\| bob sent abort: wrong target: handled by hand/);
  expect(pm.stdout).toMatch(/Outcome: \*\*aborted\*\*/);
});
