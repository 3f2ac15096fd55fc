import { ConfigError, loadConfig } from '../../../src/config/config.js';
import { AppError } from '../../../src/errors/app-error.js';
import { expiresAtOf, LEGACY_LIFETIME_MS, messageExpiry } from '../../../src/events/lifetime.js';
import { requestedExpiry } from '../../../src/ingress/requested-expiry.js';

const NOW = Date.parse('2026-12-01T12:00:00Z');
const DAY_S = 86_400;

describe('messageExpiry', () => {
  it('gives the configured lifetime when the sender asks for nothing', () => {
    expect(messageExpiry(NOW, undefined, 30 * DAY_S)).toBe(NOW + 30 * DAY_S * 1000);
  });

  it('gives the sender the shorter lifetime it asks for', () => {
    expect(messageExpiry(NOW, NOW + 2000, 30 * DAY_S)).toBe(NOW + 2000);
  });

  it('never gives more than the configured lifetime', () => {
    expect(messageExpiry(NOW, NOW + 90 * DAY_S * 1000, 30 * DAY_S)).toBe(NOW + 30 * DAY_S * 1000);
  });
});

describe('expiresAtOf', () => {
  it('reads the expiry from the event', () => {
    expect(expiresAtOf({ occurred_at: NOW, expires_at: NOW + 5 })).toBe(NOW + 5);
  });

  it('gives events written before expiry existed 30 days, whatever the configuration says now', () => {
    expect(expiresAtOf({ occurred_at: NOW, expires_at: null })).toBe(NOW + LEGACY_LIFETIME_MS);
    expect(expiresAtOf({ occurred_at: NOW })).toBe(NOW + 30 * DAY_S * 1000);
  });
});

describe('requestedExpiry', () => {
  const refusal = (value: unknown): AppError => {
    try {
      requestedExpiry({ expires_at: value }, NOW);
    } catch (error) {
      return error as AppError;
    }
    throw new Error(`${JSON.stringify(value)} was accepted`);
  };

  it('is undefined when the request has none', () => {
    expect(requestedExpiry({}, NOW)).toBeUndefined();
    expect(requestedExpiry({ expires_at: null }, NOW)).toBeUndefined();
  });

  it('reads RFC 3339 times with any offset', () => {
    expect(requestedExpiry({ expires_at: '2026-12-01T12:00:02Z' }, NOW)).toBe(NOW + 2000);
    expect(requestedExpiry({ expires_at: '2026-12-01T13:00:00.5+01:00' }, NOW)).toBe(NOW + 500);
  });

  it.each([['2026-12-02'], ['2026-12-02T00:00:00'], ['tomorrow'], [1_900_000_000_000], ['2026-13-45T00:00:00Z']])(
    'refuses %p as not an RFC 3339 time',
    (value) => {
      const error = refusal(value);
      expect(error).toBeInstanceOf(AppError);
      expect(error.code).toBe('invalid_request');
      expect(error.message).toContain('RFC 3339');
    },
  );

  it('refuses a time that is not in the future', () => {
    for (const value of ['2026-12-01T12:00:00Z', '2026-11-30T12:00:00Z']) {
      const error = refusal(value);
      expect(error.code).toBe('invalid_request');
      expect(error.message).toBe('expires_at must be in the future.');
    }
  });
});

describe('expiry configuration', () => {
  it('defaults to 30 days of life, 7 days before the purge, 45 days of mailbox log and peers kept forever', () => {
    const config = loadConfig({});
    expect(config.expiry).toEqual({ messageTtlSeconds: 30 * DAY_S, purgeAfterSeconds: 7 * DAY_S });
    expect(config.retention).toEqual({ mailboxMs: 45 * DAY_S * 1000, peersMs: -1 });
  });

  it('refuses a mailbox retention shorter than a message lifetime plus the purge delay', () => {
    expect(() =>
      loadConfig({
        RELAY_MESSAGE_TTL_SECONDS: '100',
        RELAY_PURGE_AFTER_SECONDS: '20',
        RELAY_MAILBOX_RETENTION_MS: '119999',
      }),
    ).toThrow(ConfigError);
    expect(
      loadConfig({
        RELAY_MESSAGE_TTL_SECONDS: '100',
        RELAY_PURGE_AFTER_SECONDS: '20',
        RELAY_MAILBOX_RETENTION_MS: '120000',
      }).retention.mailboxMs,
    ).toBe(120_000);
    expect(loadConfig({ RELAY_MESSAGE_TTL_SECONDS: '100', RELAY_MAILBOX_RETENTION_MS: '-1' }).retention.mailboxMs).toBe(
      -1,
    );
  });
});
