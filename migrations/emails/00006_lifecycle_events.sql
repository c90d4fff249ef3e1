-- +goose Up
-- The timeline doubles as the lifecycle event feed (GET /api/events): an entry a
-- client hears of (accepted, scheduled, cancelled, delivered, deferred, bounced,
-- suppressed, sent, dead_lettered, replayed) gets a stable event_id, a UUIDv7, and
-- is published on topics.lifecycle in the transaction that records it. Entries of
-- other types (published, retry_scheduled, ...) keep a NULL event_id. The feed pages
-- by id, which grows in commit order. recipient is the address a per-recipient
-- entry is about; the detail no longer repeats it.
ALTER TABLE emails_events ADD COLUMN event_id TEXT;
ALTER TABLE emails_events ADD COLUMN recipient TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE emails_events DROP COLUMN recipient;
ALTER TABLE emails_events DROP COLUMN event_id;
