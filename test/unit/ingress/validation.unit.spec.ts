import { AppError } from '../../../src/errors/app-error.js';
import {
  addressAt,
  arrayAt,
  decimalWithin,
  integerParam,
  invalid,
  isUuid,
  MAX_INT64,
  objectAt,
  optionalParam,
  stringAt,
  uuidAt,
} from '../../../src/ingress/validation.js';
import { expectAppError } from '../../helpers/errors.js';

/** Runs `fn`, expects a 400 invalid_request naming `field`, and returns its message. */
function expectInvalid(fn: () => unknown, field: string): string {
  const error = expectAppError(fn, 'invalid_request', 400);
  expect(error.extensions['field']).toBe(field);
  return error.message;
}

const ADDRESS = 'NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs';

describe('invalid', () => {
  it('builds a 400 invalid_request naming the field', () => {
    const error = invalid('to', 'to is wrong.');
    expect(error).toBeInstanceOf(AppError);
    expect(error.code).toBe('invalid_request');
    expect(error.status).toBe(400);
    expect(error.message).toBe('to is wrong.');
    expect(error.extensions).toEqual({ field: 'to' });
  });
});

describe('objectAt', () => {
  it('returns a plain object as it is', () => {
    const value = { a: 1 };
    expect(objectAt(value, 'body')).toBe(value);
    expect(objectAt({}, 'body')).toEqual({});
  });

  it.each<[string, unknown]>([
    ['null', null],
    ['undefined', undefined],
    ['an array', [1, 2]],
    ['a string', '{}'],
    ['a number', 1],
    ['a boolean', true],
  ])('refuses %s', (_label, value) => {
    expect(expectInvalid(() => objectAt(value, 'body'), 'body')).toBe('body must be a JSON object.');
  });
});

