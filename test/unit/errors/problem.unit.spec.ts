import { AppError } from '../../../src/errors/app-error.js';
import { ERROR_CODES, type ErrorCode } from '../../../src/errors/codes.js';
import { PROBLEM_CONTENT_TYPE, problemOf, toAppError } from '../../../src/ingress/problem.js';

describe('problemOf', () => {
  it('gives the type URN, title, status, detail and code', () => {
    const problem = problemOf(new AppError('peer_not_found', 'No peer is registered at X.'));
    expect(problem).toEqual({
      type: 'urn:relay:error:peer_not_found',
      title: ERROR_CODES.peer_not_found.title,
      status: 404,
      detail: 'No peer is registered at X.',
      code: 'peer_not_found',
    });
  });

  it('spreads the extensions as top-level members', () => {
    const problem = problemOf(
      new AppError('invalid_request', 'to must be an address.', { extensions: { field: 'to', limit: 3 } }),
    );
    expect(problem.type).toBe('urn:relay:error:invalid_request');
    expect(problem.status).toBe(400);
    expect(problem['field']).toBe('to');
    expect(problem['limit']).toBe(3);
  });

  it.each(Object.keys(ERROR_CODES) as ErrorCode[])('matches the code table for %s', (code) => {
    const problem = problemOf(new AppError(code, 'detail'));
    expect(problem.type).toBe(`urn:relay:error:${code}`);
    expect(problem.title).toBe(ERROR_CODES[code].title);
    expect(problem.status).toBe(ERROR_CODES[code].status);
    expect(problem.code).toBe(code);
  });

  it('survives JSON serialisation without a stack or cause', () => {
    const error = new AppError('internal_error', 'failed', { cause: new Error('secret db password') });
    const json = JSON.stringify(problemOf(error));
    expect(json).not.toMatch(/secret/);
    expect(json).not.toMatch(/stack/);
    expect(JSON.parse(json)).toMatchObject({ code: 'internal_error', status: 500 });
  });

  it('uses the problem+json media type', () => {
    expect(PROBLEM_CONTENT_TYPE).toBe('application/problem+json');
  });
});

describe('toAppError', () => {
  it('passes an AppError through unchanged', () => {
    const error = new AppError('overloaded', 'busy', { extensions: { retry_after: 2 } });
    expect(toAppError(error)).toBe(error);
  });

  it('maps a body-parser parse failure onto malformed_json (400)', () => {
    const parseError = Object.assign(new SyntaxError('Unexpected token } in JSON at position 7'), {
      type: 'entity.parse.failed',
      status: 400,
    });
    const error = toAppError(parseError);
    expect(error).toBeInstanceOf(AppError);
    expect(error.code).toBe('malformed_json');
    expect(error.status).toBe(400);
    expect(error.message).toMatch(/not valid JSON/);
    expect(toAppError({ type: 'entity.parse.failed' }).code).toBe('malformed_json');
  });

  it('maps a body-parser size failure onto payload_too_large (413) with the limit', () => {
    const error = toAppError({ type: 'entity.too.large', limit: 10 });
    expect(error.code).toBe('payload_too_large');
    expect(error.status).toBe(413);
    expect(error.extensions['limit']).toBe(10);
    expect(error.message).toMatch(/10 bytes/);
    expect(problemOf(error)['limit']).toBe(10);
  });

  it.each(['encoding.unsupported', 'charset.unsupported'])('maps %s onto unsupported_media_type (415)', (type) => {
    const error = toAppError({ type });
    expect(error.code).toBe('unsupported_media_type');
    expect(error.status).toBe(415);
  });

  it.each<[string, unknown]>([
    ['a plain Error', new Error('connect ECONNREFUSED 10.0.0.5:5432 password=hunter2')],
    ['an object with an unknown type', { type: 'entity.verify.failed', message: 'hunter2' }],
    ['a string', 'hunter2'],
    ['a number', 42],
  ])('maps %s onto internal_error (500) without leaking its message', (_label, original) => {
    const error = toAppError(original);
    expect(error.code).toBe('internal_error');
    expect(error.status).toBe(500);
    expect(error.message).not.toMatch(/hunter2|ECONNREFUSED/);
    expect(JSON.stringify(problemOf(error))).not.toMatch(/hunter2|ECONNREFUSED/);
    expect(error.cause).toBe(original);
  });
});

describe('toAppError for a dependency that does not answer', () => {
  it.each([
    ['a refused connection', Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' })],
    [
      'Postgres shutting down (57P01)',
      Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' }),
    ],
    ['a Postgres connection exception (08006)', Object.assign(new Error('connection failure'), { code: '08006' })],
    [
      'ioredis giving up',
      Object.assign(new Error('Reached the max retries per request limit'), { name: 'MaxRetriesPerRequestError' }),
    ],
  ])('maps %s to 503 dependency_unavailable', (_name, error) => {
    const mapped = toAppError(error);
    expect(mapped.code).toBe('dependency_unavailable');
    expect(mapped.status).toBe(503);
    expect(mapped.retriable).toBe(true);
  });

  it('keeps a data error (22P02) internal rather than blaming a dependency', () => {
    expect(toAppError(Object.assign(new Error('invalid input syntax for type uuid'), { code: '22P02' })).code).toBe(
      'internal_error',
    );
  });
});
