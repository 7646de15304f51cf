/**
 * Routing: which runbook an alert opens, on which configured target, at which severity.
 *
 * Rules come from config/routes.yaml (first match wins), followed by one rule per alert name in the
 * runbook catalog (`RUNBOOKS[*].alerts`). A target is either fixed or read from an alert label, and
 * must name a configured target: an alert naming an unknown target is refused, never redirected to
 * some other target. An alert no rule matches is unrouted. Both are recorded by the caller.
 *
 * Besides the alert's labels, rules see two pseudo-labels: `alertname` (the alert's name) and
 * `details` (its descriptive text, see `IncomingAlert.details`), which is how an alert whose name
 * says little (`SYSTEM_ERROR`) is told apart by what it describes.
 *
 * A rule's conditions may be written three ways, all of which must hold: `match` (label equality),
 * `matchRegex` (anchored regular expressions) and `matchers`, Alertmanager's route syntax
 * (`severity=~"crit|warn"`, `env!="dev"`, `job!~"test.*"`; see matchers.ts), negative ones included.
 */
import path from 'node:path';
import { z } from 'zod';
import { ConfigError, type EngineConfig } from '../config';
import { isRunbookName, severityAtLeastSeed } from '../lib/incident-input';
import { RUNBOOKS, type RunbookName } from '../workflows/catalog';
import type { Severity } from '../workflows/contracts';
import { formatIssues, formatPath, readYamlFile, SOURCES, type SourceName } from './config';
import { compileAnchored, labelMatcher, MatcherSyntaxError, parseMatchers, type LabelMatcher } from './matchers';
import type { IncomingAlert } from './payloads';

const TargetSpecSchema = z.union([
  z.string().min(1),
  z
    .object({
      /** Label holding the target name, e.g. `target` or `service`. */
      fromLabel: z.string().min(1),
      /** Used only when the label is absent; a present but unknown value is still refused. */
      default: z.string().min(1).optional(),
    })
    .strict(),
]);
type TargetSpec = z.infer<typeof TargetSpecSchema>;

const RuleSchema = z
  .object({
    name: z.string().min(1).optional(),
    /** Only alerts from these sources; all sources when absent. */
    sources: z
      .array(z.enum(SOURCES as [SourceName, ...SourceName[]]))
      .min(1)
      .optional(),
    /** Label equality; `alertname` is the alert's name. */
    match: z.record(z.string()).default({}),
    /**
     * Label regular expressions, anchored at both ends (as in Alertmanager); a leading `(?i)`
     * makes one case-insensitive.
     */
    matchRegex: z.record(z.string()).default({}),
    /** Alertmanager matchers: `label="v"`, `label!="v"`, `label=~"re"`, `label!~"re"` (one or several per entry). */
    matchers: z.array(z.string().min(1)).default([]),
    runbook: z.string().min(1),
    target: TargetSpecSchema.optional(),
    severity: z.number().int().min(1).max(4).optional(),
    params: z.record(z.unknown()).optional(),
  })
  .strict()
  .refine((r) => Object.keys(r.match).length + Object.keys(r.matchRegex).length + r.matchers.length > 0, {
    message: 'a rule needs at least one matcher in match, matchRegex or matchers (catch-all rules would guess)',
  });

export const RoutesFileSchema = z
  .object({
    /** Target of catalog rules and of rules without their own `target`. */
    defaultTarget: TargetSpecSchema.default({ fromLabel: 'target' }),
    /** Append one rule per alert name listed in the runbook catalog. */
    catalogDefaults: z.boolean().default(true),
    rules: z.array(RuleSchema).default([]),
  })
  .strict();
export type RoutesFile = z.infer<typeof RoutesFileSchema>;
/** A routes document as written, before defaults. */
export type RoutesFileInput = z.input<typeof RoutesFileSchema>;

export interface CompiledRule {
  name: string;
  sources?: ReadonlySet<SourceName>;
  /** Every one must hold; `alertname` and `details` are the pseudo-labels. */
  matchers: readonly LabelMatcher[];
  runbook: RunbookName;
  target: TargetSpec;
  severity?: Severity;
  params?: Record<string, unknown>;
}

export interface RouteTable {
  /** Where the rules came from, for messages. */
  origin: string;
  rules: CompiledRule[];
  targets: ReadonlySet<string>;
}

export type RouteDecision =
  | {
      kind: 'routed';
      rule: string;
      runbook: RunbookName;
      target: string;
      severity: Severity;
      params?: Record<string, unknown>;
    }
  | { kind: 'unrouted'; reason: string }
  | { kind: 'refused'; rule: string; runbook: RunbookName; reason: string };

/** SEV number from a label value: `1`..`4`, `sev2`, `SEV-2`, `p2`, or critical / high / medium / low. */
export function parseSeverity(value: string | undefined): Severity | undefined {
  if (!value) return undefined;
  const v = value.trim().toLowerCase();
  const m = /^(?:sev-?|p)?([1-4])$/.exec(v);
  if (m) return Number(m[1]) as Severity;
  const words: Record<string, Severity> = { critical: 1, high: 2, error: 2, medium: 3, warning: 3, low: 4, info: 4 };
  return words[v];
}

class RoutesError extends ConfigError {}

/** The pseudo-label holding `IncomingAlert.details`; it hides a real label of that name. */
export const DETAILS_LABEL = 'details';

