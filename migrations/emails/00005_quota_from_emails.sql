-- +goose Up
-- Quotas are counted from the emails themselves (adapters.quotaBook): each email
-- keeps its size, and a key's emails of a day are found by this index. The
-- per-day count table, an extra write in every accepting transaction, goes.
ALTER TABLE emails_emails ADD COLUMN size INTEGER NOT NULL DEFAULT 0;
CREATE INDEX emails_emails_key_created ON emails_emails (api_key_id, created_at);
DROP TABLE emails_quota_usage;

-- +goose Down
CREATE TABLE emails_quota_usage (
    api_key_id TEXT    NOT NULL,
    day        TEXT    NOT NULL,
    emails     INTEGER NOT NULL,
    bytes      INTEGER NOT NULL,
    PRIMARY KEY (api_key_id, day)
) WITHOUT ROWID;
DROP INDEX emails_emails_key_created;
ALTER TABLE emails_emails DROP COLUMN size;
