-- +goose Up
-- This database's instance id, made once, here, at random: the same database keeps
-- its id across restarts, and two databases never share one. Instances on one Kafka
-- cluster each read the events and dead-letter topics in consumer groups named after
-- it, and each SendEmail the instance accepts carries it as its origin. One row.
CREATE TABLE platform_instance (
    slot INTEGER PRIMARY KEY CHECK (slot = 1),
    id   TEXT    NOT NULL CHECK (length(id) > 0)
);
INSERT INTO platform_instance (slot, id) VALUES (1, lower(hex(randomblob(8))));

-- +goose Down
DROP TABLE platform_instance;
