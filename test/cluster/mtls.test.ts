/**
 * The cluster profile runs incidents: the engine, configured only through the variables
 * scripts/cluster.sh writes (config/engine.yaml's temporal.tls), reaches the frontend with its client
 * certificate, and a real INC-05 runs on the drill: Redis killed, restarted by the runbook, verified.
 * The incident lands in the cluster's SQL visibility on PostgreSQL under the engine's search
 * attributes, and the cluster's Web UI lists it. A client without a certificate of the cluster's
 * CA is refused by the frontend.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { makeSelfSignedCertificate } from '../../src/activities/tls/self-signed';
import { drillContainer, startEngine, waitUntil, type Engine } from '../helpers/engine';
import { redisUp } from '../helpers/drill';
import {
  CLUSTER_TLS,
  CLUSTER_UI_URL,
  CLUSTER_UP_TIMEOUT_MS,
  clusterTemporal,
  clusterUp,
  onCluster,
} from '../helpers/cluster';

jest.setTimeout(180_000);

let engine: Engine;

beforeAll(async () => {
  const ms = await clusterUp();
  console.log(`cluster profile up (scripts/cluster.sh up) in ${ms} ms`);
  engine = await startEngine({ configure: onCluster });
}, CLUSTER_UP_TIMEOUT_MS);

afterAll(async () => {
  if (!engine) return;
  const c = await drillContainer(engine.docker, 'redis');
  if (!(await c.inspect()).State.Running) await c.start();
  await waitUntil('redis back', redisUp);
  await engine.stop();
});

test('config/engine.yaml with the variables the cluster profile writes is mTLS to the cluster frontend', () => {
  const t = clusterTemporal();
  expect(t.address).toBe(engine.config.temporal.address);
  expect(t.address).not.toBe('127.0.0.1:7233');
  expect(t.tls).toMatchObject({
    serverName: expect.any(String),
    serverCaCert: { file: path.join(CLUSTER_TLS, 'ca.crt') },
    clientCert: { file: path.join(CLUSTER_TLS, 'engine.crt') },
    clientKey: { file: path.join(CLUSTER_TLS, 'engine.key') },
  });
});

test('INC-05 on the cluster: a killed redis is restarted by the runbook and verified; visible by search attribute', async () => {
  const c = await drillContainer(engine.docker, 'redis');
  await c.kill();
  await waitUntil('redis down', async () => !(await redisUp()));

  const h = await engine.start({ runbook: 'cacheFailure', target: 'alfred', requestedBy: 'alertmanager' });
  const rec = await engine.result(h);
  expect(rec.outcome).toBe('resolved');
  expect(rec.actions).toEqual([expect.objectContaining({ stepId: 'restart-redis', state: 'done' })]);
  expect(rec.timeline.some((t) => /verification passed: PING PONG/.test(t.event))).toBe(true);
  expect((await c.inspect()).State.Running).toBe(true);

  // The cluster's visibility store (PostgreSQL) finds it by the engine's own search attributes.
  const query = `WorkflowId = '${h.workflowId}' AND IncidentRunbook = 'cacheFailure' AND IncidentTarget = 'alfred'`;
  let found: string[] = [];
  await waitUntil('the incident in the cluster visibility', async () => {
    found = [];
    for await (const wf of engine.client.workflow.list({ query })) found.push(`${wf.workflowId}:${wf.status.name}`);
    return found.length === 1 && found[0] === `${h.workflowId}:COMPLETED`;
  });
  expect(found).toEqual([`${h.workflowId}:COMPLETED`]);
  // ...and the run is on the cluster, not on the dev server.
  expect((await h.describe()).raw.workflowExecutionInfo?.taskQueue).toBe(engine.taskQueue);
  // The cluster's Web UI reaches it too, through its own client certificate.
  const ui = await fetch(
    `${CLUSTER_UI_URL}/api/v1/namespaces/default/workflows?query=${encodeURIComponent(`WorkflowId = '${h.workflowId}'`)}`,
  );
  expect(ui.status).toBe(200);
  const listed = (await ui.json()) as { executions?: { execution?: { workflowId?: string } }[] };
  expect(listed.executions?.map((e) => e.execution?.workflowId)).toEqual([h.workflowId]);
});

describe('the frontend refuses clients without a certificate of the cluster CA', () => {
  const file = (name: string) => readFileSync(path.join(CLUSTER_TLS, name));
  const frontend = () => {
    const { address, tls } = clusterTemporal();
    const [host = '', port = ''] = address.split(':');
    return { address, host, port: Number(port), serverName: typeof tls === 'object' ? (tls.serverName ?? '') : '' };
  };

  /**
   * A TLS handshake with the frontend as a gRPC client makes it (ALPN h2), verifying the frontend
   * against the cluster CA: the frontend's alert when it refuses the client (TLS 1.3 refuses after
   * the client's Finished, so the alert is read after `secureConnect`), or `accepted`.
   */
  function handshake(client: { cert?: Buffer | string; key?: Buffer | string }): Promise<string> {
    const { host, port, serverName } = frontend();
    return new Promise((resolve) => {
      const s = tls.connect({
        host,
        port,
        servername: serverName,
        ca: file('ca.crt'),
        ALPNProtocols: ['h2'],
        ...client,
      });
      let timer: NodeJS.Timeout | undefined;
      s.on('secureConnect', () => {
        timer = setTimeout(() => {
          s.destroy();
          resolve(`accepted (${String(s.alpnProtocol)})`);
        }, 1500);
      });
      s.on('data', () => undefined);
      s.on('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        s.destroy();
        resolve(err.code ?? err.message);
      });
    });
  }

  test('without a client certificate: the frontend alerts "certificate required"; the SDK clients cannot connect', async () => {
    expect(await handshake({})).toBe('ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED');
    const { address, serverName } = frontend();
    const opts = { address, tls: { serverNameOverride: serverName, serverRootCACertificate: file('ca.crt') } };
    await expect(Connection.connect({ ...opts, connectTimeout: 2_000 })).rejects.toThrow(
      /Failed to connect before the deadline/,
    );
    await expect(NativeConnection.connect(opts)).rejects.toThrow(
      /Failed to call GetSystemInfo: .*tonic::transport::Error\(Transport/,
    );
  });

  test('a certificate of another CA is refused, and so is one not made for clients; the engine certificate is served', async () => {
    const stranger = await makeSelfSignedCertificate({ subject: [['CN', 'remediation-engine']], days: 1 });
    expect(await handshake({ cert: stranger.cert, key: stranger.key })).toBe('ERR_SSL_TLSV1_ALERT_UNKNOWN_CA');
    // The frontend's own certificate is the CA's too, but for servers only (extendedKeyUsage serverAuth).
    expect(await handshake({ cert: file('frontend.crt'), key: file('frontend.key') })).toBe(
      'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE',
    );
    expect(await handshake({ cert: file('engine.crt'), key: file('engine.key') })).toBe('accepted (h2)');

    const { address, serverName } = frontend();
    const ok = await Connection.connect({
      address,
      tls: {
        serverNameOverride: serverName,
        serverRootCACertificate: file('ca.crt'),
        clientCertPair: { crt: file('engine.crt'), key: file('engine.key') },
      },
    });
    try {
      expect((await ok.workflowService.getSystemInfo({})).serverVersion).toBe('1.29.1');
    } finally {
      await ok.close();
    }
  });
});
