/**
 * Per-target thresholds (`thresholds.*`, `limits.*`, ... in TargetSchema), read from a result the
 * runbook already gets. A result recorded before a threshold became a setting lacks it: the incident
 * then replays with the value the code had, which is also the setting's default.
 */
export function setting(value: number | undefined, recordedDefault: number): number {
  return typeof value === 'number' && Number.isFinite(value) ? value : recordedDefault;
}
