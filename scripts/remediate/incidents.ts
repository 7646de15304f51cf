/** What several commands share about one incident: its id, its status, and the requests sent to it. */
// The Temporal client is loaded only by the commands that talk to Temporal (help, usage errors, login
// and whoami start without it, in about half the time): its classes are imported where they are used.
import type { Client } from '@temporalio/client';
import { decideUpdate, statusQuery, type DecisionResult, type IncidentRecord } from '../../src/workflows/contracts';
import { Failure, UsageError } from './errors';

const ID_PATTERN = /^[\w.:/-]{1,200}$/;

/** The incident id operand, checked before anything is sent. */
export function incidentId(v: string | undefined): string {
  if (!v) throw new UsageError('an incident id is required (see `remediate list`)');
  if (!ID_PATTERN.test(v)) throw new UsageError(`"${v}" is not a valid incident id`);
  return v;
}

/** The incident's record, from its status query; an unknown id is a clear failure. */
export async function status(client: Client, id: string): Promise<IncidentRecord> {
  try {
    return await client.workflow.getHandle(id).query(statusQuery);
  } catch (err) {
    const { WorkflowNotFoundError } = await import('@temporalio/client');
    if (err instanceof WorkflowNotFoundError) throw new Failure(`no incident "${id}" (see \`remediate list --all\`)`);
    throw err;
  }
}

/**
 * What approve and reject send: the step and the incident it belongs to. Who decides is not in it:
 * the codec server seals the payload with the credential's owner, and the workflow reads the seal.
 */
interface SealedDecisionRequest {
  incidentId: string;
  stepId: string;
  decision: 'approve' | 'reject';
  comment?: string;
}

/** What close and abort send; the sender is the seal's, as for decisions. */
export interface SealedCloseRequest {
  incidentId: string;
  note?: string;
  abort?: true;
  reason?: string;
}

/** The operands of approve and reject: an incident and one of its steps. */
export function decisionOperands(command: 'approve' | 'reject', operands: string[]): { id: string; stepId: string } {
  const id = incidentId(operands[0]);
  const stepId = operands[1];
  if (!stepId) throw new UsageError(`usage: remediate ${command} <incident-id> <step-id> [--comment TEXT]`);
  return { id, stepId };
}

/** Sends a decision as an update: the workflow answers with the step's state, or refuses with the reason. */
export async function decide(
  client: Client,
  decision: 'approve' | 'reject',
  target: { id: string; stepId: string },
  comment: string | undefined,
): Promise<DecisionResult> {
  const { id, stepId } = target;
  await status(client, id); // clear error for an unknown incident
  try {
    const request: SealedDecisionRequest = { incidentId: id, stepId, decision, ...(comment ? { comment } : {}) };
    return await client.workflow
      .getHandle(id)
      .executeUpdate<DecisionResult, [SealedDecisionRequest]>(decideUpdate.name, { args: [request] });
  } catch (err) {
    const { WorkflowUpdateFailedError } = await import('@temporalio/client');
    if (err instanceof WorkflowUpdateFailedError) throw new Failure(`refused: ${err.cause?.message ?? err.message}`);
    throw err;
  }
}
