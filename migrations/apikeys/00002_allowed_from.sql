-- +goose Up
-- The senders a key may send as (`keys create --from-domain`, POST /api/keys
-- "allowed_from"): a JSON array of lower-case domains and addresses. NULL for a key
-- that may send as anyone, which every key made before this column is.
ALTER TABLE apikeys_keys ADD COLUMN allowed_from TEXT;

-- +goose Down
ALTER TABLE apikeys_keys DROP COLUMN allowed_from;
