/**
 * PagerDuty's REST API (v2): acknowledges the PagerDuty incident an alert came from. Seed 002, "First
 * 5 Minutes": "Acknowledge the PagerDuty alert within 2 minutes". Only the documented call is used:
 * `PUT /incidents/{id}` with `{"incident": {"type": "incident_reference", "status": "acknowledged"}}`,
 * an API key in `Authorization: Token token=...`, the acting user's email in `From`.
 */
import { readSecret } from '../../config';
import type { ActivityDeps } from './deps';
import { ErrorType, permanent } from './errors';

export interface PagerDutyAck {
  acknowledged: boolean;
  detail: string;
}

export function createPagerDutyActivities(deps: ActivityDeps) {
  const doFetch = deps.fetch ?? fetch;

  /**
   * Idempotent: acknowledging an acknowledged incident changes nothing. A resolved one stays resolved
   * (PagerDuty refuses to move it back) and is reported as such, not as a failure.
   */
  async function acknowledgePagerDuty(req: { pagerdutyIncidentId: string }): Promise<PagerDutyAck> {
    const pd = deps.config.notify.pagerduty;
    const id = req.pagerdutyIncidentId;
    if (!pd) return { acknowledged: false, detail: `PagerDuty incident ${id} not acknowledged: notify.pagerduty is not configured` };
    if (!/^[A-Za-z0-9]+$/.test(id)) throw permanent(ErrorType.BadInput, `not a PagerDuty incident id: ${JSON.stringify(id.slice(0, 40))}`);
    const token = readSecret(pd.token);
    if (!token) throw permanent(ErrorType.NotConfigured, 'the PagerDuty API key (notify.pagerduty.token) is empty');
    let res: Response;
    try {
      res = await doFetch(`${pd.apiUrl.replace(/\/$/, '')}/incidents/${id}`, {
        method: 'PUT',
        headers: {
          accept: 'application/vnd.pagerduty+json;version=2',
          'content-type': 'application/json',
          authorization: `Token token=${token}`,
          from: pd.from,
        },
        body: JSON.stringify({ incident: { type: 'incident_reference', status: 'acknowledged' } }),
        signal: AbortSignal.timeout(pd.timeoutMs),
      });
    } catch (err) {
      throw new Error(`PagerDuty: ${(err as Error).name === 'TimeoutError' ? `no answer in ${pd.timeoutMs} ms` : 'connection failed'}`);
    }
    const body = (await res.json().catch(() => undefined)) as
      | { incident?: { status?: unknown; incident_number?: unknown }; error?: { message?: unknown; code?: unknown; errors?: unknown } }
      | undefined;
    if (res.ok) {
      const status = body?.incident?.status;
      if (typeof status !== 'string') throw new Error(`PagerDuty answered ${res.status} without incident.status`);
      const n = typeof body?.incident?.incident_number === 'number' ? ` (#${body.incident.incident_number})` : '';
      if (status === 'acknowledged') return { acknowledged: true, detail: `PagerDuty incident ${id}${n} acknowledged` };
      return { acknowledged: false, detail: `PagerDuty incident ${id}${n} is ${status}` };
    }
    const e = body?.error;
    const why = [typeof e?.message === 'string' ? e.message : `HTTP ${res.status}`, Array.isArray(e?.errors) ? e.errors.filter((x) => typeof x === 'string').join('; ') : '']
      .filter(Boolean)
      .join(': ');
    // Rate limits and PagerDuty's own failures pass; a refusal (bad key, unknown incident) does not.
    if (res.status === 429 || res.status >= 500) throw new Error(`PagerDuty: ${why}`);
    throw permanent(ErrorType.Refused, `PagerDuty refused to acknowledge incident ${id}: ${why}`);
  }

  return { acknowledgePagerDuty };
}
