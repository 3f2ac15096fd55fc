import { Kind, type Static, type TSchema } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { Value } from '@sinclair/typebox/value';
import { AppError } from '../errors/app-error.js';

/**
 * Request validation from the contract's schemas. The compiled check is the whole cost of a valid
 * request; only a request that fails it is walked again, in the schema's member order, to name the
 * first member that breaks it in a sentence (a 400 `invalid_request` with `field`).
 */

const invalid = (field: string, detail: string) => new AppError('invalid_request', detail, { extensions: { field } });

type Schema = TSchema & {
  readonly type?: string;
  readonly properties?: Readonly<Record<string, Schema>>;
  readonly required?: readonly string[];
  readonly items?: Schema;
  readonly minLength?: number;
  readonly maxLength?: number;
  readonly minItems?: number;
  readonly maxItems?: number;
  readonly minimum?: number;
  readonly maximum?: number;
  readonly pattern?: string;
  readonly const?: unknown;
  readonly description?: string;
};

const isObject = (value: unknown): value is Readonly<Record<string, unknown>> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** A sentence naming `field` and what it must be, for a value `schema` refuses. */
function explain(schema: Schema, value: unknown, field: string): AppError {
  const shape = schema.description;
  switch (schema[Kind]) {
    case 'Object': {
      if (!isObject(value)) return invalid(field, `${field} must be a JSON object.`);
      const required = new Set(schema.required ?? []);
      for (const [key, inner] of Object.entries(schema.properties ?? {})) {
        const member = value[key];
        if (member === undefined || member === null) {
          if (required.has(key)) return invalid(key, `${key} is required.`);
          if (member === undefined) continue;
        }
        if (!Value.Check(inner, member)) return explain(inner, member, key);
      }
      return invalid(field, `${field} does not match the API.`);
    }
    case 'String': {
      if (typeof value !== 'string') return invalid(field, `${field} must be a string.`);
      if (value.length === 0 && (schema.minLength ?? 0) > 0) return invalid(field, `${field} must not be empty.`);
      if (schema.maxLength !== undefined && value.length > schema.maxLength)
        return invalid(field, `${field} must be at most ${schema.maxLength} characters.`);
      return invalid(field, `${field} must be ${shape ?? `like /${schema.pattern ?? ''}/`}.`);
    }
    case 'Array': {
      if (!Array.isArray(value)) return invalid(field, `${field} must be an array.`);
      if (value.length === 0 && (schema.minItems ?? 0) > 0) return invalid(field, `${field} must not be empty.`);
      if (schema.maxItems !== undefined && value.length > schema.maxItems)
        return invalid(field, `${field} must hold at most ${schema.maxItems} items.`);
      const items = schema.items;
      const index = items ? value.findIndex((item) => !Value.Check(items, item)) : -1;
      // An item's own words, but named by its place: `message_ids[3] must be a UUID.`
      if (items && index >= 0)
        return invalid(`${field}[${index}]`, `${field}[${index}] must be ${items.description ?? 'as documented'}.`);
      return invalid(field, `${field} does not match the API.`);
    }
    case 'Integer':
    case 'Number':
      return invalid(
        field,
        `${field} must be a whole number from ${schema.minimum ?? 0} to ${schema.maximum ?? Number.MAX_SAFE_INTEGER}.`,
      );
    case 'Literal':
      return invalid(field, `${field} must be ${JSON.stringify(schema.const)}.`);
    default:
      return invalid(field, `${field} must be ${shape ?? 'as documented in the API'}.`);
  }
}

/** A parser for one schema: returns the value typed, or throws 400 invalid_request naming the failing member. */
export function validator<T extends TSchema>(schema: T, field: string): (value: unknown) => Static<T> {
  const compiled = TypeCompiler.Compile(schema);
  return (value: unknown): Static<T> => {
    if (compiled.Check(value)) return value;
    throw explain(schema, value, field);
  };
}

export { invalid as invalidRequest };
