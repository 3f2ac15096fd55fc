-- The mailbox topic's rows in one statement (src/projections/postgres-projector.ts).
--
-- Each statement the projector sent was a round trip, and a mailbox batch took seven (BEGIN, the
-- checkpoint's lock, the insert, the anchor lock, the anchor look, the checkpoint's move, COMMIT):
-- about 1.1 ms of CPU per batch between the projector and PostgreSQL, as much as 25 rows' inserts.
-- These functions hold the writes of the mailbox topic's events, so that a batch takes one.
--
-- Tables are named without a schema: they resolve through the caller's search_path, the schema
-- the projector works in, like the statements they replace.

-- New messages, deliveries and expiries, as planBatch (read-model.ts) folded them.
CREATE FUNCTION relay_write_mailbox(
    ids UUID[], senders TEXT[], receivers TEXT[], contents TEXT[], types TEXT[], shas TEXT[], sigs TEXT[],
    accepted_ms BIGINT[], parts INTEGER[], offs BIGINT[], expires_ms BIGINT[],
    delivered_ids UUID[], delivered_at TIMESTAMPTZ[], expired_ids UUID[], expired_at TIMESTAMPTZ[]
) RETURNS VOID LANGUAGE plpgsql AS $$
DECLARE
    anchored BOOLEAN;
BEGIN
    IF cardinality(ids) > 0 THEN
        -- A message id seen again keeps its first row.
        INSERT INTO messages (id, sender_address, receiver_address, encrypted_content, message_type, timestamp,
                              content_sha256, signature, accepted_at, kafka_partition, kafka_offset, expires_at)
        SELECT t.id, t.sender, t.receiver, t.content, t.type,
               to_timestamp(t.accepted / 1000.0::float8) AT TIME ZONE 'UTC', t.sha, t.sig,
               to_timestamp(t.accepted / 1000.0::float8), t.part, t.off, to_timestamp(t.expires / 1000.0::float8)
          FROM unnest(ids, senders, receivers, contents, types, shas, sigs, accepted_ms, parts, offs, expires_ms)
            AS t(id, sender, receiver, content, type, sha, sig, accepted, part, off, expires)
        ON CONFLICT (id) DO NOTHING;

        -- An anchor projected before its messages (the topics are read independently) left their
        -- places in message_anchors: fill them in now. The shared lock pairs with the anchor
        -- writer's exclusive one, so that of two concurrent transactions the later one sees the
        -- other's rows; each statement below takes its snapshot after the lock.
        PERFORM pg_advisory_xact_lock_shared(hashtext(current_schema() || ':relay.anchors'));
        -- Planned each time (EXECUTE): a plan cached while a table was small would go on scanning
        -- it whole as it grows. The update is rare (a rebuild, or a projector behind the
        -- anchoring), so a one-table look comes first.
        EXECUTE 'SELECT EXISTS (SELECT 1 FROM message_anchors WHERE message_id = ANY($1))' INTO anchored USING ids;
        IF anchored THEN
            EXECUTE 'UPDATE messages m
                        SET blockchain_txid = a.tx_hash, anchor_batch_id = a.batch_id, anchor_leaf_index = ma.leaf_index
                       FROM message_anchors ma JOIN anchors a ON a.batch_id = ma.batch_id
                      WHERE ma.message_id = ANY($1) AND m.id = ma.message_id AND m.anchor_batch_id IS NULL'
              USING ids;
        END IF;
    END IF;

    -- A message is settled once: an earlier delivery or expiry keeps it as it is.
    IF cardinality(delivered_ids) > 0 THEN
        EXECUTE 'UPDATE messages SET delivered = TRUE, delivered_at = d.at
                   FROM unnest($1, $2) AS d(id, at)
                  WHERE messages.id = d.id AND NOT messages.delivered AND NOT messages.expired'
          USING delivered_ids, delivered_at;
    END IF;
    IF cardinality(expired_ids) > 0 THEN
        EXECUTE 'UPDATE messages SET expired = TRUE, expired_at = d.at
                   FROM unnest($1, $2) AS d(id, at)
                  WHERE messages.id = d.id AND NOT messages.delivered AND NOT messages.expired'
          USING expired_ids, expired_at;
    END IF;
END
$$;

-- One mailbox batch as one transaction, when the caller knows where the partition's checkpoint
-- stands: it locks the checkpoint, and only if it still is `expected` writes the rows, moves it
-- to `next` and notifies `channel` (delivered at commit, like the projector's own notification).
-- Returns the checkpoint it found: `expected` when it applied the batch, anything else (NULL if
-- there is no checkpoint yet) when it wrote nothing and the caller must take the long way.
CREATE FUNCTION relay_apply_mailbox(
    channel TEXT, p_projection TEXT, p_topic TEXT, p_partition INTEGER, expected BIGINT, next BIGINT,
    ids UUID[], senders TEXT[], receivers TEXT[], contents TEXT[], types TEXT[], shas TEXT[], sigs TEXT[],
    accepted_ms BIGINT[], parts INTEGER[], offs BIGINT[], expires_ms BIGINT[],
    delivered_ids UUID[], delivered_at TIMESTAMPTZ[], expired_ids UUID[], expired_at TIMESTAMPTZ[]
) RETURNS BIGINT LANGUAGE plpgsql AS $$
DECLARE
    held BIGINT;
BEGIN
    SELECT next_offset INTO held FROM projection_checkpoints
     WHERE projection = p_projection AND topic = p_topic AND partition = p_partition
       FOR UPDATE;
    IF held IS DISTINCT FROM expected THEN
        RETURN held;
    END IF;
    PERFORM relay_write_mailbox(ids, senders, receivers, contents, types, shas, sigs, accepted_ms, parts, offs,
                                expires_ms, delivered_ids, delivered_at, expired_ids, expired_at);
    UPDATE projection_checkpoints SET next_offset = next, updated_at = now()
     WHERE projection = p_projection AND topic = p_topic AND partition = p_partition;
    PERFORM pg_notify(channel, format('%s %s %s %s %s', current_schema(), p_projection, p_topic, p_partition, next));
    RETURN held;
END
$$;
