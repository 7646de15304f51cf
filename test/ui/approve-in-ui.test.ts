/**
 * Operators approve from the real Temporal Web UI: headless Chromium (Debian's) drives the dev
 * server's UI on 8233, signed in to the codec server (the real one, in-process, TEST-ONLY secrets)
 * and decoding through it, reads the pending step from the incident's Current Details, sends the
 * `approve` signal through the UI's own "Send a Signal" form, sealed by the codec server with the
 * operator's name, and the workflow proceeds; a `reject` from the UI stops the step, and `close`
 * from the UI ends the escalated incident. Screenshots of each stage go to test-results/ui/.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { decideUpdate } from '../../src/workflows/contracts';
import { statusQuery } from '../../src/workflows/contracts';
import { startTestCodecServer, type FixtureOperator, type TestCodecServer } from '../helpers/codec';
import { REPO, startEngine, waitUntil, type Engine } from '../helpers/engine';
import { health } from '../helpers/drill';

jest.setTimeout(240_000);

const UI = 'http://127.0.0.1:8233';
const SHOTS = path.join(REPO, 'test-results/ui');
let engine: Engine;
let browser: Browser;
let codec: TestCodecServer;

/**
 * A browser signed in to the codec server as `who` (its session cookie), whose UI decodes and
 * encodes through it with credentials: the UI's own codec settings, as an operator sets them.
 */
async function signedIn(who: FixtureOperator): Promise<BrowserContext> {
  const context = await withCodecSettings();
  const login = await context.request.post(`${codec.url}/login`, { data: { name: who, password: `test-password-${who}` } });
  expect(login.status()).toBe(200);
  return context;
}

/** A browser whose UI decodes and encodes through the codec server, not signed in to it. */
async function withCodecSettings(): Promise<BrowserContext> {
  const context = await browser.newContext({ viewport: { width: 1400, height: 1300 } });
  // The UI keeps its codec settings in localStorage, each value JSON.
  const settings = { endpoint: codec.url, includeCredentials: true, overrideRemoteCodecConfiguration: true };
  await context.addInitScript({
    content: Object.entries(settings)
      .map(([k, v]) => `localStorage.setItem(${JSON.stringify(k)}, ${JSON.stringify(JSON.stringify(v))});`)
      .join('\n'),
  });
  return context;
}

async function openIncident(context: BrowserContext, id: string): Promise<Page> {
  const page = await context.newPage();
  await page.goto(`${UI}/namespaces/default/workflows/${id}`, { waitUntil: 'domcontentloaded' });
  return page;
}

/** The UI's own signal form: More Actions → Send a Signal → pick the handler → JSON → Submit. */
async function sendSignal(page: Page, description: string, json: unknown, shot: string): Promise<void> {
  await page.getByRole('button', { name: /More Actions/ }).click();
  await page.getByRole('menuitem', { name: 'Send a Signal' }).first().click();
  const dialog = page.locator('dialog[open]').first();
  await dialog.getByTestId('signal-select-button').click();
  // The dropdown is filled from the workflow's metadata query: our handler descriptions.
  await dialog.getByRole('option').filter({ hasText: description }).first().click();
  await dialog.locator('.cm-content').first().click();
  await page.keyboard.press('Control+A');
  // insertText, not typed keys: the page has single-key shortcuts ("R" refreshes the details).
  await page.keyboard.insertText(JSON.stringify(json));
  await page.screenshot({ path: path.join(SHOTS, `${shot}.png`) });
  // The editor reformats its JSON when it loses focus; that first click can be taken by the blur,
  // so submit again while the form is still open. Arrival is asserted on the workflow itself.
  for (let i = 0; i < 3; i++) {
    await dialog.getByRole('button', { name: 'Submit' }).click();
    const closed = await dialog
      .waitFor({ state: 'hidden', timeout: 3000 })
      .then(() => true)
      .catch(() => false);
    if (closed) break;
  }
}

/** Reads the incident's Current Details as the operator sees them (User Metadata tab). */
async function currentDetails(page: Page, shot: string): Promise<string> {
  await page.getByText('User Metadata').first().waitFor();
  await page.getByText('User Metadata').first().click();
  // The UI renders Current Details markdown inside a sandboxed frame.
  const frame = page.frameLocator('iframe').first();
  const details = frame.getByText(/Waiting for approval|Escalated/).first();
  try {
    await details.waitFor({ timeout: 30_000 });
  } catch (err) {
    await page.screenshot({ path: path.join(SHOTS, `${shot}-failed.png`) });
    throw err;
  }
  await page.screenshot({ path: path.join(SHOTS, `${shot}.png`) });
  return frame.locator('body').innerText();
}

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  codec = await startTestCodecServer();
  engine = await startEngine();
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
  });
});

afterAll(async () => {
  await browser?.close();
  // Back to the release the stack runs, if a test moved the worker.
  const worker = (await engine.docker.listContainers({ filters: { label: ['com.docker.compose.project=alfred', 'com.docker.compose.service=worker'] } }))[0];
  if (worker && !worker.Image.endsWith(':1.1.0')) {
    const h = await engine.start({ runbook: 'rollback', target: 'alfred', params: { services: ['worker'], tag: '1.1.0' } });
    await engine.waitFor(h, (s) => s.pending.length > 0);
    await h.executeUpdate(decideUpdate, { args: [{ incidentId: h.workflowId, stepId: 'recreate-worker', approver: 'alice', decision: 'approve' }] });
    await engine.result(h);
  }
  await waitUntil('api healthy', async () => (await health())?.status === 'ok');
  await engine.stop();
  await codec?.close();
});

