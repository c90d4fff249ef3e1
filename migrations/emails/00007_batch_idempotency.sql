-- +goose Up
-- The answer to a batch (POST /api/emails/batch) sent with an Idempotency-Key: its
-- items, [{"id", "status"}] in the batch's order, so that the same request again is
-- answered with every item it first got. NULL for a key of one email, whose answer
-- is email_id and status. A batch's row keeps its first item in email_id.
ALTER TABLE emails_idempotency ADD COLUMN items TEXT;

-- +goose Down
ALTER TABLE emails_idempotency DROP COLUMN items;
