import { Type, type Static } from '@sinclair/typebox';
import { Address, Timestamp } from './primitives.js';

export const MAX_PROOF = 4096;

export const ChallengeRequest = Type.Object({ address: Address }, { $id: 'ChallengeRequest' });
export const Challenge = Type.Object(
  { nonce: Type.String({ minLength: 1, maxLength: 64 }), expires_at: Timestamp },
  { $id: 'Challenge' },
);
export type Challenge = Static<typeof Challenge>;

export const TokenRequest = Type.Object(
  { proof: Type.String({ minLength: 1, maxLength: MAX_PROOF }) },
  { $id: 'TokenRequest' },
);
export const AccessToken = Type.Object(
  { access_token: Type.String(), token_type: Type.Literal('Bearer'), expires_in: Type.Integer({ minimum: 1 }) },
  { $id: 'AccessToken' },
);
export type AccessToken = Static<typeof AccessToken>;

/** The public keys access tokens are verified with (/.well-known/jwks.json). */
export const Jwks = Type.Object(
  {
    keys: Type.Array(
      Type.Object(
        { kty: Type.String(), kid: Type.String(), alg: Type.Literal('EdDSA'), use: Type.Literal('sig') },
        { additionalProperties: true },
      ),
    ),
  },
  { $id: 'Jwks' },
);
