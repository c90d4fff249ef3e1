-- +goose Up
-- One row that /readyz rewrites: proof that the database can still commit a write
-- (a full disk or a read-only file fails it), which a read cannot show.
CREATE TABLE platform_health (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    checked_at INTEGER NOT NULL  -- unix milliseconds
);

-- +goose Down
DROP TABLE platform_health;
