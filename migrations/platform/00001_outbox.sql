-- +goose Up
-- The transactional outbox: rows written in the same transaction as the business
-- change, published by outbox.Relay, deleted once the broker accepted them. Rows keep
-- Watermill's message shape (uuid, payload, metadata).
CREATE TABLE outbox (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid          TEXT    NOT NULL,
    topic         TEXT    NOT NULL,
    partition_key TEXT    NOT NULL,
    key_hash      INTEGER NOT NULL,
    payload       BLOB    NOT NULL,
    metadata      TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,  -- unix milliseconds
    available_at  INTEGER NOT NULL   -- unix milliseconds; not published before
);
CREATE INDEX outbox_due ON outbox (available_at, id);

-- +goose Down
DROP TABLE outbox;
