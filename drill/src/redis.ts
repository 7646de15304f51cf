/** Redis client that fails fast while Redis is down and reconnects by itself when it returns. */
import Redis from 'ioredis';
import { errText, log } from './log';

export function createRedis(url: string, name: string): Redis {
  const redis = new Redis(url, {
    connectionName: name,
    lazyConnect: false,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 2000,
    commandTimeout: 2000,
    retryStrategy: (times) => Math.min(200 * times, 2000),
  });
  let down = false;
  redis.on('error', (err) => {
    if (!down) log('error', 'redis connection error', { err: errText(err) });
    down = true;
  });
  redis.on('ready', () => {
    if (down) log('info', 'redis connection restored');
    down = false;
  });
  return redis;
}

export function redisReady(redis: Redis): boolean {
  return redis.status === 'ready';
}

export async function redisPing(redis: Redis, timeoutMs: number): Promise<boolean> {
  if (!redisReady(redis)) return false;
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      redis.ping().then((r) => r === 'PONG'),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), timeoutMs);
      }),
    ]);
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}
