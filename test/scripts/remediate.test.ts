/**
 * The client script as engineers run it (bin/remediate, a subprocess running the compiled build),
 * against the real Temporal server, a real engine worker and the real codec server (in-process,
 * TEST-ONLY secrets): usage errors, per-command help and options, --version, shell completion, what
 * it says when it cannot run, paths relative to the caller, errors as JSON, unknown ids and targets,
 * the personal credential (who you are comes from it, not from a flag), refusals, dry-run rollback
 * with --wait.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { incidentWorkflowId } from '../../src/workflows/contracts';
import { startTestCodecServer, tokenOf, type FixtureOperator, type TestCodecServer } from '../helpers/codec';
import { REPO, startEngine, type Engine } from '../helpers/engine';
import { remediateCli, type CliResult, type RemediateCli } from '../helpers/remediate-cli';

jest.setTimeout(120_000);

let engine: Engine;
let codec: TestCodecServer;
let cli: RemediateCli;
let credentials: string;

type Result = CliResult;

/** The script with `env` as given (see test/helpers/remediate-cli.ts). */
const remediateWith: RemediateCli['withEnv'] = (...a) => cli.withEnv(...a);

async function as(who: FixtureOperator, ...args: string[]): Promise<Result> {
  return cli.as(who, ...args);
}

/** Commands that need no credential (help, usage errors found before it is read). */
async function remediate(...args: string[]): Promise<Result> {
  return as('erin', ...args);
}

/** Under --json a failure is one JSON object on stderr, and nothing else is printed. */
function jsonError(r: Result): { error: string; code: number } {
  expect(r.stdout).toBe('');
  const lines = r.stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  const parsed = JSON.parse(lines[0] as string) as { error: string; code: number };
  expect(Object.keys(parsed).sort()).toEqual(['code', 'error']);
  expect(parsed.code).toBe(r.code);
  return parsed;
}

beforeAll(async () => {
  codec = await startTestCodecServer();
  engine = await startEngine();
  // bin/remediate runs the compiled client: built when a source is newer (scripts/test.sh does too).
  cli = remediateCli({ taskQueue: engine.taskQueue, codecUrl: codec.url });
  credentials = cli.credentials;
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
  cli.close();
});

test('--help documents every command; bad usage exits 2 with a message', async () => {
  // Runs that do not depend on each other run side by side (here and below): each is a process of its own.
  const [help, bad, rollback, approve, severity, frobnicate] = await Promise.all([
    remediate('--help'),
    remediate('explode'),
    remediate('rollback'),
    remediate('approve', 'x'),
    remediate('start', 'cacheFailure', '--target', 'alfred', '--severity', '9'),
    remediate('list', '--frobnicate'),
  ]);
  expect(help.code).toBe(0);
  for (const c of ['login', 'whoami', 'runbooks', 'list', 'show', 'start', 'rollback', 'approve', 'reject', 'close', 'abort', '--reason', 'postmortem', 'schedules', '--dry-run', '--wait', 'REMEDIATE_CREDENTIALS', '~/.config/remediate/credentials']) {
    expect(help.stdout).toContain(c);
  }
  expect(help.stdout).not.toContain('--as');
  expect(bad).toMatchObject({ code: 2 });
  expect(bad.stderr).toMatch(/unknown command "explode"/);
  expect(rollback.stderr).toMatch(/--target is required/);
  expect(approve.stderr).toMatch(/usage: remediate approve <incident-id> <step-id>/);
  expect(severity.stderr).toMatch(/--severity must be/);
  expect(frobnicate.code).toBe(2);
});

