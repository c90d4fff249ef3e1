-- +goose Up
-- The relay now plans rows by partition key itself (one in flight per key), so the
-- stored hash it used to split rows among workers is gone.
ALTER TABLE outbox DROP COLUMN key_hash;

-- +goose Down
ALTER TABLE outbox ADD COLUMN key_hash INTEGER NOT NULL DEFAULT 0;
