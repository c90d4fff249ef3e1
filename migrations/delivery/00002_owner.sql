-- +goose Up
-- The API key that sent each email, carried on SendEmail, so /raw is shown to that
-- key (and admins) only without asking another module.
ALTER TABLE delivery_messages ADD COLUMN owner_key_id TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE delivery_messages DROP COLUMN owner_key_id;