test('each command has its own help and options: an option it does not take is a usage error naming it', async () => {
  const [list, viaHelp, abortH, rollback, start, explode, tag, note, before, extra] = await Promise.all([
    remediate('list', '--help'),
    remediate('help', 'abort'),
    remediate('abort', '-h'),
    remediate('help', 'rollback'),
    remediate('help', 'start'),
    remediate('help', 'explode'),
    remediate('list', '--tag', 'x'),
    remediate('approve', 'incident-x', 'step', '--note', 'hi'),
    remediate('--target', 'alfred', 'rollback'),
    remediate('show', 'incident-x', 'extra'),
  ]);
  expect(list.code).toBe(0);
  expect(list.stdout).toMatch(/^Usage: remediate list \[--all\] \[--runbook R\] \[--target T\]\n/);
  expect(list.stdout).toMatch(/\n {2}--runbook R +only this runbook's incidents\n/);
  expect(list.stdout).not.toContain('--tag');
  expect(list.stdout).toContain('--config FILE');
  expect(viaHelp.code).toBe(0);
  expect(viaHelp.stdout).toBe(abortH.stdout);
  expect(viaHelp.stdout).toMatch(/^Usage: remediate abort <incident-id> --reason TEXT\n/);
  expect(viaHelp.stdout).toMatch(/--reason TEXT +why \(required/);
  for (const o of ['--target T', '--tag TAG', '--services a,b', '--migration-downgrade', '--restore-backup', '--dry-run', '--wait', '--param key=value'])
    expect(rollback.stdout).toContain(o);
  expect(start.stdout).not.toContain('--restore-backup');
  expect(explode.stderr).toMatch(/unknown command "explode"/);

  expect(tag.code).toBe(2);
  expect(tag.stderr).toBe('error: unknown option --tag for remediate list (see remediate list --help)\n');
  expect(note.code).toBe(2);
  expect(note.stderr).toMatch(/unknown option --note for remediate approve/);
  // Before the command only global options are taken.
  expect(before.code).toBe(2);
  expect(before.stderr).toMatch(/unknown option --target \(see remediate --help/);
  // Operands a command does not take are refused too.
  expect(extra.stderr).toMatch(/usage: remediate show <incident-id>/);
});

test('--version prints the package version', async () => {
  const { version } = JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { version: string };
  const [r, json] = await Promise.all([remediate('--version'), remediate('--version', '--json')]);
  expect(r).toEqual({ code: 0, stdout: `${version}\n`, stderr: '' });
  expect(JSON.parse(json.stdout)).toEqual({ version });
});

test('commands that need no server load neither the Temporal client nor the Docker client', async () => {
  // A preloaded probe lists, as the process exits, the packages it loaded: the client's start-up is
  // what every engineer waits for on --help, and what each of this file's invocations costs.
  const dir = mkdtempSync(path.join(tmpdir(), 'remediate-loads-'));
  try {
    const probe = path.join(dir, 'probe.js');
    writeFileSync(
      probe,
      `process.on('exit', () => require('fs').writeFileSync(process.env.LOADS_FILE, JSON.stringify(Object.keys(require.cache))));\n`,
    );
    const heavy = /node_modules\/(@temporalio\/client|@grpc\/grpc-js|dockerode)\//;
    for (const args of [['--version'], ['--help'], ['maintenance', '--help'], ['approve', '--help']]) {
      const loads = path.join(dir, `${args.join('-')}.json`);
      const r = await remediateWith({ NODE_OPTIONS: `--require ${probe}`, LOADS_FILE: loads }, args);
      expect({ args, code: r.code }).toEqual({ args, code: 0 });
      const loaded = JSON.parse(readFileSync(loads, 'utf8')) as string[];
      // The probe saw the client itself load: it really ran in that process.
      expect(loaded.some((f) => f.includes(`${path.sep}dist${path.sep}scripts${path.sep}remediate${path.sep}`))).toBe(true);
      expect({ args, heavy: [...new Set(loaded.filter((f) => heavy.test(f)).map((f) => heavy.exec(f)![1]))] }).toEqual({ args, heavy: [] });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('completion: a bash script bash accepts and that completes commands, options and runbooks; a zsh script', async () => {
  const [bash, zsh, fish] = await Promise.all([remediate('completion', 'bash'), remediate('completion', 'zsh'), remediate('completion', 'fish')]);
  expect(bash.code).toBe(0);
  const dir = mkdtempSync(path.join(tmpdir(), 'remediate-completion-'));
  try {
    const file = path.join(dir, 'remediate.bash');
    writeFileSync(file, bash.stdout);
    execFileSync('bash', ['-n', file]);
    /** What bash offers after `words` (the last one is being typed). */
    const complete = (...words: string[]): string[] =>
      execFileSync('bash', ['-c', `source "$0"; COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); _remediate; printf '%s\\n' "\${COMPREPLY[@]}"`, file, 'remediate', ...words], { encoding: 'utf8' })
        .split('\n')
        .filter(Boolean);
    expect(complete('')).toEqual(expect.arrayContaining(['login', 'list', 'rollback', 'abort', 'completion', 'help']));
    expect(complete('ro')).toEqual(['rollback']);
    expect(complete('list', '--')).toEqual(expect.arrayContaining(['--all', '--runbook', '--target', '--json', '--config', '--help']));
    expect(complete('list', '--')).not.toContain('--tag');
    expect(complete('rollback', '--r')).toEqual(['--restore-backup']);
    expect(complete('start', '')).toEqual(expect.arrayContaining(['rollback', 'cacheFailure']));
    expect(complete('--json', 'start', 'ca')).toEqual(expect.arrayContaining(['cacheFailure', 'cachePoisoning']));
    expect(complete('list', '--runbook', 'roll')).toEqual(['rollback']);
    expect(complete('completion', '')).toEqual(['bash', 'zsh']);
    expect(complete('show', '')).toEqual([]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  expect(zsh.code).toBe(0);
  // zsh parses it (scripts/install.sh installs zsh).
  execFileSync('zsh', ['-n'], { input: zsh.stdout });
  expect(zsh.stdout).toMatch(/^#compdef remediate/);
  expect(zsh.stdout).toContain('compdef _remediate remediate');
  expect(zsh.stdout).toMatch(/\n {4}'abort:stop an incident before it finishes/);
  const listLine = zsh.stdout.split('\n').find((l) => l.trim().startsWith('list)')) ?? '';
  expect(listLine).toContain("'--all[closed incidents too]'");
  expect(listLine).not.toContain('--tag');
  expect(fish.stderr).toMatch(/usage: remediate completion bash\|zsh/);
});

test('without packages or a current build it says what to run and exits 2, never with a stack trace', async () => {
  // A copy of bin/remediate in a directory of its own: it looks for the build beside itself.
  const root = mkdtempSync(path.join(tmpdir(), 'remediate-unbuilt-'));
  const bin = path.join(root, 'bin/remediate');
  try {
    mkdirSync(path.dirname(bin));
    copyFileSync(path.join(REPO, 'bin/remediate'), bin);
    chmodSync(bin, 0o755);
    const noModules = await remediateWith({}, ['list'], '', { bin });
    expect(noModules.code).toBe(2);
    expect(noModules.stderr).toBe(
      `error: remediate cannot run: its packages are not installed in ${root}; run \`npm ci\` and then \`npm run build\` there (or scripts/install.sh)\n`,
    );
    mkdirSync(path.join(root, 'node_modules'));
    const [noBuild, noBuildJson] = await Promise.all([remediateWith({}, ['list'], '', { bin }), remediateWith({}, ['list', '--json'], '', { bin })]);
    expect(noBuild.code).toBe(2);
    expect(noBuild.stderr).toContain(`remediate is not built: ${root}/dist/scripts/remediate/index.js is missing; run \`npm run build\` in ${root}`);
    expect(jsonError(noBuildJson).error).toContain('remediate is not built');

    const entry = path.join(root, 'dist/scripts/remediate/index.js');
    mkdirSync(path.dirname(entry), { recursive: true });
    writeFileSync(entry, "console.log('the build ran', process.argv.slice(2).join(' '));\n");
    mkdirSync(path.join(root, 'src'));
    writeFileSync(path.join(root, 'src/config.ts'), '');
    const past = new Date(Date.now() - 60_000);
    utimesSync(entry, past, past);
    const stale = await remediateWith({}, ['list'], '', { bin });
    expect(stale.code).toBe(2);
    expect(stale.stderr).toContain("remediate's build is older than its sources (src/config.ts changed); run `npm run build`");
    expect(stale.stderr).not.toMatch(/\n\s+at /);
    // Built after the sources: it runs the build, with the arguments as given.
    utimesSync(entry, new Date(), new Date());
    expect(await remediateWith({}, ['list', '--all'], '', { bin })).toEqual({ code: 0, stdout: 'the build ran list --all\n', stderr: '' });
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('paths given on the command line resolve against the caller\'s directory; the defaults against the repository', async () => {
  const here = mkdtempSync(path.join(tmpdir(), 'remediate-cwd-'));
  try {
    // The repository's config/engine.yaml, read from elsewhere.
    const [byDefault, missing] = await Promise.all([
      remediateWith({}, ['rollback', '--target', 'mainframe'], '', { cwd: here }),
      remediateWith({}, ['rollback', '--target', 'alfred', '--config', './mine.yaml'], '', { cwd: here }),
    ]);
    expect(byDefault.stderr).toMatch(/unknown target "mainframe"; configured: alfred/);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain(`config file not found: ${path.join(here, 'mine.yaml')}`);
    writeFileSync(path.join(here, 'mine.yaml'), 'temporal: [this is not a mapping\n');
    const mine = await remediateWith({}, ['rollback', '--target', 'alfred', '--config', 'mine.yaml'], '', { cwd: here });
    expect(mine.code).toBe(2);
    expect(mine.stderr).toContain(`config file ${path.join(here, 'mine.yaml')} is not valid YAML`);
  } finally {
    rmSync(here, { recursive: true, force: true });
  }
});

test('under --json every failure is one JSON object with its exit code, on stderr', async () => {
  const [tag, explode, none, unknown, unreachable, noCredential] = await Promise.all([
    remediate('list', '--tag', 'x', '--json'),
    remediate('--json', 'explode'),
    remediate('--json'),
    remediate('show', 'incident-nope-nowhere', '--json'),
    remediateWith({ REMEDIATE_CREDENTIALS: path.join(credentials, 'erin'), CODEC_SERVER_URL: 'http://127.0.0.1:9' }, ['list', '--json']),
    remediateWith({ REMEDIATE_CREDENTIALS: path.join(credentials, 'none') }, ['whoami', '--json']),
  ]);
  expect(jsonError(tag)).toEqual({
    error: 'unknown option --tag for remediate list (see remediate list --help)',
    code: 2,
  });
  expect(jsonError(explode)).toEqual({ error: 'unknown command "explode" (see remediate --help)', code: 2 });
  expect(jsonError(none)).toEqual({ error: 'a command is required (see remediate --help)', code: 2 });
  expect(jsonError(unknown)).toEqual({
    error: 'no incident "incident-nope-nowhere" (see `remediate list --all`)',
    code: 1,
  });
  expect(unreachable.code).toBe(1);
  expect(jsonError(unreachable).error).toMatch(/^codec server http:\/\/127\.0\.0\.1:9 cannot be reached/);
  expect(jsonError(noCredential)).toMatchObject({ code: 2, error: expect.stringContaining('no credential') });
});

test('unknown targets and runbooks are refused before any workflow starts', async () => {
  const [r, u] = await Promise.all([remediate('rollback', '--target', 'mainframe'), remediate('start', 'fixEverything', '--target', 'alfred')]);
  expect(r.code).toBe(2);
  expect(r.stderr).toMatch(/unknown target "mainframe"; configured: alfred/);
  expect(u.code).toBe(2);
  expect(u.stderr).toMatch(/unknown runbook "fixEverything"/);
  await expect(engine.client.workflow.getHandle(incidentWorkflowId('fixEverything', 'alfred')).describe()).rejects.toThrow();
});

test('who you are comes from the credential: --as is a usage error, none is a clear error, whoami names its owner', async () => {
  // No credential: the file it looked for, and how to get one. Exit 2, as for any bad setup.
  const nowhere = path.join(credentials, 'none', 'credentials');
  const noCredentialArgs = [['list'], ['show', 'incident-x'], ['approve', 'incident-x', 'step'], ['whoami']];
  // The default place when REMEDIATE_CREDENTIALS is not set.
  const home = mkdtempSync(path.join(tmpdir(), 'remediate-home-'));
  // A credential others can read.
  const open = path.join(credentials, 'open');
  writeFileSync(open, tokenOf('alice'));
  chmodSync(open, 0o644);
  // A token the codec server does not know.
  const stale = path.join(credentials, 'stale');
  writeFileSync(stale, 'not-a-token-of-anyone', { mode: 0o600 });
  const [withAs, rollbackAs, noCredential, byDefault, refused, me, dave, unknown] = await Promise.all([
    remediate('approve', 'incident-x', 'step', '--as', 'alice'),
    remediate('rollback', '--target', 'alfred', '--as', 'erin'),
    Promise.all(noCredentialArgs.map((args) => remediateWith({ REMEDIATE_CREDENTIALS: nowhere }, args))),
    remediateWith({ HOME: home }, ['list']),
    remediateWith({ REMEDIATE_CREDENTIALS: open }, ['whoami']),
    as('alice', 'whoami'),
    as('dave', 'whoami', '--json'),
    remediateWith({ REMEDIATE_CREDENTIALS: stale }, ['list']),
  ]);

  expect(withAs.code).toBe(2);
  expect(withAs.stderr).toMatch(/--as is not an option: who you are comes from your credential/);
  expect(rollbackAs.stderr).toMatch(/who you are comes from your credential/);

  for (const [i, args] of noCredentialArgs.entries()) {
    const r = noCredential[i] as Result;
    expect({ args, code: r.code }).toEqual({ args, code: 2 });
    expect(r.stderr).toContain(`no credential: ${nowhere} does not exist`);
    expect(r.stderr).toContain('remediate login');
  }
  expect(byDefault.code).toBe(2);
  expect(byDefault.stderr).toContain(`no credential: ${path.join(home, '.config/remediate/credentials')} does not exist`);

  // A credential others can read is refused, with the chmod that fixes it.
  expect(refused.code).toBe(2);
  expect(refused.stderr).toContain(`credential ${open} can be read by others (mode 0644): chmod 600 ${open}`);

  // whoami: the token's owner, as the codec server takes it.
  expect(me.code).toBe(0);
  expect(me.stdout).toMatch(/^alice \(via token\) at http:\/\/127\.0\.0\.1:\d+/);
  expect(JSON.parse(dave.stdout)).toMatchObject({ name: 'dave', via: 'token', server: codec.url });

  // A token the codec server does not know: exit 1, sign in again.
  expect(unknown.code).toBe(1);
  expect(unknown.stderr).toContain(`does not accept the credential in ${stale} (401)`);
  expect(unknown.stderr).toContain('remediate login');
  rmSync(home, { recursive: true, force: true });
});

test('remediate login checks the token with the codec server and stores it, mode 600', async () => {
  const home = mkdtempSync(path.join(tmpdir(), 'remediate-home-'));
  try {
    const file = path.join(home, '.config/remediate/credentials');
    // Neither stores anything.
    const [wrong, empty] = await Promise.all([remediateWith({ HOME: home }, ['login'], 'not-a-token\n'), remediateWith({ HOME: home }, ['login'], '\n')]);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/does not accept this token \(401\)/);
    expect(existsSync(file)).toBe(false);
    expect(empty.code).toBe(2);

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
  // --out is relative to where the engineer stands, not to the repository.
  const here = mkdtempSync(path.join(tmpdir(), 'remediate-out-'));
  const [json, pm, written] = await Promise.all([
    remediate('show', incidentWorkflowId('rollback', 'alfred'), '--json'),
    remediate('postmortem', incidentWorkflowId('rollback', 'alfred')),
    remediateWith({ REMEDIATE_CREDENTIALS: path.join(credentials, 'erin') }, ['postmortem', incidentWorkflowId('rollback', 'alfred'), '--out', 'report.md'], '', { cwd: here }),
  ]);
  expect(JSON.parse(json.stdout)).toMatchObject({ runbook: 'rollback', outcome: 'dry-run', requestedBy: 'erin' });
  // The post-mortem is written from the incident's event history.
  expect(pm.code).toBe(0);
  expect(pm.stdout).toMatch(/## Post-Mortem: INC-\d{4}-\d{2}-\d{2}-rollback/);
  expect(pm.stdout).toMatch(/\| \d{2}:\d{2}:\d{2} \| Incident opened by erin/);
  expect(pm.stdout).toMatch(/Incident closed: dry-run/);
  try {
    expect(written.code).toBe(0);
    expect(readFileSync(path.join(here, 'report.md'), 'utf8')).toBe(written.stdout.replace(/\n$/, ''));
    expect(existsSync(path.join(REPO, 'report.md'))).toBe(false);
  } finally {
    rmSync(here, { recursive: true, force: true });
  }
});

test('approvals through the script: requester and strangers refused, reject escalates, close ends it', async () => {
  const id = incidentWorkflowId('rollback', 'alfred');
  const started = await as('erin', 'rollback', '--target', 'alfred', '--services', 'api', '--tag', '1.0.0');
  expect(started.code).toBe(0);
  await engine.waitFor(engine.client.workflow.getHandle(id), (s) => s.pending.some((p) => p.stepId === 'recreate-api'));

  // Reads and requests the workflow refuses: none changes the incident.
  const [listed, own, ownJsonRun, stranger, notPending, again] = await Promise.all([
    remediate('list', '--target', 'alfred'),
    as('erin', 'approve', id, 'recreate-api'),
    as('erin', 'approve', id, 'recreate-api', '--json'),
    // dave signs in fine but is not among the policy's approvers.
    as('dave', 'approve', id, 'recreate-api'),
    as('alice', 'approve', id, 'restore-backup'),
    as('erin', 'rollback', '--target', 'alfred'),
  ]);
  expect(listed.stdout).toContain(id);

  expect(own.code).toBe(1);
  expect(own.stderr).toMatch(/refused: erin opened this incident and cannot approve/);
  const ownJson = jsonError(ownJsonRun);
  expect(ownJson).toMatchObject({ code: 1, error: expect.stringMatching(/^refused: erin opened this incident and cannot approve/) });
  expect(stranger.stderr).toMatch(/not an allowed approver/);
  expect(notPending.stderr).toMatch(/not waiting for approval/);

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

  const [early, noReason, daves] = await Promise.all([
    as('bob', 'close', id),
    as('bob', 'abort', id),
    // dave signs in fine but may not approve, so he may not abort either: the workflow refuses it.
    as('dave', 'abort', id, '--reason', 'I want it gone'),
  ]);
  expect(early.code).toBe(1);
  expect(early.stderr).toMatch(/not escalated; .*remediate abort incident-rollback-alfred --reason/);
  expect(noReason.code).toBe(2);
  expect(noReason.stderr).toMatch(/an abort needs a reason/);
  expect(daves.code).toBe(0);
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
