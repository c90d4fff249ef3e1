-- +goose Up
-- API keys created with `mailroom keys create` or POST /api/keys. The key itself is
-- never stored: only its SHA-256 (keys are 256 random bits, so a fast hash is
-- enough) and a short prefix of it, shown to tell keys apart and used to find the row.
CREATE TABLE apikeys_keys (
    id         TEXT PRIMARY KEY,          -- UUIDv7
    name       TEXT    NOT NULL,
    scope      TEXT    NOT NULL,          -- send | admin
    prefix     TEXT    NOT NULL,          -- the key's first characters, not secret
    hash       BLOB    NOT NULL,          -- SHA-256 of the whole key
    created_at INTEGER NOT NULL,          -- unix ms
    revoked_at INTEGER                    -- unix ms; a revoked key never works again
);
CREATE INDEX apikeys_keys_prefix ON apikeys_keys (prefix);

-- +goose Down
DROP TABLE apikeys_keys;
