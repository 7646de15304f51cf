/**
 * One runbook shape: metadata declared once beside the code, a pure decision naming its steps by
 * typed id, steps built from that metadata, and plan tests named the same way for every runbook.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { RUNBOOKS, type RunbookName } from '../../src/workflows/catalog';
import { buildSteps, type StepWork } from '../../src/workflows/kernel';
import { defineRunbook, stepIdOf, stepIds, type StepRef } from '../../src/workflows/shape';

const ROOT = join(__dirname, '..', '..');
const kebab = (name: string): string => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
const pascal = (name: string): string => name.charAt(0).toUpperCase() + name.slice(1);
const NAMES = Object.keys(RUNBOOKS) as RunbookName[];

const demo = defineRunbook({
  name: 'demo',
  scenario: 'DEMO',
  title: 'Demo',
  severity: 3,
  source: 'test',
  alerts: [],
  diagnostics: [],
  steps: [
    { id: 'restart-api', title: 'Restart the api', risk: 'auto' },
    { id: 'recreate-<service>', title: 'Recreate each service, one at a time', risk: 'approve', rollout: true },
    { id: 'align-<secret>-<component>', title: 'Align a secret', risk: 'approve' },
    { id: 'restore-backup', title: 'Restore the latest dump', risk: 'two-person' },
  ],
  verify: 'nothing',
});
type DemoStep = (typeof demo)['steps'][number]['id'];

const work = (resource: string): StepWork<'restart-api'> => ({ resource, describe: resource, run: async () => resource });

describe('buildSteps', () => {
  const build = {
    'restart-api': () => work('api'),
    'recreate-<service>': ({ args }: { args: { service: string } }) => ({ ...work(args.service), title: `Recreate ${args.service}` }),
    'align-<secret>-<component>': ({ args }: { args: { secret: string; component: string } }) => ({ ...work(args.component), title: `Align ${args.secret} in ${args.component}` }),
    'restore-backup': () => work('db'),
  };

  it('takes each step\'s title and risk from the metadata, never from the code that builds it', () => {
    const steps = buildSteps(demo, ['restart-api', 'restore-backup'], build);
    expect(steps.map((s) => [s.id, s.title, s.risk, s.resource])).toEqual([
      ['restart-api', 'Restart the api', 'auto', 'api'],
      ['restore-backup', 'Restore the latest dump', 'two-person', 'db'],
    ]);
  });

  it('fills a family\'s placeholders into its id; the first instance of a rollout takes its risk, later ones run under it', () => {
    const refs: StepRef<DemoStep>[] = [
      { id: 'recreate-<service>', args: { service: 'api' } },
      { id: 'recreate-<service>', args: { service: 'worker' } },
      { id: 'align-<secret>-<component>', args: { secret: 'jwt-secret', component: 'worker' } },
      { id: 'align-<secret>-<component>', args: { secret: 'jwt-secret', component: 'api' } },
    ];
    const steps = buildSteps(demo, refs, build);
    expect(steps.map((s) => [s.id, s.title, s.risk])).toEqual([
      ['recreate-api', 'Recreate api', 'approve'],
      ['recreate-worker', 'Recreate worker', 'auto'],
      // Not a rollout: every instance asks for its own approval.
      ['align-jwt-secret-worker', 'Align jwt-secret in worker', 'approve'],
      ['align-jwt-secret-api', 'Align jwt-secret in api', 'approve'],
    ]);
  });

  it('names the ids a decision chose', () => {
    expect(stepIdOf('restart-api')).toBe('restart-api');
    expect(stepIds({ steps: ['restart-api', { id: 'recreate-<service>', args: { service: 'db' } }] })).toEqual(['restart-api', 'recreate-db']);
  });
});

describe('every runbook has the one shape', () => {
  it.each(NAMES)('%s: metadata declared beside its code, and the catalog is that metadata', (name) => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const mod = require(join(ROOT, 'src', 'workflows', kebab(name))) as Record<string, unknown>;
    expect(mod.meta).toBe(RUNBOOKS[name]);
    expect(RUNBOOKS[name].name).toBe(name);
    expect(typeof mod[name]).toBe('function');
  });

  it.each(NAMES)('%s: a pure decision plan<Name> and a plan test named <file>.plan.test.ts', (name) => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const mod = require(join(ROOT, 'src', 'workflows', kebab(name))) as Record<string, unknown>;
    expect(typeof mod[`plan${pascal(name)}`]).toBe('function');
    const testFile = join(ROOT, 'test', 'workflows', `${kebab(name)}.plan.test.ts`);
    expect(existsSync(testFile)).toBe(true);
    const text = readFileSync(testFile, 'utf8');
    expect(text).toContain(`describe('${name} plan'`);
    expect(text).toContain(`plan${pascal(name)}(`);
  });

  it.each(NAMES)('%s: step ids unique, placeholders well formed, steps built from the metadata without casts', (name) => {
    const ids = RUNBOOKS[name].steps.map((s) => s.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids) expect(id).toMatch(/^[a-z0-9]+(?:-(?:[a-z0-9]+|<[a-zA-Z]+>))*$/);
    const src = readFileSync(join(ROOT, 'src', 'workflows', `${kebab(name)}.ts`), 'utf8');
    expect(src).not.toMatch(/as Step\b/);
    expect(src.includes('buildSteps(meta,')).toBe(ids.length > 0);
  });
});
