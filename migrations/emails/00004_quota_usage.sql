-- +goose Up
-- What each API key sent on each UTC day, for auth.quota_emails_per_day and
-- auth.quota_bytes_per_day: counted in the transaction that stores the email, so a
-- restart forgets nothing. Rows of past days are deleted by retention.
CREATE TABLE emails_quota_usage (
    api_key_id TEXT    NOT NULL,
    day        TEXT    NOT NULL,   -- YYYY-MM-DD, UTC
    emails     INTEGER NOT NULL,
    bytes      INTEGER NOT NULL,
    PRIMARY KEY (api_key_id, day)
) WITHOUT ROWID;

-- +goose Down
DROP TABLE emails_quota_usage;
