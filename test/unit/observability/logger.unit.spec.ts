import { recordingLogger } from '../../helpers/recording-logger.js';

describe('the logger', () => {
  it('writes one JSON line with the level name, an ISO time, the message, the bindings and the fields', () => {
    const { log, entries, lines } = recordingLogger('info');
    log.child({ service: 'relay' }).info({ records: 3 }, 'sent');
    expect(lines).toHaveLength(1);
    expect(lines[0]?.endsWith('\n')).toBe(true);
    expect(entries[0]).toMatchObject({ level: 'info', message: 'sent', service: 'relay', records: 3 });
    expect(new Date(entries[0]?.['time'] as string).toISOString()).toBe(entries[0]?.['time']);
  });

  it('leaves out levels below its own', () => {
    const { log, entries } = recordingLogger('warn');
    log.debug('not written');
    log.info('not written');
    log.warn('written');
    log.error('written');
    expect(entries.map((entry) => entry.level)).toEqual(['warn', 'error']);
  });

  it('serialises an error under err with its type, message, stack and cause', () => {
    const { log, entries } = recordingLogger();
    const cause = new Error('connection refused');
    log.error({ err: new TypeError('apply failed', { cause }) }, 'event dead-lettered');
    const err = entries[0]?.['err'] as Record<string, unknown>;
    expect(err).toMatchObject({ type: 'TypeError', message: expect.stringContaining('apply failed') as unknown });
    expect(err['stack']).toEqual(expect.stringContaining('caused by: Error: connection refused'));
  });

  it("writes [Redacted] for API keys, tokens, signatures, credentials in headers and the config's secrets", () => {
    const { log, lines, entries } = recordingLogger();
    const secrets = [
      'rk_live_secret',
      'eyJ.token.secret',
      '0xsignaturesecret',
      'Bearer headersecret',
      'keyheadersecret',
      'saslsecret',
      '0xprivatekeysecret',
      'postgres://relay:dbsecret@db/relay',
      'redis://:redissecret@cache',
    ];
    log.warn(
      {
        apiKey: secrets[0],
        token: secrets[1],
        signature: secrets[2],
        req: { headers: { authorization: secrets[3], 'x-api-key': secrets[4], 'content-type': 'application/json' } },
        config: {
          kafkaSecurity: { sasl: { username: 'relay', password: secrets[5] } },
          anchor: { privateKey: secrets[6] },
          postgres: { url: secrets[7] },
          redis: { url: secrets[8] },
        },
        peer: { token: 'nested', address: '0xabc' },
      },
      'credentials in the fields',
    );
    for (const secret of secrets) expect(lines[0]).not.toContain(secret);
    expect(entries[0]).toMatchObject({
      apiKey: '[Redacted]',
      token: '[Redacted]',
      signature: '[Redacted]',
      req: { headers: { authorization: '[Redacted]', 'x-api-key': '[Redacted]', 'content-type': 'application/json' } },
      config: {
        kafkaSecurity: { sasl: { username: 'relay', password: '[Redacted]' } },
        anchor: { privateKey: '[Redacted]' },
        postgres: { url: '[Redacted]' },
        redis: { url: '[Redacted]' },
      },
      peer: { token: '[Redacted]', address: '0xabc' },
    });
  });
});
