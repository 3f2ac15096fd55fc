import {
  DependencyUnavailableError,
  failureKind,
  isDependencyFailure,
  OverloadedError,
  PoisonError,
} from '../../../src/errors/failure.js';
import { UndecodableEventError } from '../../../src/events/codec.js';
import { UnapplicableEventError } from '../../../src/kafka/consumer-service.js';
import { toAppError } from '../../../src/ingress/problem.js';

const pgError = (code: string) => Object.assign(new Error('refused'), { code });

describe('the failure policy', () => {
  it('takes the kind an error of the relay was raised with', () => {
    expect(failureKind(new UndecodableEventError('bad bytes'))).toBe('poison');
    expect(failureKind(new UnapplicableEventError('cannot apply'))).toBe('poison');
    expect(failureKind(new PoisonError('bad'))).toBe('poison');
    expect(failureKind(new DependencyUnavailableError('Kafka is away'))).toBe('retriable');
    expect(failureKind(new OverloadedError('full'))).toBe('retriable');
  });

  it('reads Postgres errors by SQLSTATE class: data (22) and constraint (23) errors are poison, the rest passing', () => {
    expect(failureKind(pgError('22P02'))).toBe('poison');
    expect(failureKind(pgError('23505'))).toBe('poison');
    expect(failureKind(pgError('40001'))).toBe('retriable');
    expect(failureKind(pgError('57P01'))).toBe('retriable');
    expect(failureKind(new Error('anything else'))).toBe('retriable');
    expect(failureKind(undefined)).toBe('retriable');
  });

  it('tells a dependency that is away from work it refuses', () => {
    expect(isDependencyFailure(pgError('08006'))).toBe(true);
    expect(isDependencyFailure(Object.assign(new Error('connect'), { code: 'ECONNREFUSED' }))).toBe(true);
    expect(isDependencyFailure(new Error('Connection terminated unexpectedly'))).toBe(true);
    expect(isDependencyFailure(pgError('23505'))).toBe(false);
  });

  it('maps the layers\u2019 own errors onto HTTP only at the edge', () => {
    const overloaded = toAppError(new OverloadedError('queue full', { retryAfterSeconds: 2 }));
    expect(overloaded).toMatchObject({ code: 'overloaded', status: 503, extensions: { retry_after: 2 } });
    expect(overloaded.message).not.toMatch(/queue/);
    const away = toAppError(
      new DependencyUnavailableError('Kafka did not acknowledge the event; retry with the same message id.'),
    );
    expect(away).toMatchObject({ code: 'dependency_unavailable', status: 503, extensions: { retry_after: 1 } });
  });
});
