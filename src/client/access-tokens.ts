import { unexpected } from './errors.js';
import type { HttpTransport } from './http-transport.js';
import type { PeerIdentity } from './identity.js';

interface Challenge {
  readonly nonce: string;
  readonly expires_at?: string;
}

interface TokenAnswer {
  readonly access_token: string;
  readonly token_type: string;
  readonly expires_in: number;
}

interface HeldToken {
  readonly value: string;
  /** Epoch ms after which the token is refreshed (ahead of its real expiry). */
  readonly refreshAt: number;
}

/**
 * Address-bound access tokens: proves control of the signing key by signing the relay's nonce
 * (`POST /api/v1/auth/challenge`, then `POST /api/v1/auth/token`), holds the token, and fetches a
 * new one before the old one runs out, so a request never leaves with a token about to expire.
 */
export class AccessTokens {
  private held: HeldToken | undefined;
  private pending: Promise<HeldToken> | undefined;

  constructor(
    private readonly transport: HttpTransport,
    private readonly identity: PeerIdentity,
    private readonly options: {
      /** Refresh this many seconds before expiry (capped at half the lifetime); default 60. */
      readonly refreshMarginSeconds?: number | undefined;
      readonly now?: (() => number) | undefined;
    } = {},
  ) {}

  /** A token valid for a while yet: the one held, or a new one. Concurrent callers share one fetch. */
  async bearer(): Promise<string> {
    const now = this.now();
    if (this.held && now < this.held.refreshAt) return this.held.value;
    this.pending ??= this.obtain().finally(() => {
      this.pending = undefined;
    });
    this.held = await this.pending;
    return this.held.value;
  }

  /** Forgets the held token, e.g. after the relay refused it. */
  invalidate(): void {
    this.held = undefined;
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }

  private async obtain(): Promise<HeldToken> {
    const address = this.identity.address;
    const challenge = await this.transport.request<Challenge>('POST', '/auth/challenge', { body: { address } });
    if (typeof challenge.nonce !== 'string' || challenge.nonce === '')
      throw unexpected('The auth challenge has no "nonce".');
    const proof = await this.identity.sign({ address, nonce: challenge.nonce, iat: Math.floor(this.now() / 1000) });
    const issuedAt = this.now();
    const answer = await this.transport.request<TokenAnswer>('POST', '/auth/token', { body: { proof } });
    if (typeof answer.access_token !== 'string' || answer.access_token === '')
      throw unexpected('The token answer has no "access_token".');
    if (typeof answer.token_type !== 'string' || answer.token_type.toLowerCase() !== 'bearer') {
      throw unexpected(`The token type is ${String(answer.token_type)}, not Bearer.`);
    }
    if (typeof answer.expires_in !== 'number' || !(answer.expires_in > 0))
      throw unexpected('The token answer has no positive "expires_in".');
    // Measured from before the request went out, so network time only ever shortens our view.
    const margin = Math.min(this.options.refreshMarginSeconds ?? 60, answer.expires_in / 2);
    return { value: answer.access_token, refreshAt: issuedAt + (answer.expires_in - margin) * 1000 };
  }
}
