import { RUNBOOKS } from '../../../src/workflows/catalog';
import { defineCommand } from '../command';
import { UsageError } from '../errors';
import { renderRows, type IncidentRow } from '../render';

export default defineCommand({
  name: 'list',
  summary: 'open incidents (--all: closed ones too)',
  usage: '[--all] [--runbook R] [--target T]',
  options: {
    all: { type: 'boolean', help: 'closed incidents too' },
    runbook: { type: 'string', value: 'R', complete: Object.keys(RUNBOOKS), help: "only this runbook's incidents" },
    target: { type: 'string', value: 'T', help: "only this target's incidents" },
  },
  maxOperands: 0,
  needs: 'client',
  prepare(ctx) {
    const { opts } = ctx;
    // Names only (a target name is [a-z0-9-]+, a runbook one of the catalog's): nothing else reaches the query.
    if (opts.runbook !== undefined && !/^[A-Za-z]{1,60}$/.test(opts.runbook))
      throw new UsageError(`--runbook: not a runbook name: ${JSON.stringify(opts.runbook.slice(0, 60))}`);
    if (opts.target !== undefined && !/^[a-z0-9-]{1,100}$/.test(opts.target))
      throw new UsageError(`--target: not a target name (a-z, 0-9, -): ${JSON.stringify(opts.target.slice(0, 60))}`);
    const clauses = ["IncidentRunbook != ''"];
    if (!opts.all) clauses.push("ExecutionStatus = 'Running'");
    if (opts.runbook) clauses.push(`IncidentRunbook = '${opts.runbook}'`);
    if (opts.target) clauses.push(`IncidentTarget = '${opts.target}'`);
    return async ({ client }) => {
      const rows: IncidentRow[] = [];
      for await (const wf of client.workflow.list({ query: clauses.join(' AND ') })) {
        const sa = wf.searchAttributes as Record<string, unknown[] | undefined>;
        rows.push({
          id: wf.workflowId,
          status: wf.status.name,
          runbook: String(sa.IncidentRunbook?.[0] ?? wf.type),
          target: String(sa.IncidentTarget?.[0] ?? ''),
          phase: String(sa.IncidentPhase?.[0] ?? ''),
          severity: Number(sa.IncidentSeverity?.[0] ?? 0),
          started: wf.startTime.toISOString(),
        });
        if (rows.length >= 200) break;
      }
      ctx.print(rows, renderRows(rows, opts.all ?? false));
      return 0;
    };
  },
});
