-- The read model projected from the event log. The specification's `messages` and `peers`
-- columns are kept as they are; the added ones carry what the log knows (hashes, signatures,
-- delivery times and each row's place in the log).

CREATE TABLE messages (
    id UUID PRIMARY KEY,
    sender_address VARCHAR(255) NOT NULL,
    receiver_address VARCHAR(255) NOT NULL,
    encrypted_content TEXT NOT NULL,
    message_type VARCHAR(50) NOT NULL,
    timestamp TIMESTAMP NOT NULL,                 -- when accepted, UTC
    delivered BOOLEAN NOT NULL DEFAULT FALSE,
    blockchain_txid VARCHAR(255),
    content_sha256 TEXT NOT NULL,
    signature TEXT NOT NULL,
    accepted_at TIMESTAMPTZ NOT NULL,
    delivered_at TIMESTAMPTZ,
    expires_at TIMESTAMPTZ,
    expired BOOLEAN NOT NULL DEFAULT FALSE,
    kafka_partition INTEGER NOT NULL,
    kafka_offset BIGINT NOT NULL
);

-- A mailbox read walks one recipient's undelivered messages in log order (all of a recipient's
-- messages share one partition, keyed by its address).
CREATE INDEX messages_mailbox ON messages (receiver_address, kafka_partition, kafka_offset)
    WHERE NOT delivered AND NOT expired;

CREATE TABLE peers (
    address VARCHAR(255) PRIMARY KEY,
    public_key TEXT NOT NULL,                     -- the signing JWK, as JSON
    last_seen TIMESTAMP,
    is_online BOOLEAN NOT NULL DEFAULT FALSE,
    connection_info JSONB NOT NULL DEFAULT '{}',
    encryption_key JSONB NOT NULL,
    registration TEXT NOT NULL,                   -- the JWS the peer signed
    registered_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    kafka_partition INTEGER NOT NULL,
    kafka_offset BIGINT NOT NULL
);

-- Written in the same transaction as the rows it covers: after a crash the projection resumes
-- exactly where its last committed transaction ended.
CREATE TABLE projection_checkpoints (
    projection TEXT NOT NULL,
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    next_offset BIGINT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (projection, topic, partition)
);
