import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { normaliseHistory, renderPostmortem } from '../../../src/postmortem';
import { defineCommand } from '../command';
import { Failure, UsageError } from '../errors';
import { incidentId } from '../incidents';
import { stackDir, userPath } from '../paths';

export default defineCommand({
  name: 'postmortem',
  summary: "the post-mortem, written from the incident's event history",
  usage: '<incident-id> [--out FILE]',
  description: 'Prints the post-mortem and keeps a copy in $STACK_DIR/postmortems/<incident-id>.md.',
  operands: [{ name: 'incident-id' }],
  options: {
    out: {
      type: 'string',
      value: 'FILE',
      complete: 'file',
      help: 'also write it to FILE (relative to where you run it)',
    },
  },
  needs: 'client',
  prepare(ctx) {
    const id = incidentId(ctx.operands[0]);
    const outFile = ctx.opts.out === undefined ? undefined : userPath(ctx.opts.out);
    return async ({ client, codecs }) => {
      // Loaded once the command runs (see incidents.ts): the session has loaded the client already.
      const [{ WorkflowNotFoundError }, { temporal }, { decodeHistoryPayloads }] = await Promise.all([
        import('@temporalio/client'),
        import('@temporalio/proto'),
        import('../../../src/lib/history'),
      ]);
      // The history is all it needs: no worker has to answer a query for a closed incident.
      const fetched = await client.workflow
        .getHandle(id)
        .fetchHistory()
        .catch((err: unknown) => {
          if (err instanceof WorkflowNotFoundError || /not found/i.test(String((err as Error).message)))
            throw new Failure(`no incident "${id}" (see \`remediate list --all\`)`);
          throw err;
        });
      // Temporal holds the payloads encrypted: the codec server decrypts them for the report.
      const history = await decodeHistoryPayloads(fetched, codecs);
      const md = renderPostmortem(
        normaliseHistory(history as { events?: unknown[] }, (n) =>
          String(temporal.api.enums.v1.EventType[n] ?? n).replace(/^EVENT_TYPE_/, ''),
        ),
      );
      const stored = path.join(stackDir(), 'postmortems', `${id}.md`);
      mkdirSync(path.dirname(stored), { recursive: true });
      writeFileSync(stored, md);
      if (outFile) {
        try {
          writeFileSync(outFile, md);
        } catch (err) {
          throw new UsageError(
            `--out ${outFile}: cannot write it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
          );
        }
      }
      ctx.print({ incidentId: id, stored, ...(outFile ? { out: outFile } : {}), markdown: md }, md);
      return 0;
    };
  },
});
