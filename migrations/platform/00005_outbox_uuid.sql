-- +goose Up
-- Outbox.Withdraw and Outbox.Reschedule find a waiting row by its message uuid (a
-- scheduled email cancelled or moved): without this index each would read the
-- whole outbox, scheduled rows included, on the database's one writer.
CREATE INDEX outbox_uuid ON outbox (uuid);

-- +goose Down
DROP INDEX outbox_uuid;
