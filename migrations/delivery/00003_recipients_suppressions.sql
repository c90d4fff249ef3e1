-- +goose Up
-- Recipients have outcomes of their own now: an email's failures are reported per
-- recipient (events) and its dead letter goes through the outbox, so delivery keeps
-- only which try of which replay it recorded last.
ALTER TABLE delivery_state DROP COLUMN last_error;
ALTER TABLE delivery_state DROP COLUMN last_reply;
ALTER TABLE delivery_state DROP COLUMN error_class;
ALTER TABLE delivery_state DROP COLUMN first_failed_at;
ALTER TABLE delivery_state DROP COLUMN last_failed_at;

-- The suppression list: addresses that get no mail (lower-cased as a whole). A hard
-- bounce adds one with the reply and the email; an operator adds or removes them.
CREATE TABLE delivery_suppressions (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    address    TEXT    NOT NULL UNIQUE,
    reason     TEXT    NOT NULL,
    detail     TEXT    NOT NULL DEFAULT '',
    email_id   TEXT    NOT NULL DEFAULT '',
    source     TEXT    NOT NULL,   -- bounce | operator
    created_at INTEGER NOT NULL
);

-- +goose Down
DROP TABLE delivery_suppressions;
ALTER TABLE delivery_state ADD COLUMN last_error TEXT NOT NULL DEFAULT '';
ALTER TABLE delivery_state ADD COLUMN last_reply TEXT NOT NULL DEFAULT '';
ALTER TABLE delivery_state ADD COLUMN error_class TEXT NOT NULL DEFAULT '';
ALTER TABLE delivery_state ADD COLUMN first_failed_at INTEGER;
ALTER TABLE delivery_state ADD COLUMN last_failed_at INTEGER;
