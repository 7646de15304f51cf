/**
 * The policy an incident runs under, from this worker's configuration (src/lib/policy.ts). An
 * activity so that the answer is recorded in the incident's history: a replay, or a worker with
 * another configuration picking the incident up, holds to the policy it started with.
 */
import { resolvePolicy, type PolicyScope } from '../../lib/policy';
import type { IncidentPolicy } from '../../workflows/contracts';
import type { ActivityDeps } from './deps';
import { ErrorType, permanent } from './errors';

export function createPolicyActivities(deps: ActivityDeps) {
  async function incidentPolicy(scope: PolicyScope): Promise<IncidentPolicy & { overrides: number[] }> {
    if (!Object.prototype.hasOwnProperty.call(deps.config.targets, scope.target)) {
      throw permanent(ErrorType.UnknownTarget, `unknown target "${scope.target}"`);
    }
    return resolvePolicy(deps.config, scope);
  }
  return { incidentPolicy };
}
