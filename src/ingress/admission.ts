import { randomBytes } from 'node:crypto';
import { AppError } from '../errors/app-error.js';
import type { Redis } from '../redis/client.js';
import { redisScript, type RedisScript } from '../redis/script.js';
import { IdempotencyStore, parseClaim, type Claim } from './idempotency.js';
import { GCRA_LUA, type Rate, type RateLimiter } from './rate-limit.js';

/** A message to admit: its id, content fingerprint, and the addresses whose budgets it spends. */
export interface Candidate {
  readonly messageId: string;
  readonly fingerprint: string;
  readonly from: string;
  readonly to: string;
}

/** What admission decided for one message: its claim, and the refusal if it is over a rate. */
export interface Admitted {
  readonly claim: Claim;
  readonly limited: AppError | undefined;
}

/** A rate budget per address, and the limiter that keeps it. */
export interface Limit {
  readonly limiter: RateLimiter;
  readonly rate: Rate;
}

/** Per-recipient rate: one rate for every address, and higher ones an operator set for known busy addresses. */
export interface RecipientLimit extends Limit {
  readonly overrides: ReadonlyMap<string, Rate>;
}

/**
 * Names a request among every ingress's: a random prefix drawn once per process, then a counter.
 * It only tells claimants apart (clients never see it), and a CSPRNG call per request cost the
 * single-message path about 4 % of the ingress's CPU.
 */
const NONCE_PREFIX = randomBytes(12).toString('base64url');
let requests = 0;
const requestNonce = (): string => `${NONCE_PREFIX}.${(requests++).toString(36)}`;

// KEYS: per message its claim key, its sender's budget key and its recipient's budget key.
// ARGV: the pending claim's TTL (s), then per message its pending value and the sender's and
// recipient's emission interval (us) and burst (interval 0: no limit).
// Per message, in order: claim the id (SET NX GET); a new id then spends one from both budgets if
// both allow it, or frees the id again. Answers per message {0} admitted, {1, previous value}
// already claimed, or {2, 1 = sender / 2 = recipient, retry after ms}. Each budget is read once
// and written once per request (GCRA_LUA), however many of its messages spend from it.
const ADMIT = `${GCRA_LUA}
local now = server_now()
local pending_ttl = ARGV[1]
local out = {}
for i = 1, #KEYS / 3 do
  local claim_key, sender_key, recipient_key = KEYS[i * 3 - 2], KEYS[i * 3 - 1], KEYS[i * 3]
  local a = (i - 1) * 5 + 2
  local s_interval, s_burst = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  local r_interval, r_burst = tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4])
  local previous = redis.call('SET', claim_key, ARGV[a], 'EX', pending_ttl, 'NX', 'GET')
  if previous then
    out[i] = {1, previous}
  else
    local who, retry = 0, 0
    if s_interval > 0 then
      local ok, wait = gcra(sender_key, now, s_interval, s_burst, 1, false)
      if ok == 0 then who, retry = 1, wait end
    end
    if who == 0 and r_interval > 0 then
      local ok, wait = gcra(recipient_key, now, r_interval, r_burst, 1, false)
      if ok == 0 then who, retry = 2, wait end
    end
    if who == 0 then
      if s_interval > 0 then gcra(sender_key, now, s_interval, s_burst, 1, true) end
      if r_interval > 0 then gcra(recipient_key, now, r_interval, r_burst, 1, true) end
      out[i] = {0}
    else
      redis.call('DEL', claim_key)
      out[i] = {2, who, retry}
    end
  end
end
gcra_save(now)
return out`;

/**
 * Admits a request's messages in one Redis script: claims each id, and takes each new one from
 * its sender's and its recipient's rate budgets (both or neither). Only new ids spend a budget,
 * so replaying a signed message costs nothing; the signature was checked first, so nobody spends
 * another's budget. One command per request, where one per message and step cost the ingress and
 * Redis more CPU than the decisions themselves. (A script's keys must share a Redis node: the
 * relay runs on one Redis with replicas, not Redis Cluster.)
 */
export class Admission {
  private readonly admit: RedisScript;

  constructor(
    redis: Redis,
    private readonly idempotency: IdempotencyStore,
    private readonly sender: Limit | undefined,
    private readonly recipient: RecipientLimit | undefined,
  ) {
    this.admit = redisScript(redis, 'relayAdmit', 'dynamic', ADMIT);
  }

  async decide(messages: readonly Candidate[]): Promise<Admitted[]> {
    if (messages.length === 0) return [];
    const keys: string[] = [];
    const args: (string | number)[] = [this.idempotency.pendingSeconds];
    const nonce = requestNonce();
    const pending = messages.map((m) => IdempotencyStore.pending(m.fingerprint, nonce));
    const rates = messages.map((m, i) => {
      const recipientRate = this.recipient ? (this.recipient.overrides.get(m.to) ?? this.recipient.rate) : undefined;
      const claimKey = this.idempotency.keyOf(m.messageId);
      // A budget without a limit is never read: its slot repeats the claim key.
      keys.push(
        claimKey,
        this.sender?.limiter.keyOf(`sender:${m.from}`) ?? claimKey,
        this.recipient?.limiter.keyOf(`recipient:${m.to}`) ?? claimKey,
      );
      args.push(pending[i] as string, ...budget(this.sender?.rate), ...budget(recipientRate));
      return recipientRate;
    });
    let answers: unknown[];
    try {
      answers = (await this.admit.run(keys.length, ...keys, ...args)) as unknown[];
    } catch (error) {
      // Whether the script ran is unknown: free the ids this request may have claimed, so a retry
      // is not kept waiting (nothing was produced); a concurrent request's claims stay.
      await this.idempotency
        .releaseIfPending(messages.map((m, i) => ({ id: m.messageId, value: pending[i] as string })))
        .catch(() => undefined);
      throw error;
    }
    return messages.map((m, i) => {
      const [kind, a, b] = answers[i] as [number, string | number | undefined, number | undefined];
      if (kind === 0) return { claim: { kind: 'new' }, limited: undefined };
      if (kind === 1) return { claim: parseClaim(String(a)), limited: undefined };
      const who = a === 1 ? `Sender ${m.from}` : `Recipient ${m.to}`;
      const rate = (a === 1 ? this.sender?.rate : rates[i]) as Rate;
      return { claim: { kind: 'new' }, limited: rateLimited(who, rate, Number(b), m.messageId) };
    });
  }
}

const budget = (rate: Rate | undefined): [number, number] => (rate ? [1_000_000 / rate.perSecond, rate.burst] : [0, 0]);

const rateLimited = (who: string, rate: Rate, retryAfterMs: number, messageId: string) =>
  new AppError('rate_limited', `${who} is over its rate of ${rate.perSecond} messages/s.`, {
    extensions: { retry_after: Math.max(1, Math.ceil(retryAfterMs / 1000)), message_id: messageId },
  });
