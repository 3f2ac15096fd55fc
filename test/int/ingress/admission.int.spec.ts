import { randomUUID } from 'node:crypto';
import { createRedis, type Redis } from '../../../src/redis/client.js';
import { Admission, type Candidate } from '../../../src/ingress/admission.js';
import { IdempotencyStore } from '../../../src/ingress/idempotency.js';
import { RateLimiter } from '../../../src/ingress/rate-limit.js';
import { testConfig } from '../../helpers/context.js';

// One script per request decides claims and both rate budgets; against the real Redis.
describe('Admission (real Redis)', () => {
  const config = testConfig('admission');
  const prefix = config.redis.keyPrefix;
  let redis: Redis;
  let idempotency: IdempotencyStore;
  let limiter: RateLimiter;

  beforeAll(() => {
    redis = createRedis(config, 'admission-test');
    idempotency = new IdempotencyStore(redis, prefix);
    limiter = new RateLimiter(redis, prefix);
  });

  afterAll(async () => {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
  });

  const message = (from: string, to: string): Candidate => ({
    messageId: randomUUID(),
    fingerprint: randomUUID().slice(0, 22),
    from,
    to,
  });
  const admission = (
    sender: number,
    recipient: number,
    overrides = new Map<string, { perSecond: number; burst: number }>(),
  ) =>
    new Admission(
      redis,
      idempotency,
      { limiter, rate: { perSecond: 1, burst: sender } },
      { limiter, rate: { perSecond: 1, burst: recipient }, overrides },
    );

  it('admits a batch in order until the sender is out of budget, and frees the refused ids', async () => {
    const sender = `s-${randomUUID()}`;
    const batch = Array.from({ length: 6 }, (_, i) => message(sender, `r-${i}-${randomUUID()}`));
    const decided = await admission(4, 100).decide(batch);
    expect(decided.map((d) => (d.limited ? 'refused' : d.claim.kind))).toEqual([
      'new',
      'new',
      'new',
      'new',
      'refused',
      'refused',
    ]);
    expect(decided[4]?.limited?.code).toBe('rate_limited');
    expect(decided[4]?.limited?.message).toContain(`Sender ${sender}`);
    const claims = await idempotency.lookupMany(batch.map((m) => m.messageId));
    expect(claims.map((c) => c.kind)).toEqual(['pending', 'pending', 'pending', 'pending', 'new', 'new']);
  });

  it('spends neither budget when the recipient refuses', async () => {
    const sender = `s-${randomUUID()}`;
    const recipient = `r-${randomUUID()}`;
    const gate = admission(3, 1);
    const [first, second] = await gate.decide([message(sender, recipient), message(sender, recipient)]);
    expect(first?.limited).toBeUndefined();
    expect(second?.limited?.message).toContain(`Recipient ${recipient}`);
    // The sender spent 1 of 3: two more to other recipients pass, the third is refused.
    const more = await gate.decide([
      message(sender, `r-${randomUUID()}`),
      message(sender, `r-${randomUUID()}`),
      message(sender, `r-${randomUUID()}`),
    ]);
    expect(more.map((d) => d.limited === undefined)).toEqual([true, true, false]);
  });

  it('answers a claimed id with what it was claimed for, and spends nothing for it', async () => {
    const sender = `s-${randomUUID()}`;
    const gate = admission(1, 100);
    const original = message(sender, `r-${randomUUID()}`);
    expect((await gate.decide([original]))[0]?.claim.kind).toBe('new');
    await idempotency.accepted([
      {
        id: original.messageId,
        fingerprint: original.fingerprint,
        position: { partition: 3, offset: '42' },
        to: original.to,
      },
    ]);
    const [again] = await gate.decide([original]);
    expect(again?.limited).toBeUndefined();
    expect(again?.claim).toEqual({
      kind: 'accepted',
      fingerprint: original.fingerprint,
      position: { partition: 3, offset: '42' },
      to: original.to,
    });
  });

  it('uses an operator override for a busy recipient', async () => {
    const busy = `r-${randomUUID()}`;
    const gate = admission(1000, 1, new Map([[busy, { perSecond: 100, burst: 50 }]]));
    const decided = await gate.decide(Array.from({ length: 40 }, () => message(`s-${randomUUID()}`, busy)));
    expect(decided.filter((d) => d.limited).length).toBe(0);
  });
});

describe('IdempotencyStore.releaseIfPending (real Redis)', () => {
  const config = testConfig('admission_release');
  let redis: Redis;
  let store: IdempotencyStore;

  beforeAll(() => {
    redis = createRedis(config, 'admission-release-test');
    store = new IdempotencyStore(redis, config.redis.keyPrefix);
  });

  afterAll(async () => {
    const keys = await redis.keys(`${config.redis.keyPrefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
  });

  it("frees only the claim its own request made, never a concurrent retry's claim of the same message", async () => {
    const id = randomUUID();
    const fingerprint = 'f'.repeat(22);
    const theirs = IdempotencyStore.pending(fingerprint, 'request-a');
    await redis.set(store.keyOf(id), theirs, 'EX', 60);
    await store.releaseIfPending([{ id, value: IdempotencyStore.pending(fingerprint, 'request-b') }]);
    expect(await redis.get(store.keyOf(id))).toBe(theirs);
    await store.releaseIfPending([{ id, value: theirs }]);
    expect(await redis.get(store.keyOf(id))).toBeNull();
  });
});