test('an approval sent through the UI signal form lets the step run', async () => {
  const h = await engine.start({ runbook: 'rollback', target: 'alfred', requestedBy: 'erin', params: { services: ['worker'], tag: '1.0.0' } });
  await engine.waitFor(h, (s) => s.pending.some((p) => p.stepId === 'recreate-worker'));
  const alice = await signedIn('alice');
  const page = await openIncident(alice, h.workflowId);
  // Decoded through the codec server: the details are the workflow's, not ciphertext.
  const text = await currentDetails(page, '1-waiting-for-approval');
  // The operator sees the step and the JSON to send.
  expect(text).toContain('recreate-worker');
  expect(text).toContain('"stepId":"recreate-worker"');

  // No name in it: the codec server seals it as alice, who is signed in.
  await sendSignal(page, 'Approve a pending step', { stepId: 'recreate-worker', incidentId: h.workflowId, comment: 'approved in the UI' }, '2-approve-form');
  const rec = await engine.result(h);
  expect(rec.outcome).toBe('resolved');
  expect(rec.actions[0]).toMatchObject({ stepId: 'recreate-worker', state: 'done', approvals: ['alice'] });
  // Counted for alice because the codec server sealed it for her session.
  expect(rec.timeline.some((e) => /alice \(sealed\) approved recreate-worker \(approved in the UI\)/.test(e.event))).toBe(true);
  await page.reload();
  await page.getByText('Completed').first().waitFor();
  await page.screenshot({ path: path.join(SHOTS, '3-completed.png') });
  await alice.close();
});

test('a rejection from the UI stops the step; close from the UI ends the escalated incident', async () => {
  const current = (await engine.docker.listContainers({ filters: { label: ['com.docker.compose.project=alfred', 'com.docker.compose.service=worker'] } }))[0]?.Image ?? '';
  const tag = current.endsWith(':1.0.0') ? '1.1.0' : '1.0.0';
  const h = await engine.start({ runbook: 'rollback', target: 'alfred', requestedBy: 'erin', params: { services: ['worker'], tag } });
  await engine.waitFor(h, (s) => s.pending.some((p) => p.stepId === 'recreate-worker'));
  const bob = await signedIn('bob');
  const page = await openIncident(bob, h.workflowId);
  await currentDetails(page, '4-waiting-again');
  await sendSignal(page, 'Reject a pending step', { stepId: 'recreate-worker', incidentId: h.workflowId, comment: 'not now' }, '5-reject-form');
  const escalated = await engine.waitFor(h, (s) => s.phase === 'ESCALATED');
  expect(escalated.actions[0]).toMatchObject({ state: 'rejected', rejectedBy: 'bob' });
  await page.reload();
  const text = await currentDetails(page, '6-escalated');
  expect(text).toContain('Escalated');
  await sendSignal(page, 'Close an escalated incident', { incidentId: h.workflowId, note: 'kept 1.0.0 on purpose' }, '7-close-form');
  const rec = await engine.result(h);
  expect(rec.outcome).toBe('escalated');
  await bob.close();
});

test('a UI session not signed in to the codec server decodes nothing and approves nothing', async () => {
  const h = await engine.start({ runbook: 'rollback', target: 'alfred', requestedBy: 'erin', params: { services: [], restoreBackup: true } });
  await engine.waitFor(h, (s) => s.pending.some((p) => p.stepId === 'restore-backup'));
  const anonymous = await withCodecSettings();
  const codecAnswers: number[] = [];
  anonymous.on('response', (r) => {
    if (r.url().startsWith(codec.url)) codecAnswers.push(r.status());
  });
  const page = await openIncident(anonymous, h.workflowId);
  await page.getByText('User Metadata').first().waitFor();
  await waitUntil('the UI asked the codec server', async () => codecAnswers.length > 0);
  // Whatever the form manages to send without a session, it is not sealed for anyone. (Without
  // decoding, the UI cannot list the handlers: the form is given a few seconds, not the default 30.)
  page.setDefaultTimeout(8_000);
  const attempt = await sendSignal(page, 'Approve a pending step', { stepId: 'restore-backup', incidentId: h.workflowId }, '8-not-signed-in').then(
    () => 'submitted',
    (err: unknown) => `the form could not be used: ${String(err).slice(0, 120)}`,
  );
  await page.screenshot({ path: path.join(SHOTS, '9-not-signed-in.png') });
  expect(codecAnswers.length).toBeGreaterThan(0);
  expect(codecAnswers.every((s) => s === 401)).toBe(true);
  const rec = await h.query(statusQuery);
  expect(rec.pending.find((p) => p.stepId === 'restore-backup')?.approvals).toEqual([]);
  expect(rec.timeline.some((e) => / approved restore-backup/.test(e.event))).toBe(false);
  console.log(`UI without a codec session: codec answers ${[...new Set(codecAnswers)].join(', ')}; signal form ${attempt}`);
  await page.close();
  await anonymous.close();
  // Signed in, bob rejects and closes: the step never ran.
  const bob = await signedIn('bob');
  const bobPage = await openIncident(bob, h.workflowId);
  await currentDetails(bobPage, '10-signed-in-again');
  await sendSignal(bobPage, 'Reject a pending step', { stepId: 'restore-backup', incidentId: h.workflowId }, '11-reject-form');
  await engine.waitFor(h, (s) => s.phase === 'ESCALATED');
  await sendSignal(bobPage, 'Close an escalated incident', { incidentId: h.workflowId }, '12-close-form');
  expect((await engine.result(h)).outcome).toBe('escalated');
  await bob.close();
});
