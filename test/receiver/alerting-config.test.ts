/**
 * The shipped Prometheus and Alertmanager files pass promtool / amtool, the alert rules fire at the
 * seed thresholds (promtool test rules), and every catalog alert has a rule that names it.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { RUNBOOKS } from '../../src/workflows/catalog';
import { REPO } from './helpers';

function which(bin: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v ${bin}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

const promtool = which('promtool');
const amtool = which('amtool');
const RULES = path.join(REPO, 'config/prometheus/alert-rules.yml');

function run(bin: string, args: string[]) {
  const r = spawnSync(bin, args, { cwd: REPO, encoding: 'utf8' });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

// scripts/install.sh installs both (Debian prometheus, prometheus-alertmanager); a missing tool fails
// the checks that need it instead of skipping them.
function tool(bin: string | undefined, name: string): string {
  if (!bin) throw new Error(`${name} not found: install the Debian packages prometheus and prometheus-alertmanager (scripts/install.sh)`);
  return bin;
}
test('promtool check rules config/prometheus/alert-rules.yml', () => {
  const r = run(tool(promtool, 'promtool'), ['check', 'rules', RULES]);
  expect(r.output).toContain('SUCCESS');
  expect(r.status).toBe(0);
});

test('promtool check config config/prometheus/prometheus.yml', () => {
  const r = run(tool(promtool, 'promtool'), ['check', 'config', path.join(REPO, 'config/prometheus/prometheus.yml')]);
  expect(r.output).toContain('SUCCESS');
  expect(r.status).toBe(0);
});

test('promtool test rules: alerts fire at the seed thresholds and not below', () => {
  const r = run(tool(promtool, 'promtool'), ['test', 'rules', path.join(REPO, 'test/receiver/fixtures/alert-rules.test.yml')]);
  expect(r.output).toContain('SUCCESS');
  expect(r.status).toBe(0);
});

test('amtool check-config config/alertmanager/alertmanager.yml', () => {
  const r = run(tool(amtool, 'amtool'), ['check-config', path.join(REPO, 'config/alertmanager/alertmanager.yml')]);
  expect(r.output).toContain('SUCCESS');
  expect(r.status).toBe(0);
});

interface RuleDoc {
  groups: Array<{ rules: Array<{ alert?: string; labels?: Record<string, string> }> }>;
}

test('every catalog alert name has a rule, and every alfred rule is labelled with its target', () => {
  const doc = parseYaml(readFileSync(RULES, 'utf8')) as RuleDoc;
  const rules = doc.groups.flatMap((g) => g.rules);
  const names = new Set(rules.map((r) => r.alert));
  const catalogAlerts = Object.values(RUNBOOKS).flatMap((r) => r.alerts.filter((a) => a.startsWith('Alfred')));
  expect(catalogAlerts.length).toBeGreaterThan(5);
  for (const name of catalogAlerts) expect(names).toContain(name);
  const alfredRules = rules.filter((r) => r.alert?.startsWith('Alfred'));
  expect(alfredRules.length).toBeGreaterThanOrEqual(catalogAlerts.length);
  expect(alfredRules.filter((r) => r.labels?.target !== 'alfred').map((r) => r.alert)).toEqual([]);
});

test('Alertmanager sends to the receiver with a bearer token file, short waits, resolved alerts too', () => {
  const am = parseYaml(readFileSync(path.join(REPO, 'config/alertmanager/alertmanager.yml'), 'utf8'));
  const hook = am.receivers[0].webhook_configs[0];
  expect(hook.url).toBe('http://127.0.0.1:8095/alerts/alertmanager');
  expect(hook.send_resolved).toBe(true);
  expect(hook.http_config.authorization).toEqual({
    type: 'Bearer',
    credentials_file: expect.stringContaining('receiver-alertmanager-token'),
  });
  expect(am.route.group_wait).toBe('1s');
});
