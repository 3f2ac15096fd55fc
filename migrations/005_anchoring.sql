-- Anchoring (docs/guides/anchoring.md).

-- Projected from relay.anchors.v1: one row per anchored batch, with the leaf hashes that let the
-- API compute any leaf's Merkle path.
CREATE TABLE anchors (
    batch_id UUID PRIMARY KEY,                    -- the AnchorCommitted event id
    root TEXT NOT NULL,
    tree_size INTEGER NOT NULL,
    chain_id BIGINT NOT NULL,
    contract TEXT NOT NULL,
    tx_hash TEXT NOT NULL,
    block_number BIGINT NOT NULL,
    block_hash TEXT NOT NULL,
    block_time TIMESTAMPTZ NOT NULL,
    leaf_hashes BYTEA NOT NULL,                   -- tree_size 32-byte hashes, in leaf order
    committed_at TIMESTAMPTZ NOT NULL
);

-- Each message's place in its tree. Kept apart from `messages` because the two topics are
-- projected independently: an anchor may be applied before the message rows it covers.
CREATE TABLE message_anchors (
    message_id UUID PRIMARY KEY,
    batch_id UUID NOT NULL,
    leaf_index INTEGER NOT NULL
);

ALTER TABLE messages ADD COLUMN anchor_batch_id UUID;
ALTER TABLE messages ADD COLUMN anchor_leaf_index INTEGER;

-- State of the anchor role, not projected from the log (a rebuild carries these tables over).
-- The contract each chain anchors to: deployed once by `relay setup`, or configured.
CREATE TABLE anchor_contracts (
    chain_id BIGINT PRIMARY KEY,
    genesis_hash TEXT NOT NULL,                   -- tells a restarted development chain from the one deployed to
    address TEXT NOT NULL,
    deploy_tx_hash TEXT,
    recorded_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The anchor role's write-ahead record: a batch is written here, with the log ranges it covers
-- and its root, before any transaction is sent for it, and every transaction sent for it is
-- added. After a crash the role rebuilds exactly this batch from the same ranges and finishes it
-- instead of anchoring those messages again in another tree.
CREATE TABLE anchor_batches (
    batch_id UUID PRIMARY KEY,
    consumer_group TEXT NOT NULL,
    mailbox_topic TEXT NOT NULL,
    ranges JSONB NOT NULL,                        -- [{partition, first_offset, next_offset}]
    root TEXT NOT NULL,
    tree_size INTEGER NOT NULL,
    chain_id BIGINT NOT NULL,
    contract TEXT NOT NULL,
    nonce BIGINT,
    tx_hashes TEXT[] NOT NULL DEFAULT '{}',
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    committed_at TIMESTAMPTZ                      -- set once AnchorCommitted is written
);
CREATE INDEX anchor_batches_open ON anchor_batches (consumer_group, created_at) WHERE committed_at IS NULL;
