import confluent from '@kafkajs/confluent-schema-registry';
import avro from 'avsc';
import { AppError } from '../errors/app-error.js';
import { PoisonError } from '../errors/failure.js';
import { loadEventSchemas } from './schemas.js';
import { EVENT_NAMESPACE, isEventType, subjectOf, type EventType, type RelayEvent } from './types.js';

const { SchemaRegistry, SchemaType } = confluent;
type Registry = InstanceType<typeof SchemaRegistry>;

/** Bytes that no registered schema can read: the record itself is at fault, not the registry. */
export class UndecodableEventError extends PoisonError {
  override readonly name = 'UndecodableEventError';
}

const MAGIC_BYTE = 0;
const HEADER_BYTES = 5;

interface Writer {
  readonly id: number;
  readonly avroType: avro.Type;
}

interface Reader {
  readonly eventType: EventType;
  readonly read: (body: Buffer) => unknown;
}

/**
 * Encodes and decodes events in the Confluent wire format (magic byte, 4-byte schema id, Avro
 * body) against the schema registry. Writers register their schemas once at start-up (registering
 * the same schema again returns the same id); readers resolve unknown ids through the registry
 * and cache them, so any event ever written stays readable.
 */
export class EventCodec {
  private readonly writers = new Map<EventType, Writer>();
  /** Where encode() writes an event before copying it out; grows to the largest event seen. */
  private scratch = Buffer.allocUnsafe(16 * 1024);
  private readonly readers = new Map<number, Reader>();

  private constructor(readonly registry: Registry) {}

  static create(url: string): EventCodec {
    return new EventCodec(new SchemaRegistry({ host: url, clientId: 'relay', retry: { retries: 3 } }));
  }

  /**
   * Registers every event schema in schemas/ under its record name (RecordNameStrategy) with
   * BACKWARD compatibility, and keeps the ids for writing. A schema the registry refuses as
   * incompatible fails start-up with a message naming it.
   */
  async registerAll(schemas?: ReadonlyMap<EventType, string>): Promise<ReadonlyMap<EventType, number>> {
    const texts = schemas ?? (await loadEventSchemas());
    for (const [eventType, text] of texts) {
      const subject = subjectOf(eventType);
      let id: number;
      try {
        ({ id } = await this.registry.register({ type: SchemaType.AVRO, schema: text }, { subject }));
      } catch (error) {
        const status = (error as { status?: number }).status;
        const reason = (error as Error).message.replace(/^.*?RuleViolationException:?\s*/, '');
        const why =
          status === 409
            ? 'it is not BACKWARD-compatible with the versions already registered (a new field needs a default)'
            : 'the registry refused it';
        throw new AppError(
          'schema_rejected',
          `Schema ${subject} (schemas/${eventType}.avsc): ${why}. Registry: ${reason}`,
          { cause: error },
        );
      }
      const avroType = avro.Type.forSchema(JSON.parse(text) as avro.Schema);
      this.writers.set(eventType, { id, avroType });
      this.readers.set(id, { eventType, read: (body): unknown => avroType.fromBuffer(body) });
    }
    return new Map([...this.writers].map(([type, writer]) => [type, writer.id]));
  }

  /** The wire-format bytes of an event. Synchronous: ids are known after registerAll(). */
  encode(event: RelayEvent): Buffer {
    const writer = this.writers.get(event.type);
    if (!writer) throw new Error(`schema of ${event.type} is not registered; call registerAll() first`);
    // Written into a reused buffer and copied out once: avsc's toBuffer and a concat with the
    // header allocated and copied each event twice (a MessageSent is about 1.3 KB).
    let end = writer.avroType.encode(event.data, this.scratch, HEADER_BYTES);
    if (end < 0) {
      this.scratch = Buffer.allocUnsafe(2 * (this.scratch.length - end));
      end = writer.avroType.encode(event.data, this.scratch, HEADER_BYTES);
    }
    const bytes = Buffer.allocUnsafe(end);
    this.scratch.copy(bytes, HEADER_BYTES, HEADER_BYTES, end);
    bytes.writeUInt8(MAGIC_BYTE, 0);
    bytes.writeInt32BE(writer.id, 1);
    return bytes;
  }

  /** Decodes wire-format bytes written with any registered version of an event schema. */
  async decode(bytes: Buffer): Promise<RelayEvent> {
    if (bytes.length < HEADER_BYTES || bytes.readUInt8(0) !== MAGIC_BYTE) {
      throw new UndecodableEventError('not in the Confluent wire format (no magic byte)');
    }
    const reader = await this.reader(bytes.readInt32BE(1));
    let data: unknown;
    try {
      data = reader.read(bytes.subarray(HEADER_BYTES));
    } catch (error) {
      throw new UndecodableEventError(
        `the Avro body does not match ${reader.eventType}'s schema: ${(error as Error).message}`,
      );
    }
    return { type: reader.eventType, data } as RelayEvent;
  }

  /** The schema id that encode() writes for an event type. */
  schemaIdOf(eventType: EventType): number | undefined {
    return this.writers.get(eventType)?.id;
  }

  private async reader(id: number): Promise<Reader> {
    const known = this.readers.get(id);
    if (known) return known;
    let schema: avro.Type;
    try {
      schema = (await this.registry.getSchema(id)) as avro.Type;
    } catch (error) {
      // An id the registry does not know can never be read; a registry that does not answer can.
      if ((error as { status?: number }).status === 404 || /not found/i.test((error as Error).message)) {
        throw new UndecodableEventError(`schema id ${id} is not in the registry`);
      }
      throw error;
    }
    const fullName = schema.name ?? '';
    const eventType = fullName.startsWith(`${EVENT_NAMESPACE}.`) ? fullName.slice(EVENT_NAMESPACE.length + 1) : '';
    if (!isEventType(eventType)) throw new UndecodableEventError(`schema ${id} (${fullName}) is not a relay event`);
    // Bytes written with another version of a schema this process writes are read into the shape
    // this process knows (Avro schema resolution), so projections see one shape per event type.
    const current = this.writers.get(eventType);
    let read: Reader['read'] = (body) => schema.fromBuffer(body);
    if (current && current.id !== id) {
      const resolver = current.avroType.createResolver(schema);
      read = (body) => current.avroType.fromBuffer(body, resolver);
    }
    const reader = { eventType, read };
    this.readers.set(id, reader);
    return reader;
  }
}
