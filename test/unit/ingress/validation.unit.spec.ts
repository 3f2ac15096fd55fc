import { AppError } from '../../../src/errors/app-error.js';
import { decimalWithin, MAX_INT64 } from '../../../src/api/cursors.js';
import { integerParam, invalid, optionalParam } from '../../../src/ingress/validation.js';
import { expectAppError } from '../../helpers/errors.js';

/** Runs `fn`, expects a 400 invalid_request naming `field`, and returns its message. */
function expectInvalid(fn: () => unknown, field: string): string {
  const error = expectAppError(fn, 'invalid_request', 400);
  expect(error.extensions['field']).toBe(field);
  return error.message;
}

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
    expect(expectInvalid(() => integerParam({ limit }, 'limit', 1, 100, 20), 'limit')).toBe(
      'limit must be a whole number from 1 to 100.',
    );
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

  it.each([
    '11',
    '9223372036854775808',
    '9'.repeat(21),
    '',
    '1e3',
    '-1',
    '+1',
    '1.0',
    '0x1',
    ' 1',
    '1 ',
    'Infinity',
    '١',
  ])('refuses %j for a bound of 10 or the largest bigint', (text) => {
    expect(decimalWithin(text, text.length > 2 ? MAX_INT64 : 10n)).toBeUndefined();
  });
});
