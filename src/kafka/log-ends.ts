import type { KafkaAdmin } from './client.js';

/**
 * The end of each partition of the log, asked of the cluster. Callers that ask within the same
 * event-loop turn share one request per topic; a caller never joins a request sent before it
 * asked, so the answer covers every record written before the call.
 */
export class LogEnds {
  private readonly gathering = new Map<string, Promise<Map<number, bigint>>>();

  constructor(private readonly admin: () => Promise<KafkaAdmin>) {}

  /** The offset of the last record in the partition (-1 when it is empty). */
  async lastOffset(topic: string, partition: number): Promise<bigint> {
    return ((await this.ends(topic)).get(partition) ?? 0n) - 1n;
  }

  /** Per partition, the offset the next record will get (the high watermark). */
  ends(topic: string): Promise<Map<number, bigint>> {
    let ends = this.gathering.get(topic);
    if (!ends) {
      ends = new Promise<void>((resolve) => setImmediate(resolve)).then(async () => {
        this.gathering.delete(topic);
        const offsets = await (await this.admin()).fetchTopicOffsets(topic);
        return new Map(offsets.map((o) => [o.partition, BigInt(o.high)]));
      });
      this.gathering.set(topic, ends);
    }
    return ends;
  }
}