/** Validates a parsed routes document against the catalog and the configured targets. */
export function compileRoutes(raw: unknown, opts: { origin: string; targets: Iterable<string> }): RouteTable {
  const targets = new Set(opts.targets);
  const fail = (lines: string[]): never => {
    throw new RoutesError(`routes file ${opts.origin} is invalid:\n${lines.map((l) => `  ${l}`).join('\n')}`);
  };
  const parsed = RoutesFileSchema.safeParse(raw ?? {});
  if (!parsed.success) return fail(formatIssues(parsed.error));
  const file = parsed.data;
  const problems: string[] = [];
  const checkTarget = (spec: TargetSpec, at: Array<string | number>) => {
    const name = typeof spec === 'string' ? spec : spec.default;
    const where = typeof spec === 'string' ? at : [...at, 'default'];
    if (name !== undefined && !targets.has(name)) {
      problems.push(
        `${formatPath(where)}: unknown target "${name}"; configured: ${[...targets].join(', ') || '(none)'}`,
      );
    }
  };
  checkTarget(file.defaultTarget, ['defaultTarget']);

  const rules: CompiledRule[] = [];
  file.rules.forEach((r, i) => {
    if (!isRunbookName(r.runbook)) {
      problems.push(
        `${formatPath(['rules', i, 'runbook'])}: unknown runbook "${r.runbook}"; known: ${Object.keys(RUNBOOKS).join(', ')}`,
      );
      return;
    }
    if (r.target) checkTarget(r.target, ['rules', i, 'target']);
    const matchers: LabelMatcher[] = Object.entries(r.match).map(([label, value]) => labelMatcher(label, '=', value));
    for (const [label, source] of Object.entries(r.matchRegex)) {
      try {
        // Alertmanager's matchers are RE2, where `(?i)` switches on case folding; free text such as
        // `details` is rarely cased the same way twice (compileAnchored makes it the `i` flag).
        compileAnchored(source);
      } catch (err) {
        problems.push(`${formatPath(['rules', i, 'matchRegex', label])}: ${(err as Error).message}`);
        continue;
      }
      matchers.push(labelMatcher(label, '=~', source));
    }
    r.matchers.forEach((text, j) => {
      try {
        matchers.push(...parseMatchers(text));
      } catch (err) {
        if (!(err instanceof MatcherSyntaxError)) throw err;
        problems.push(`${formatPath(['rules', i, 'matchers', j])}: ${err.message}`);
      }
    });
    if (matchers.length > 0 && !matchers.some((m) => m.positive)) {
      problems.push(
        `${formatPath(['rules', i])}: a rule needs at least one positive matcher (=, =~, match or matchRegex); ` +
          'negative matchers alone match almost every alert',
      );
    }
    rules.push({
      name: r.name ?? `rules[${i}]`,
      ...(r.sources ? { sources: new Set(r.sources) } : {}),
      matchers,
      runbook: r.runbook,
      target: r.target ?? file.defaultTarget,
      ...(r.severity ? { severity: r.severity as Severity } : {}),
      ...(r.params ? { params: r.params } : {}),
    });
  });
  if (problems.length) fail(problems);

  if (file.catalogDefaults) {
    for (const [runbook, meta] of Object.entries(RUNBOOKS) as Array<[RunbookName, (typeof RUNBOOKS)[RunbookName]]>) {
      for (const alertname of meta.alerts) {
        rules.push({
          name: `catalog:${runbook}`,
          matchers: [labelMatcher('alertname', '=', alertname)],
          runbook,
          target: file.defaultTarget,
        });
      }
    }
  }
  return { origin: opts.origin, rules, targets };
}

/** Loads config/routes.yaml (or `file`); every problem names the file and the path in it. */
export function loadRoutes(file: string, engine: EngineConfig, env: NodeJS.ProcessEnv = process.env): RouteTable {
  return compileRoutes(readYamlFile(file, env), { origin: path.resolve(file), targets: Object.keys(engine.targets) });
}

function matches(rule: CompiledRule, alert: IncomingAlert, labels: Record<string, string>): boolean {
  if (rule.sources && !rule.sources.has(alert.source)) return false;
  // A label the alert lacks is "" (as in Alertmanager), so `env!="dev"` holds for an alert without env.
  return rule.matchers.every((m) => m.test(labels[m.label] ?? ''));
}

/** First matching rule wins; its target is resolved against the configured targets only. */
export function routeAlert(table: RouteTable, alert: IncomingAlert): RouteDecision {
  const labels: Record<string, string> = {
    ...alert.labels,
    [DETAILS_LABEL]: alert.details ?? '',
    alertname: alert.name,
  };
  const rule = table.rules.find((r) => matches(r, alert, labels));
  if (!rule) return { kind: 'unrouted', reason: `no route matches alert "${alert.name}"` };

  let target: string | undefined;
  if (typeof rule.target === 'string') {
    target = rule.target;
  } else {
    const fromLabel = labels[rule.target.fromLabel];
    if (fromLabel !== undefined && fromLabel !== '') {
      target = fromLabel;
    } else if (rule.target.default) {
      target = rule.target.default;
    } else {
      return {
        kind: 'refused',
        rule: rule.name,
        runbook: rule.runbook,
        reason: `alert has no "${rule.target.fromLabel}" label naming a target, and route ${rule.name} has no default`,
      };
    }
  }
  if (!table.targets.has(target)) {
    return {
      kind: 'refused',
      rule: rule.name,
      runbook: rule.runbook,
      reason: `unknown target "${target}"; configured: ${[...table.targets].join(', ')}`,
    };
  }
  // A route's severity is configuration (seed 001's "High alert" for the pool, say); an alert's own
  // label may raise the seed's severity, never lower it.
  const severity = rule.severity ?? severityAtLeastSeed(rule.runbook, parseSeverity(labels.severity));
  return {
    kind: 'routed',
    rule: rule.name,
    runbook: rule.runbook,
    target,
    severity,
    ...(rule.params ? { params: rule.params } : {}),
  };
}
