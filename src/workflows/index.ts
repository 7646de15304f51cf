/** Workflow functions only: this module is the worker's workflowsPath. */
export { cacheFailure } from './cache-failure';
export { databaseUnreachable } from './database-unreachable';
export { rollback } from './rollback';
export { targetGuard } from './target-guard';
