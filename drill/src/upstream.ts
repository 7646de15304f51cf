/**
 * The upstream providers' own endpoints, as the gateway would reach them over the internet
 * (`GET https://api.openai.com/v1/models`). Here they are served by the api itself under
 * /upstream/<provider>/v1/models and answer 502 while the 'provider-errors' fault lists the
 * provider, so an egress probe sees what the gateway sees.
 */
import type { DrillFaults } from './drill-hooks';
import { HttpError, type Router } from './http';
import { PROVIDERS, type Provider } from './metrics';

const MODELS: Record<Provider, string[]> = {
  openai: ['gpt-4o', 'gpt-4o-mini'],
  anthropic: ['claude-3-5-sonnet', 'claude-3-haiku'],
  google: ['gemini-1.5-pro', 'gemini-1.5-flash'],
};

export function registerUpstream(r: Router, faults: DrillFaults): void {
  r.on('GET', '/upstream/:provider/v1/models', async (ctx) => {
    const provider = ctx.params.provider as Provider;
    if (!PROVIDERS.includes(provider)) throw new HttpError(404, 'unknown provider');
    if (faults.failingProviders()?.providers.includes(provider)) throw new HttpError(502, `${provider} upstream unavailable`);
    return { object: 'list', data: MODELS[provider].map((id) => ({ id, object: 'model', owned_by: provider })) };
  });
}
