/**
 * The thinnest HTTP front to Temporal there can be, for the alert-storm benchmark's third row: read
 * the body, JSON.parse it, one `signalWithStart` per alert (the bare loop's call, bench/storm-call.ts), answer
 * 200. No authentication, validation, routing, logging or metrics. Whatever this process reaches on the
 * machine is the ceiling for any receiver that puts HTTP in front of Temporal there.
 *
 *   ENGINE_CONFIG=<file> TASK_QUEUE=<queue> PORT=<port> node --import tsx bench/thin-front.ts
 */
import { createServer } from 'node:http';
import { loadConfig } from '../src/config';
import { connectClient } from '../src/lib/temporal';
import { signalStormAlert } from './storm-call';

async function main(): Promise<void> {
  const engine = loadConfig(process.env.ENGINE_CONFIG as string);
  const taskQueue = process.env.TASK_QUEUE as string;
  // Encrypts as the engine's processes do (codec.secretsFile), so the comparison stays fair.
  const client = await connectClient(engine);
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString()) as { commonLabels: { target: string }; alerts: unknown[] };
      // One call per alert, as the bare loop makes them.
      Promise.all(body.alerts.map(() => signalStormAlert(client, engine, body.commonLabels.target, taskQueue))).then(
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
