import type { Redis } from './client.js';

type Arg = string | number;

/**
 * A Lua script registered with ioredis's defineCommand, so calls send EVALSHA (the script body
 * travels once per connection, not once per call), auto-pipelined like any other command.
 */
export interface RedisScript {
  run(...args: Arg[]): Promise<unknown>;
}

/** `numberOfKeys` 'dynamic': each call passes the number of keys as its first argument. */
export function redisScript(redis: Redis, name: string, numberOfKeys: number | 'dynamic', lua: string): RedisScript {
  if (!(name in redis)) redis.defineCommand(name, numberOfKeys === 'dynamic' ? { lua } : { numberOfKeys, lua });
  return {
    run: (...args) =>
      (redis as unknown as Record<string, (...a: Arg[]) => Promise<unknown>>)[name]?.(...args) ??
      Promise.reject(new Error(`no script ${name}`)),
  };
}
