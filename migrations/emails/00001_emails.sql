-- +goose Up
CREATE TABLE emails_emails (
    id              TEXT PRIMARY KEY,          -- UUIDv7: sorts by creation time
    status          TEXT    NOT NULL,
    from_addr       TEXT    NOT NULL,
    to_addrs        TEXT    NOT NULL,          -- JSON arrays
    cc_addrs        TEXT    NOT NULL,
    bcc_addrs       TEXT    NOT NULL,
    reply_to        TEXT    NOT NULL,
    subject         TEXT    NOT NULL,
    text_body       TEXT    NOT NULL,
    html_body       TEXT    NOT NULL,
    tags            TEXT    NOT NULL,
    metadata        TEXT    NOT NULL,          -- JSON object
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT    NOT NULL DEFAULT '',
    next_attempt_at INTEGER,                   -- unix ms, while retrying
    correlation_id  TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,          -- unix ms
    updated_at      INTEGER NOT NULL,
    sent_at         INTEGER,
    send_at         INTEGER
);
CREATE INDEX emails_emails_status ON emails_emails (status, id);

CREATE TABLE emails_tags (
    email_id TEXT NOT NULL REFERENCES emails_emails (id),
    tag      TEXT NOT NULL,
    PRIMARY KEY (tag, email_id)
) WITHOUT ROWID;

-- The timeline of each email. source_id is the id of the message that caused the
-- entry, so a redelivered event is recorded once.
CREATE TABLE emails_events (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    email_id  TEXT    NOT NULL REFERENCES emails_emails (id),
    type      TEXT    NOT NULL,
    at        INTEGER NOT NULL,
    detail    TEXT    NOT NULL,
    source_id TEXT    UNIQUE
);
CREATE INDEX emails_events_email ON emails_events (email_id, id);

-- Idempotency-Key answers, kept 24 hours.
CREATE TABLE emails_idempotency (
    key          TEXT PRIMARY KEY,
    request_hash TEXT    NOT NULL,
    email_id     TEXT    NOT NULL,
    status       TEXT    NOT NULL,
    created_at   INTEGER NOT NULL
);
CREATE INDEX emails_idempotency_created ON emails_idempotency (created_at);

-- +goose Down
DROP TABLE emails_idempotency;
DROP TABLE emails_events;
DROP TABLE emails_tags;
DROP TABLE emails_emails;
