/**
 * The thinnest HTTP front to Temporal there can be, for the alert-storm benchmark's third row: read
 * the body, JSON.parse it, one `signalWithStart` (the same call as the bare loop), answer 200. No
 * authentication, validation, routing, logging or metrics. Whatever this process reaches on the
 * machine is the ceiling for any receiver that puts HTTP in front of Temporal there.
 *
 *   ENGINE_CONFIG=<file> TASK_QUEUE=<queue> PORT=<port> node --import tsx bench/thin-front.ts
 */
import { createServer } from 'node:http';
import { Client, Connection } from '@temporalio/client';
import { loadConfig } from '../src/config';
import { buildIncidentInput } from '../src/lib/incident-input';
import { alertSignal, incidentWorkflowId } from '../src/workflows/contracts';

async function main(): Promise<void> {
  const engine = loadConfig(process.env.ENGINE_CONFIG as string);
  const taskQueue = process.env.TASK_QUEUE as string;
  const client = new Client({ connection: await Connection.connect({ address: engine.temporal.address }) });
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString()) as { commonLabels: { target: string } };
      const { runbook, input } = buildIncidentInput(engine, { runbook: 'cacheFailure', target: body.commonLabels.target, requestedBy: 'alertmanager' });
      client.workflow
        .signalWithStart(runbook, {
          workflowId: incidentWorkflowId(runbook, body.commonLabels.target),
          taskQueue,
          args: [input],
          signal: alertSignal,
          signalArgs: [{ source: 'alertmanager', name: 'BenchStorm', status: 'firing', receivedAt: new Date().toISOString() }],
        })
        .then(
          () => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'),
          (err: Error) => res.writeHead(503).end(err.message),
        );
    });
  });
  server.listen(Number(process.env.PORT), '127.0.0.1', () => console.log('thin front listening'));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
