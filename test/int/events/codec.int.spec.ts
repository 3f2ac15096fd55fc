import { openTestContext, type TestContext } from '../../helpers/context.js';
import { messageSent } from '../../helpers/events.js';

// encode() writes into one reused buffer and copies each event out: the bytes it returns must
// stay each event's own, whatever is encoded after them, and an event larger than the buffer fits.
describe('EventCodec.encode (real registry)', () => {
  let ctx: TestContext;
  beforeAll(async () => {
    ctx = await openTestContext('codec');
  });
  afterAll(async () => {
    await ctx.cleanup();
  });

  const sent = (content: string) =>
    messageSent({ from_address: 'a'.repeat(43), encrypted_content: content, expires_at: Date.now() + 60_000 });

  it('round-trips events before, past and after the size of its buffer, each in bytes of its own', async () => {
    const events = [sent('x'.repeat(100)), sent('y'.repeat(65_536)), sent('z'.repeat(10)), sent('é'.repeat(20_000))];
    const encoded = events.map((event) => ctx.codec.encode(event));
    expect(encoded[1]?.length).toBeGreaterThan(65_536);
    expect(encoded[0]?.[0]).toBe(0); // the Confluent wire format's magic byte
    for (const [i, bytes] of encoded.entries()) expect(await ctx.codec.decode(bytes)).toEqual(events[i]);
  });
});
