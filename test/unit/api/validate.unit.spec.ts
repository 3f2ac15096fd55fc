import { Type } from '@sinclair/typebox';
import { readClientFrame } from '../../../src/api/frames.js';
import { AckRequest, RelayRequest } from '../../../src/api/messages.js';
import { Address, Uuid } from '../../../src/api/primitives.js';
import { validator } from '../../../src/api/validate.js';
import { AppError } from '../../../src/errors/app-error.js';
import { expectAppError } from '../../helpers/errors.js';

// A request that breaks its schema is a 400 invalid_request naming the first member (in the
// schema's order) that breaks it, in the sentence the hand-written checks used to give.

function expectInvalid(fn: () => unknown, field: string): string {
  const error = expectAppError(fn, 'invalid_request', 400);
  expect(error.extensions['field']).toBe(field);
  return error.message;
}

const ADDRESS = 'NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs';
const ID = 'a1b2c3d4-e5f6-4789-8abc-def012345678';
const message = {
  message_id: ID,
  from_address: ADDRESS,
  to_address: ADDRESS,
  message_type: 'text',
  encrypted_content: 'x',
  signature: 'a.b.c',
};
const parseMessage = validator(RelayRequest, 'body');

describe('validator', () => {
  it('returns a valid value as it is, unknown members included', () => {
    const value = { ...message, extra: 1 };
    expect(parseMessage(value)).toBe(value);
  });

  it.each<[string, unknown]>([
    ['null', null],
    ['an array', [1, 2]],
    ['a string', '{}'],
    ['a number', 1],
  ])('refuses a body that is %s', (_label, value) => {
    expect(expectInvalid(() => parseMessage(value), 'body')).toBe('body must be a JSON object.');
  });

  it.each<[string, unknown, RegExp]>([
    ['missing', undefined, /^message_type is required\.$/],
    ['null', null, /^message_type is required\.$/],
    ['a number', 5, /must be a string/],
    ['an array', ['a'], /must be a string/],
    ['empty', '', /must not be empty/],
    ['too long', 'x'.repeat(51), /at most 50 characters/],
  ])('refuses a member that is %s', (_label, value, detail) => {
    expect(expectInvalid(() => parseMessage({ ...message, message_type: value }), 'message_type')).toMatch(detail);
  });

  it('names the first failing member in the schema order', () => {
    expect(expectInvalid(() => parseMessage({ ...message, signature: 5, message_id: 'no' }), 'message_id')).toBe(
      'message_id must be a UUID.',
    );
  });

  it('names the shape a pattern stands for', () => {
    expect(expectInvalid(() => parseMessage({ ...message, to_address: ADDRESS.slice(1) }), 'to_address')).toMatch(
      /must be an address: 43 base64url/,
    );
    expect(expectInvalid(() => parseMessage({ ...message, expires_at: 'tomorrow' }), 'expires_at')).toMatch(/RFC 3339/);
  });

  it('takes a null expires_at as absent', () => {
    expect(parseMessage({ ...message, expires_at: null })).toMatchObject({ expires_at: null });
  });

  it.each([
    ['without dashes', 'a1b2c3d4e5f647898abcdef012345678'],
    ['in braces', `{${ID}}`],
    ['with a non-hex digit', `g${ID.slice(1)}`],
    ['with a trailing newline', `${ID}\n`],
  ])('refuses a UUID %s', (_label, id) => {
    expect(expectInvalid(() => validator(Uuid, 'id')(id), 'id')).toMatch(/a UUID|at most 36 characters/);
  });

  it.each([
    ['too short', ADDRESS.slice(1)],
    ['too long', `${ADDRESS}A`],
    ['with "+"', `+${ADDRESS.slice(1)}`],
    ['with padding', `${ADDRESS.slice(1)}=`],
  ])('refuses an address %s', (_label, to) => {
    expect(expectInvalid(() => validator(Address, 'address')(to), 'address')).toMatch(/address|characters/);
  });

  it('bounds arrays and names the failing item', () => {
    const parse = validator(AckRequest, 'body');
    expect(expectInvalid(() => parse({ address: ADDRESS, message_ids: [] }), 'message_ids')).toBe(
      'message_ids must not be empty.',
    );
    expect(expectInvalid(() => parse({ address: ADDRESS, message_ids: 'x' }), 'message_ids')).toBe(
      'message_ids must be an array.',
    );
    expect(expectInvalid(() => parse({ address: ADDRESS, message_ids: Array(1001).fill(ID) }), 'message_ids')).toMatch(
      /at most 1000 items/,
    );
    expect(expectInvalid(() => parse({ address: ADDRESS, message_ids: [ID, 42] }), 'message_ids[1]')).toBe(
      'message_ids[1] must be a UUID.',
    );
  });

  it('explains a nested object by its own members', () => {
    const parse = validator(Type.Object({ outer: Type.Object({ inner: Type.String({ minLength: 1 }) }) }), 'body');
    expect(expectInvalid(() => parse({ outer: {} }), 'inner')).toBe('inner is required.');
  });
});

describe('readClientFrame', () => {
  it('reads an ack frame', () => {
    expect(readClientFrame(JSON.stringify({ type: 'ack', message_ids: [ID] }), false)).toEqual({
      type: 'ack',
      message_ids: [ID],
    });
  });

  it.each<[string, string, boolean, string, string | undefined]>([
    ['binary', '{}', true, 'unsupported_media_type', undefined],
    ['not JSON', '{', false, 'malformed_json', undefined],
    ['not an object', '[1]', false, 'invalid_request', 'frame'],
    ['another type', '{"type":"hello"}', false, 'invalid_request', 'type'],
    ['a bad id', `{"type":"ack","message_ids":["x"]}`, false, 'invalid_request', 'message_ids[0]'],
  ])('refuses a frame that is %s', (_label, text, isBinary, code, field) => {
    let thrown: unknown;
    try {
      readClientFrame(text, isBinary);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(AppError);
    expect((thrown as AppError).code).toBe(code);
    expect((thrown as AppError).extensions['field']).toBe(field);
  });
});
