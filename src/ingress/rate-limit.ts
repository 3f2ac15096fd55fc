import type { Redis } from '../redis/client.js';
import { redisKeys, type RedisKeys } from '../redis/keys.js';
import { redisScript, type RedisScript } from '../redis/script.js';

export interface Rate {
  readonly perSecond: number;
  readonly burst: number;
}

export interface Decision {
  readonly allowed: boolean;
  readonly limit: number;
  readonly remaining: number;
  /** Milliseconds until a request would be allowed (0 if allowed now). */
  readonly retryAfterMs: number;
  /** Milliseconds until the bucket is full again. */
  readonly resetMs: number;
}

// GCRA (the generic cell rate algorithm): one key holds the theoretical arrival time, in
// microseconds of the Redis server's clock, so every node shares one clock and one decision
// costs one round trip. `gcra(key, now, interval_us, burst, cost, take)` answers allowed (1/0),
// retry after (ms), remaining and reset (ms), and takes `cost` only when `take` and allowed.
// Within one script a budget is read once and kept in a Lua table, however many decisions spend
// from it; `gcra_save(now)`, called once at the end, writes each budget spent from.
// Shared by the single-decision script below and the admission script (admission.ts).
export const GCRA_LUA = `
local gcra_tats, gcra_spent = {}, {}
local function gcra(key, now, interval, burst, cost, take)
  local tolerance = interval * burst
  local tat = gcra_tats[key]
  if tat == nil then
    tat = tonumber(redis.call('GET', key) or now)
    gcra_tats[key] = tat
  end
  if tat < now then tat = now end
  local new_tat = tat + interval * cost
  local allow_at = new_tat - tolerance
  if allow_at > now then
    return 0, math.ceil((allow_at - now) / 1000), 0, math.ceil((tat - now) / 1000)
  end
  if take then
    gcra_tats[key] = new_tat
    gcra_spent[key] = true
  end
  return 1, 0, math.floor((tolerance - (new_tat - now)) / interval), math.ceil((new_tat - now) / 1000)
end
local function gcra_save(now)
  for key in pairs(gcra_spent) do
    local tat = gcra_tats[key]
    redis.call('SET', key, string.format('%.0f', tat), 'PX', math.max(1, math.ceil((tat - now) / 1000)))
  end
end
local function server_now()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end
`;

// ARGV: emission interval (us), burst, cost, and 1 to only look (the decision is made but
// nothing is taken).
const GCRA = `${GCRA_LUA}
local now = server_now()
local allowed, retry, remaining, reset = gcra(KEYS[1], now, tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4] ~= '1')
gcra_save(now)
return {allowed, retry, remaining, reset}`;

/**
 * Rate limits in Redis, atomic per decision. Decisions go out through ioredis's auto-pipelining,
 * so those of all the requests handled in one event-loop turn share one round trip.
 */
export class RateLimiter {
  private readonly gcra: RedisScript;
  private readonly redisKeys: RedisKeys;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {
    this.redisKeys = redisKeys(prefix);
    this.gcra = redisScript(redis, 'relayGcra', 1, GCRA);
  }

  /** The Redis key holding a budget's state. */
  keyOf(key: string): string {
    return this.redisKeys.rate(key);
  }

  /** One decision: takes `cost` (1) from the key's budget if it has that much. */
  async decide({ key, rate, cost }: { key: string; rate: Rate; cost?: number }): Promise<Decision> {
    return this.decision(
      await this.gcra.run(this.keyOf(key), 1_000_000 / rate.perSecond, rate.burst, cost ?? 1, 0),
      rate.burst,
    );
  }

  /** Whether `decide` would allow `cost` (1) now, without taking anything from the budget. */
  async peek({ key, rate, cost }: { key: string; rate: Rate; cost?: number }): Promise<Decision> {
    return this.decision(
      await this.gcra.run(this.keyOf(key), 1_000_000 / rate.perSecond, rate.burst, cost ?? 1, 1),
      rate.burst,
    );
  }

  private decision(value: unknown, limit: number): Decision {
    const [allowed, retryAfterMs, remaining, resetMs] = value as [number, number, number, number];
    return { allowed: allowed === 1, limit, remaining: Math.max(0, remaining), retryAfterMs, resetMs };
  }
}

/** The RateLimit-* and Retry-After headers for a decision. */
export function rateLimitHeaders(decision: Decision): Record<string, string> {
  const headers: Record<string, string> = {
    'RateLimit-Limit': String(decision.limit),
    'RateLimit-Remaining': String(decision.remaining),
    'RateLimit-Reset': String(Math.ceil(decision.resetMs / 1000)),
  };
  if (!decision.allowed) headers['Retry-After'] = String(Math.max(1, Math.ceil(decision.retryAfterMs / 1000)));
  return headers;
}
