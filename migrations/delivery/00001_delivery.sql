-- +goose Up
-- Where each email stands with delivery: which replay and attempt were last
-- recorded, so a redelivered SendEmail is recognised and acknowledged without a
-- second send.
CREATE TABLE delivery_state (
    email_id        TEXT PRIMARY KEY,
    replay          INTEGER NOT NULL,
    attempts        INTEGER NOT NULL,
    status          TEXT    NOT NULL,   -- retrying | sent | dead
    last_error      TEXT    NOT NULL DEFAULT '',
    last_reply      TEXT    NOT NULL DEFAULT '',
    error_class     TEXT    NOT NULL DEFAULT '',
    first_failed_at INTEGER,
    last_failed_at  INTEGER,
    updated_at      INTEGER NOT NULL
);

-- The message exactly as handed to the transport, for GET /api/emails/{id}/raw.
CREATE TABLE delivery_messages (
    email_id    TEXT PRIMARY KEY,
    message_id  TEXT    NOT NULL,
    raw         BLOB    NOT NULL,
    rendered_at INTEGER NOT NULL
);

-- +goose Down
DROP TABLE delivery_messages;
DROP TABLE delivery_state;
