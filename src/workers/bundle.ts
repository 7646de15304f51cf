/**
 * How the engine's workflow code is bundled, in one place: the worker, the production bundle, the
 * tests and the benchmarks all load the same thing.
 *
 * The whole workflow module tree is preloaded into the worker's shared V8 context. Without that, the
 * SDK evaluates every module of the bundle (all runbooks, the kernel, the catalog) again for each
 * workflow it keeps in its cache, so each waiting incident carries its own copy of all the code's
 * module-level objects. Preloading is safe here because no workflow module keeps state at module level:
 * every incident's state lives inside its `runIncident` call. The SDK deep-freezes preloaded modules,
 * so a module-level mutation would fail loudly in every test, not leak between incidents.
 */
import type { BundleOptions } from '@temporalio/worker';

export const WORKFLOWS_PATH = require.resolve('../workflows');
/** Failures raised in workflow code are encoded like the activities' (src/lib/codec/failure-converter.ts). */
export const FAILURE_CONVERTER_PATH = require.resolve('../lib/codec/failure-converter');

export function workflowBundleOptions(): Pick<BundleOptions, 'workflowsPath' | 'preloadModules' | 'failureConverterPath'> {
  return { workflowsPath: WORKFLOWS_PATH, preloadModules: [WORKFLOWS_PATH], failureConverterPath: FAILURE_CONVERTER_PATH };
}
