/**
 * The one Temporal call per alert that the alert-storm benchmark's bare loop and its thinnest HTTP
 * front both make, so the two differ by the HTTP hop and nothing else.
 */
import type { Client } from '@temporalio/client';
import type { EngineConfig } from '../src/config';
import { buildIncidentInput } from '../src/lib/incident-input';
import { alertSignal, incidentWorkflowId } from '../src/workflows/contracts';

export async function signalStormAlert(client: Client, engine: EngineConfig, target: string, taskQueue: string): Promise<void> {
  const { runbook, input } = buildIncidentInput(engine, { runbook: 'cacheFailure', target, requestedBy: 'alertmanager' });
  await client.workflow.signalWithStart(runbook, {
    workflowId: incidentWorkflowId(runbook, target),
    taskQueue,
    args: [input],
    signal: alertSignal,
    signalArgs: [{ source: 'alertmanager', name: 'BenchStorm', status: 'firing', receivedAt: new Date().toISOString() }],
  });
}
