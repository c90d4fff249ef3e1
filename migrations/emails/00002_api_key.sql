-- +goose Up
-- The API key that sent each email (apikeys_keys.id, or config-N for a key of
-- auth.api_keys): a send-scope key reads only its own emails. NULL for emails
-- accepted before keys existed, which only admin keys read.
ALTER TABLE emails_emails ADD COLUMN api_key_id TEXT;
CREATE INDEX emails_emails_api_key ON emails_emails (api_key_id, id);

-- +goose Down
DROP INDEX emails_emails_api_key;
ALTER TABLE emails_emails DROP COLUMN api_key_id;
