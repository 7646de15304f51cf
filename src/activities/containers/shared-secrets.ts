/**
 * Secrets that must match across services (seed 004: "ensure JWT_SECRET matches across API and web
 * apps"), compared from the containers' environment (Docker inspect). A value never leaves these
 * functions: results say only whether values are equal, plus a short fingerprint (an HMAC under a key
 * that lives and dies with this process) so a report can show which values agree without revealing any.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type Docker from 'dockerode';
import type { ActivityDeps } from '../engine/deps';
import { targetConfig } from '../engine/deps';
import { createDockerActivities, type ActionOutcome } from './docker';
import { ErrorType, permanent } from '../engine/errors';
import { inspectComponent as inspectOwn } from './containers';

export interface SecretHolder {
  component: string;
  running: boolean;
  present: boolean;
  /** Equal to the reference's value (false when either is missing). */
  matches: boolean;
  /** First 8 hex digits of an HMAC keyed per process: equal values, equal fingerprints. */
  fingerprint: string | null;
}

export interface SecretComparison {
  env: string;
  reference: SecretHolder;
  others: SecretHolder[];
}


export function createSharedSecretActivities(deps: ActivityDeps) {
  const docker = createDockerActivities(deps);
  // Fingerprints are comparable within one worker process only; that is all a report needs.
  const fingerprintKey = randomBytes(32);

  const fingerprint = (value: string): string => createHmac('sha256', fingerprintKey).update(value).digest('hex').slice(0, 8);
  const digest = (value: string): Buffer => createHash('sha256').update(value).digest();

  function rules(target: string) {
    const t = targetConfig(deps, target);
    for (const r of t.support.sharedSecrets) {
      for (const c of [r.reference, ...r.components]) {
        if (!t.components.includes(c)) throw permanent(ErrorType.NotConfigured, `shared secret ${r.env}: "${c}" is not a component of ${target}`);
      }
    }
    return t.support.sharedSecrets;
  }

  const inspectComponent = (target: string, component: string): Promise<Docker.ContainerInspectInfo> => inspectOwn(deps, target, component);

  function envValue(info: Docker.ContainerInspectInfo, name: string): string | undefined {
    const entry = (info.Config.Env ?? []).find((kv) => kv.startsWith(`${name}=`));
    return entry === undefined ? undefined : entry.slice(name.length + 1);
  }

  function holder(component: string, info: Docker.ContainerInspectInfo, value: string | undefined, ref: string | undefined): SecretHolder {
    const matches = value !== undefined && ref !== undefined && timingSafeEqual(digest(value), digest(ref));
    return { component, running: info.State.Running, present: value !== undefined, matches, fingerprint: value === undefined ? null : fingerprint(value) };
  }

  /** Every configured shared secret: does each component hold the reference's value? */
  async function compareSharedSecrets(input: { target: string }): Promise<{ comparisons: SecretComparison[] }> {
    const comparisons: SecretComparison[] = [];
    for (const r of rules(input.target)) {
      const refInfo = await inspectComponent(input.target, r.reference);
      const ref = envValue(refInfo, r.env);
      const others: SecretHolder[] = [];
      for (const c of r.components) {
        const info = await inspectComponent(input.target, c);
        others.push(holder(c, info, envValue(info, r.env), ref));
      }
      comparisons.push({ env: r.env, reference: holder(r.reference, refInfo, ref, ref), others });
    }
    return { comparisons };
  }

  /**
   * Recreates `component` with the reference component's value of `env`. The value moves from one
   * container's configuration to the other inside this function only. Idempotent: equal values are left alone.
   */
  async function alignSharedSecret(input: { target: string; env: string; component: string }): Promise<ActionOutcome> {
    const rule = rules(input.target).find((r) => r.env === input.env && r.components.includes(input.component));
    if (!rule) throw permanent(ErrorType.BadInput, `${input.env} is not a shared secret of "${input.component}" on ${input.target}`);
    const ref = envValue(await inspectComponent(input.target, rule.reference), rule.env);
    if (ref === undefined) throw permanent(ErrorType.Refused, `${rule.reference} has no ${rule.env}: nothing to align ${input.component} to`);
    const current = envValue(await inspectComponent(input.target, input.component), rule.env);
    if (current !== undefined && timingSafeEqual(digest(current), digest(ref))) {
      return { performed: false, detail: `${input.component} already holds ${rule.reference}'s ${rule.env}` };
    }
    const r = await docker.recreateContainer({ target: input.target, component: input.component, env: { [rule.env]: ref } });
    const after = envValue(await inspectComponent(input.target, input.component), rule.env);
    if (after === undefined || !timingSafeEqual(digest(after), digest(ref))) {
      throw new Error(`${input.component} was recreated but its ${rule.env} still differs from ${rule.reference}'s`);
    }
    return { performed: true, detail: `${r.detail}; ${rule.env} now equals ${rule.reference}'s (fingerprint ${fingerprint(ref)})` };
  }

  return { compareSharedSecrets, alignSharedSecret };
}
