import type { ChainableCommander } from 'ioredis';
import type { Redis } from './redis.js';

type Arg = string | number;

/**
 * A Lua script registered with ioredis's defineCommand, so calls send EVALSHA (the script body
 * travels once per connection, not once per call), alone or queued in a pipeline.
 */
export interface RedisScript {
  run(...args: Arg[]): Promise<unknown>;
  queue(pipeline: ChainableCommander, ...args: Arg[]): ChainableCommander;
}

export function redisScript(redis: Redis, name: string, numberOfKeys: number, lua: string): RedisScript {
  if (!(name in redis)) redis.defineCommand(name, { numberOfKeys, lua });
  return {
    run: (...args) => (redis as unknown as Record<string, (...a: Arg[]) => Promise<unknown>>)[name]?.(...args) ?? Promise.reject(new Error(`no script ${name}`)),
    queue: (pipeline, ...args) => {
      const call = (pipeline as unknown as Record<string, (...a: Arg[]) => ChainableCommander>)[name];
      if (!call) throw new Error(`no script ${name}`);
      return call.apply(pipeline, args);
    },
  };
}
