-- +goose Up
-- One row per message that reached topics.dead_letter. dedupe_key (email id and
-- replay, or the message id of an unreadable payload) makes a redelivered dead
-- letter a no-op.
CREATE TABLE deadletters_letters (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    dedupe_key         TEXT    NOT NULL UNIQUE,
    email_id           TEXT    NOT NULL,
    replay             INTEGER NOT NULL,
    status             TEXT    NOT NULL,   -- parked | replayed | discarded
    reason             TEXT    NOT NULL,
    error_class        TEXT    NOT NULL,
    attempts           INTEGER NOT NULL,
    smtp_reply         TEXT    NOT NULL,
    original_topic     TEXT    NOT NULL,
    original_partition INTEGER,
    original_offset    INTEGER,
    consumer_group     TEXT    NOT NULL,
    handler            TEXT    NOT NULL,
    first_failed_at    INTEGER,
    last_failed_at     INTEGER,
    payload            BLOB    NOT NULL,
    metadata           TEXT    NOT NULL,
    created_at         INTEGER NOT NULL,
    resolved_at        INTEGER
);
CREATE INDEX deadletters_letters_status ON deadletters_letters (status, id);
CREATE INDEX deadletters_letters_email ON deadletters_letters (email_id, id);

-- +goose Down
DROP TABLE deadletters_letters;
