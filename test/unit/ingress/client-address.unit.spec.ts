import { clientAddress, proxyList } from '../../../src/ingress/auth-guards.js';

const request = (remoteAddress: string | undefined, forwardedFor?: string | string[]) => ({
  socket: { remoteAddress } as never,
  headers: forwardedFor === undefined ? {} : { 'x-forwarded-for': forwardedFor },
});

describe('clientAddress', () => {
  const proxies = proxyList(['10.0.0.0/8', '192.0.2.10', 'fd00::/8']);

  it('is the TCP peer without trusted proxies, whatever X-Forwarded-For says', () => {
    expect(clientAddress(request('203.0.113.7', '198.51.100.1'))).toBe('203.0.113.7');
    expect(clientAddress(request('203.0.113.7', '198.51.100.1'), proxyList([]))).toBe('203.0.113.7');
  });

  it('writes an IPv4-mapped IPv6 peer as IPv4', () => {
    expect(clientAddress(request('::ffff:203.0.113.7'))).toBe('203.0.113.7');
  });

  it('ignores X-Forwarded-For from a peer that is not a trusted proxy', () => {
    expect(clientAddress(request('203.0.113.7', '198.51.100.1'), proxies)).toBe('203.0.113.7');
  });

  it('takes the nearest untrusted hop behind trusted proxies, not what the client wrote before it', () => {
    // The client wrote "1.2.3.4"; the first proxy appended the client's real address; the second its own.
    expect(clientAddress(request('192.0.2.10', '1.2.3.4, 198.51.100.9, 10.1.2.3'), proxies)).toBe('198.51.100.9');
    expect(clientAddress(request('::ffff:10.9.9.9', ['1.2.3.4', '198.51.100.9']), proxies)).toBe('198.51.100.9');
    expect(clientAddress(request('fd00::1', '2001:db8::5'), proxies)).toBe('2001:db8::5');
  });

  it('stays with the last trusted hop when the header is missing, all trusted, or garbage', () => {
    expect(clientAddress(request('10.0.0.1'), proxies)).toBe('10.0.0.1');
    expect(clientAddress(request('10.0.0.1', '10.0.0.2'), proxies)).toBe('10.0.0.2');
    expect(clientAddress(request('10.0.0.1', 'not-an-address'), proxies)).toBe('10.0.0.1');
  });
});
