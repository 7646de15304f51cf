/** Local stand-ins for the upstream LLM providers: deterministic answers, breakable by a drill fault. */
import type { Provider } from './metrics';
import { sleep } from './db';

export function providerForModel(model: string): Provider | undefined {
  if (model.startsWith('gpt-') || model.startsWith('o1') || model.startsWith('o3')) return 'openai';
  if (model.startsWith('claude-')) return 'anthropic';
  if (model.startsWith('gemini-')) return 'google';
  return undefined;
}

/** Answers simple arithmetic ("What is 2+2?" → "4"); echoes anything else. */
export function fakeAnswer(prompt: string): string {
  const m = /(-?\d+(?:\.\d+)?)\s*([+\-*/x×])\s*(-?\d+(?:\.\d+)?)/.exec(prompt);
  if (m) {
    const a = Number(m[1]);
    const b = Number(m[3]);
    const op = m[2];
    const r = op === '+' ? a + b : op === '-' ? a - b : op === '/' ? (b === 0 ? NaN : a / b) : a * b;
    if (Number.isFinite(r)) return String(Math.round(r * 1e6) / 1e6);
  }
  if (/^\s*ping\s*$/i.test(prompt)) return 'pong';
  return `Echo: ${prompt.slice(0, 2000)}`;
}

export class ProviderError extends Error {
  constructor(
    readonly provider: Provider,
    readonly status: number,
  ) {
    super(`${provider} returned ${status}`);
  }
}

/** One upstream call. A failing provider answers 502 after a short delay, like a gateway timeout would. */
export async function callProvider(provider: Provider, prompt: string, failing: boolean): Promise<string> {
  if (failing) {
    await sleep(40 + Math.floor(Math.random() * 40));
    throw new ProviderError(provider, 502);
  }
  await sleep(3 + Math.floor(Math.random() * 12));
  return fakeAnswer(prompt);
}

export function countTokens(text: string): number {
  return Math.max(1, Math.ceil(text.trim().split(/\s+/).filter(Boolean).length * 1.3));
}
