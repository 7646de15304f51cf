/**
 * The patch under which runbooks read the target's HTTP answers through activities that resolve the
 * target's API settings (`targets.<name>.api`), instead of naming paths and fields themselves.
 * Incidents recorded before it replay their old calls: `patched()` is false there.
 */
import { patched } from '@temporalio/workflow';

export const TARGET_API_SETTINGS = 'target-api-settings';

/** True in incidents that read the target's answers through the API settings. */
export function readsTargetApiSettings(): boolean {
  return patched(TARGET_API_SETTINGS);
}
