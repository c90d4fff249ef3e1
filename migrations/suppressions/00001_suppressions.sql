-- +goose Up
-- The suppressions module's copy of the suppression list, which lives on
-- topics.suppressions: addresses that get no mail (lower-cased as a whole), with
-- why and since when. An operator's change is written here with its record in the
-- outbox; every record of the topic (a hard bounce from delivery, another
-- instance's change) is applied here. id is the order this table learnt of an
-- address: the list pages by it, newest first.
CREATE TABLE suppressions_list (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    address    TEXT    NOT NULL UNIQUE,
    reason     TEXT    NOT NULL,
    detail     TEXT    NOT NULL DEFAULT '',
    email_id   TEXT    NOT NULL DEFAULT '',
    source     TEXT    NOT NULL,   -- bounce | operator
    created_at INTEGER NOT NULL
);

-- Addresses adopted from the delivery module's list by the next migration, whose
-- records the module has yet to publish to the topic (once, at its next start).
CREATE TABLE suppressions_unannounced (
    address TEXT PRIMARY KEY
);

-- +goose Down
DROP TABLE suppressions_unannounced;
DROP TABLE suppressions_list;
