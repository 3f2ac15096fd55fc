import { ReplicaLagClock, type Applied } from '../../../src/projections/replica-reads.js';

const state = (entries: Record<string, number>): Applied =>
  new Map(Object.entries(entries).map(([slot, next]) => [slot, BigInt(next)]));

describe('ReplicaLagClock', () => {
  it("is 0 for a replica that has the primary's latest state, however long ago that state was written", () => {
    const clock = new ReplicaLagClock();
    clock.observePrimary(state({ 'mailbox/0': 5 }), 1_000);
    for (let at = 2_000; at <= 600_000; at += 1_000) clock.observePrimary(state({ 'mailbox/0': 5 }), at);
    expect(clock.lagSeconds(state({ 'mailbox/0': 5 }), 600_500)).toBe(0);
    expect(clock.lagSeconds(state({ 'mailbox/0': 9 }), 600_500)).toBe(0);
  });

  it('is the age of the first state after the newest one the replica has', () => {
    const clock = new ReplicaLagClock();
    clock.observePrimary(state({ 'mailbox/0': 5, 'peers/0': 1 }), 10_000);
    clock.observePrimary(state({ 'mailbox/0': 7, 'peers/0': 1 }), 11_000);
    clock.observePrimary(state({ 'mailbox/0': 7, 'peers/0': 1 }), 12_000); // unchanged: keeps 11 s
    clock.observePrimary(state({ 'mailbox/0': 7, 'peers/0': 2 }), 13_000);
    // Has the first state only: it has missed the one first seen at 11 s.
    expect(clock.lagSeconds(state({ 'mailbox/0': 6, 'peers/0': 1 }), 14_000)).toBe(3);
    // Has the second: missing the third, first seen at 13 s.
    expect(clock.lagSeconds(state({ 'mailbox/0': 7, 'peers/0': 1 }), 14_000)).toBe(1);
    expect(clock.lagSeconds(state({ 'mailbox/0': 7, 'peers/0': 2 }), 14_000)).toBe(0);
  });

  it('counts a partition the replica has no checkpoint for yet as missing', () => {
    const clock = new ReplicaLagClock();
    clock.observePrimary(state({ 'mailbox/0': 3 }), 1_000);
    clock.observePrimary(state({ 'mailbox/0': 3, 'mailbox/1': 1 }), 2_000);
    expect(clock.lagSeconds(state({ 'mailbox/0': 3 }), 2_500)).toBe(0.5);
  });

  it('reports at least the age of the oldest state it keeps for a replica that has none of them', () => {
    const clock = new ReplicaLagClock(2);
    for (const [next, at] of [
      [1, 1_000],
      [2, 2_000],
      [3, 3_000],
    ] as const)
      clock.observePrimary(state({ 'mailbox/0': next }), at);
    expect(clock.lagSeconds(state({}), 5_000)).toBe(3);
  });
});
