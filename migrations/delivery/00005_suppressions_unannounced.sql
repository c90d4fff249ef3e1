-- +goose Up
-- The suppression list moved to topics.suppressions, where every instance reads it;
-- delivery_suppressions is now delivery's copy of it. The addresses it held before
-- are published to the topic once, at the module's next start, so that the other
-- instances of a split deployment learn them: these are the ones not yet published.
-- (IF NOT EXISTS and OR IGNORE: a database rewound to an earlier version, as the
-- upgrade tests do, runs it again.)
CREATE TABLE IF NOT EXISTS delivery_suppressions_unannounced (
    address TEXT PRIMARY KEY
);
INSERT OR IGNORE INTO delivery_suppressions_unannounced (address) SELECT address FROM delivery_suppressions;

-- +goose Down
DROP TABLE delivery_suppressions_unannounced;
