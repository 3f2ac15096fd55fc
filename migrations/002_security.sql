-- API keys for service authentication. Only a SHA-256 hash of each key's secret is stored: the
-- secrets are 256 random bits, so a slow password hash would add latency and no strength.
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,                          -- the public part of the key, shown in listings
    name TEXT NOT NULL,
    secret_sha256 BYTEA NOT NULL,
    scopes TEXT[] NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    revoked_at TIMESTAMPTZ
);

-- The keys the ingress signs access tokens with. Several are valid at once so a rotation logs
-- nobody out: tokens are signed with the newest and verified with any key not yet retired.
CREATE TABLE token_signing_keys (
    kid TEXT PRIMARY KEY,
    private_jwk JSONB NOT NULL,
    public_jwk JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    retired_at TIMESTAMPTZ
);