describe('stringAt', () => {
  it('returns the string', () => {
    expect(stringAt({ name: 'relay' }, 'name')).toBe('relay');
  });

  it.each<[string, unknown, RegExp]>([
    ['missing', undefined, /is required/],
    ['null', null, /is required/],
    ['a number', 5, /must be a string/],
    ['an array', ['a'], /must be a string/],
    ['an object', { a: 'b' }, /must be a string/],
    ['empty', '', /must not be empty/],
  ])('refuses a value that is %s', (_label, value, message) => {
    const fields = value === undefined ? {} : { name: value };
    expect(expectInvalid(() => stringAt(fields, 'name'), 'name')).toMatch(message);
  });

  it('enforces maxLength in characters', () => {
    expect(stringAt({ s: 'abcd' }, 's', { maxLength: 4 })).toBe('abcd');
    expect(expectInvalid(() => stringAt({ s: 'abcde' }, 's', { maxLength: 4 }), 's')).toMatch(/at most 4 characters/);
  });

  it('enforces maxBytes in UTF-8 bytes, not characters', () => {
    const euro = '\u20ac'; // 3 bytes in UTF-8, 1 UTF-16 unit
    expect(Buffer.byteLength(euro)).toBe(3);
    expect(stringAt({ s: `a${euro}` }, 's', { maxBytes: 4 })).toBe(`a${euro}`);
    expect(stringAt({ s: euro }, 's', { maxBytes: 3 })).toBe(euro);
    expect(expectInvalid(() => stringAt({ s: euro }, 's', { maxBytes: 2 }), 's')).toMatch(/at most 2 bytes/);
    expect(expectInvalid(() => stringAt({ s: `ab${euro}` }, 's', { maxBytes: 4, maxLength: 10 }), 's')).toMatch(/at most 4 bytes/);
  });

  it('counts a 4-byte character (a surrogate pair) as 4 bytes', () => {
    const emoji = '\u{1F600}';
    expect(stringAt({ s: emoji }, 's', { maxBytes: 4 })).toBe(emoji);
    expectInvalid(() => stringAt({ s: emoji }, 's', { maxBytes: 3 }), 's');
  });

  it('checks the pattern and names the expected shape', () => {
    expect(stringAt({ s: 'abc' }, 's', { pattern: /^[a-z]+$/, shape: 'lower-case letters' })).toBe('abc');
    expect(expectInvalid(() => stringAt({ s: 'ABC' }, 's', { pattern: /^[a-z]+$/, shape: 'lower-case letters' }), 's')).toBe(
      's must be lower-case letters.',
    );
    expect(expectInvalid(() => stringAt({ s: 'ABC' }, 's', { pattern: /^[a-z]+$/ }), 's')).toMatch(/like \/\^\[a-z\]\+\$\//);
  });
});

describe('uuidAt', () => {
  it('accepts a UUID and lower-cases it', () => {
    expect(uuidAt({ id: 'A1B2C3D4-E5F6-4789-8ABC-DEF012345678' }, 'id')).toBe('a1b2c3d4-e5f6-4789-8abc-def012345678');
    expect(uuidAt({ id: '00000000-0000-4000-8000-000000000001' }, 'id')).toBe('00000000-0000-4000-8000-000000000001');
  });

  it.each([
    ['without dashes', 'a1b2c3d4e5f647898abcdef012345678'],
    ['in braces', '{a1b2c3d4-e5f6-4789-8abc-def012345678}'],
    ['with a non-hex digit', 'g1b2c3d4-e5f6-4789-8abc-def012345678'],
    ['one digit short', 'a1b2c3d4-e5f6-4789-8abc-def01234567'],
    ['with a trailing newline', 'a1b2c3d4-e5f6-4789-8abc-def012345678\n'],
  ])('refuses a UUID %s', (_label, id) => {
    expect(expectInvalid(() => uuidAt({ message_id: id }, 'message_id'), 'message_id')).toMatch(/a UUID|at most 36 characters/);
  });

  it('refuses a missing id', () => {
    expect(expectInvalid(() => uuidAt({}, 'message_id'), 'message_id')).toMatch(/required/);
  });
});

describe('isUuid', () => {
  it('accepts upper and lower case and refuses the rest', () => {
    expect(isUuid('A1B2C3D4-E5F6-4789-8ABC-DEF012345678')).toBe(true);
    expect(isUuid('a1b2c3d4-e5f6-4789-8abc-def012345678')).toBe(true);
    expect(isUuid('a1b2c3d4e5f647898abcdef012345678')).toBe(false);
    expect(isUuid(42)).toBe(false);
    expect(isUuid(undefined)).toBe(false);
  });
});

describe('addressAt', () => {
  it('accepts a 43-character base64url address', () => {
    expect(addressAt({ to: ADDRESS }, 'to')).toBe(ADDRESS);
  });

  it.each([
    ['too short', ADDRESS.slice(1)],
    ['too long', `${ADDRESS}A`],
    ['with "+"', `+${ADDRESS.slice(1)}`],
    ['with padding', `${ADDRESS.slice(1)}=`],
  ])('refuses an address %s', (_label, to) => {
    expect(expectInvalid(() => addressAt({ to }, 'to'), 'to')).toMatch(/address|characters/);
  });
});

describe('arrayAt', () => {
  it('returns an array within bounds', () => {
    expect(arrayAt({ items: [1] }, 'items', 3)).toEqual([1]);
    expect(arrayAt({ items: [1, 2, 3] }, 'items', 3)).toEqual([1, 2, 3]);
  });

  it('refuses an empty array', () => {
    expect(expectInvalid(() => arrayAt({ items: [] }, 'items', 3), 'items')).toMatch(/must not be empty/);
  });

  it('refuses too many items', () => {
    expect(expectInvalid(() => arrayAt({ items: [1, 2, 3, 4] }, 'items', 3), 'items')).toMatch(/at most 3 items/);
  });

  it.each<[string, unknown]>([
    ['missing', undefined],
    ['an object', { 0: 'a', length: 1 }],
    ['a string', 'abc'],
    ['null', null],
  ])('refuses a value that is %s', (_label, items) => {
    const fields = items === undefined ? {} : { items };
    expect(expectInvalid(() => arrayAt(fields, 'items', 3), 'items')).toMatch(/must be an array/);
  });
});

describe('integerParam', () => {
  it('gives the fallback when the parameter is absent', () => {
    expect(integerParam({}, 'limit', 1, 100, 20)).toBe(20);
  });

  it('accepts the bounds and values between', () => {
    expect(integerParam({ limit: '1' }, 'limit', 1, 100, 20)).toBe(1);
    expect(integerParam({ limit: '50' }, 'limit', 1, 100, 20)).toBe(50);
    expect(integerParam({ limit: '100' }, 'limit', 1, 100, 20)).toBe(100);
    expect(integerParam({ limit: '0' }, 'limit', 0, 100, 20)).toBe(0);
  });

  it.each<[string, unknown]>([
    ['below the minimum', '0'],
    ['above the maximum', '101'],
    ['negative', '-5'],
    ['a decimal', '2.5'],
    ['exponent notation', '1e2'],
    ['hexadecimal', '0x10'],
    ['with spaces', ' 5'],
    ['empty', ''],
    ['a word', 'ten'],
    ['repeated (an array)', ['5', '6']],
    ['a number rather than a string', 5],
  ])('refuses a value %s', (_label, limit) => {
    expect(expectInvalid(() => integerParam({ limit }, 'limit', 1, 100, 20), 'limit')).toBe('limit must be a whole number from 1 to 100.');
  });
});

describe('optionalParam', () => {
  it('gives undefined when absent or empty', () => {
    expect(optionalParam({}, 'cursor')).toBeUndefined();
    expect(optionalParam({ cursor: '' }, 'cursor')).toBeUndefined();
  });

  it('returns a string within the length', () => {
    expect(optionalParam({ cursor: 'abc' }, 'cursor', 3)).toBe('abc');
    expect(optionalParam({ cursor: 'x'.repeat(200) }, 'cursor')).toHaveLength(200);
  });

  it('refuses a string that is too long', () => {
    expectInvalid(() => optionalParam({ cursor: 'abcd' }, 'cursor', 3), 'cursor');
    expectInvalid(() => optionalParam({ cursor: 'x'.repeat(201) }, 'cursor'), 'cursor');
  });

  it('refuses a repeated parameter and a non-string', () => {
    expect(expectInvalid(() => optionalParam({ cursor: ['a', 'b'] }, 'cursor'), 'cursor')).toMatch(/one string/);
    expectInvalid(() => optionalParam({ cursor: { a: 'b' } }, 'cursor'), 'cursor');
  });
});

describe('decimalWithin', () => {
  it('reads digits up to the bound, exactly', () => {
    expect(decimalWithin('0', 10n)).toBe(0n);
    expect(decimalWithin('10', 10n)).toBe(10n);
    expect(decimalWithin('9223372036854775807', MAX_INT64)).toBe(MAX_INT64);
  });

  it.each(['11', '9223372036854775808', '9'.repeat(21), '', '1e3', '-1', '+1', '1.0', '0x1', ' 1', '1 ', 'Infinity', '١'])(
    'refuses %j for a bound of 10 or the largest bigint',
    (text) => {
      expect(decimalWithin(text, text.length > 2 ? MAX_INT64 : 10n)).toBeUndefined();
    },
  );
});
