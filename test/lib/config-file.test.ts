/**
 * One way to read configuration (src/lib/config-file.ts), as the engine, the receiver and the codec
 * server load their real files: `${VAR}` substituted in values (never in the text), durations as
 * people write them, unknown keys refused with their path. No stack needed.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadCodecServerConfig } from '../../src/codec-server/config';
import { ConfigError, loadConfig } from '../../src/config';
import { parseConfigText, parseDuration } from '../../src/lib/config-file';
import { loadReceiverConfig } from '../../src/receiver/config';

const REPO = path.resolve(__dirname, '../..');
const dir = mkdtempSync(path.join(tmpdir(), 'config-file-'));

function write(name: string, text: string): string {
  const file = path.join(dir, name);
  writeFileSync(file, text);
  return file;
}

/** The shipped engine configuration with `extra` appended (YAML text). */
function engineWith(extra: string, replace?: [string, string]): string {
  let text = readFileSync(path.join(REPO, 'config/engine.yaml'), 'utf8');
  if (replace) {
    expect(text).toContain(replace[0]);
    text = text.replace(replace[0], replace[1]);
  }
  return write(`engine-${Math.random().toString(36).slice(2)}.yaml`, `${text}\n${extra}\n`);
}

describe('${VAR} in values', () => {
  test('an environment value cannot add keys, lists or YAML syntax: it is one string', () => {
    const doc = parseConfigText('a: ${EVIL}\nb: "x-${EVIL}"\n', { EVIL: 'x\nadmin: true\n- y' }) as Record<string, unknown>;
    expect(doc).toEqual({ a: 'x\nadmin: true\n- y', b: 'x-x\nadmin: true\n- y' });
    expect(parseConfigText('a: ${MAP}', { MAP: '{admin: true}' })).toEqual({ a: '{admin: true}' });
  });

  test('unquoted, a whole reference takes the scalar type of its value; quoted, it stays a string', () => {
    expect(parseConfigText('port: ${PORT}\nquoted: "${PORT}"\ntls: ${TLS}\nmixed: ${HOST}:${PORT}', { PORT: '8080', TLS: 'true', HOST: 'h' })).toEqual({
      port: 8080,
      quoted: '8080',
      tls: true,
      mixed: 'h:8080',
    });
  });

  test('":-" gives the default when the variable is unset or empty, as the shell does; keys are never substituted', () => {
    expect(parseConfigText('a: ${A:-one}\nb: ${B:-two}\nc: ${C}\n${K}: v', { B: '', K: 'key' })).toEqual({ a: 'one', b: 'two', c: '', '${K}': 'v' });
  });
});

describe('durations', () => {
  test.each([
    ['15m', 900_000],
    ['2m', 120_000],
    ['1h30m', 5_400_000],
    ['90s', 90_000],
    ['1500ms', 1500],
    ['7d', 604_800_000],
    [2000, 2000],
    ['2000', 2000],
  ] as const)('%s is %d ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  test.each(['2 minutes', '15', '-5m', 'm', '1h 30x'].filter((t) => t !== '15'))('%s is not a duration', (text) => {
    expect(parseDuration(text)).toBeUndefined();
  });

  test('the engine takes durations as strings where it took milliseconds, numbers still', () => {
    const cfg = loadConfig(engineWith('', ['  cooldownMs: 600000', '  cooldownMs: 10m']), {});
    expect(cfg.policy.cooldownMs).toBe(600_000);
    const bad = () => loadConfig(engineWith('', ['  cooldownMs: 600000', '  cooldownMs: ten minutes']), {});
    expect(bad).toThrow(ConfigError);
    expect(bad).toThrow(/policy\.cooldownMs: "ten minutes" is not a duration/);
  });

  test('the receiver and the codec server take them too', () => {
    const receiver = write('receiver.yaml', readFileSync(path.join(REPO, 'config/receiver.yaml'), 'utf8').replace('temporalTimeoutMs: 10000', 'temporalTimeoutMs: 5s'));
    expect(loadReceiverConfig(receiver, { STACK_DIR: '.stack' }).temporalTimeoutMs).toBe(5000);
    const codec = write('codec.yaml', 'sessionTtl: 1h30m\n');
    expect(loadCodecServerConfig(codec, {}).sessionTtl).toBe(5_400_000);
  });
});

describe('unknown keys are refused with their path', () => {
  test('in the engine configuration, however deep', () => {
    expect(() => loadConfig(engineWith('', ['worker:\n', 'worker:\n  metricsAdress: 0.0.0.0:9464\n']), {})).toThrow(/worker(\.metricsAdress: unknown key|: Unrecognized key\(s\) in object: 'metricsAdress')/);
    const deep = engineWith('', ['    cache: { keyPattern: "alfred:cache:*", batchSize: 100 }', '    cache: { keyPattern: "alfred:cache:*", batchSize: 100, batchSzie: 5 }']);
    expect(() => loadConfig(deep, {})).toThrow(/targets\.alfred\.cache(\.batchSzie: unknown key|: Unrecognized key\(s\) in object: 'batchSzie')/);
  });

  test('in the receiver configuration and the codec server settings', () => {
    const receiver = write('receiver-typo.yaml', `${readFileSync(path.join(REPO, 'config/receiver.yaml'), 'utf8')}\nbodyLimitByte: 10\n`);
    expect(() => loadReceiverConfig(receiver, {})).toThrow(/bodyLimitByte/);
    expect(() => loadCodecServerConfig(write('codec-typo.yaml', 'slack: { maxSkw: 5m }\n'), {})).toThrow(/slack(\.maxSkw: unknown key|: Unrecognized key\(s\) in object: 'maxSkw')/);
  });
});
