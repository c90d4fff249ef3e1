-- +goose Up
-- Webhook endpoints made with POST /api/webhooks or `mailroom webhooks create`. The
-- secret is stored as given to the client ("whsec_" + base64): signing needs it, so
-- it cannot be a hash. events is a JSON array of lifecycle event types.
CREATE TABLE webhooks_endpoints (
    id                   TEXT PRIMARY KEY,          -- UUIDv7
    url                  TEXT    NOT NULL,
    events               TEXT    NOT NULL,          -- JSON array of event types
    description          TEXT    NOT NULL,
    secret               TEXT    NOT NULL,
    enabled              INTEGER NOT NULL,          -- 1 | 0
    disabled_reason      TEXT    NOT NULL,          -- '' while enabled
    consecutive_failures INTEGER NOT NULL,          -- failed tries since the last success
    failing_since        INTEGER,                   -- unix ms of the first of them
    created_at           INTEGER NOT NULL,          -- unix ms
    updated_at           INTEGER NOT NULL           -- unix ms
);

-- Each lifecycle event at least one endpoint subscribed to, stored once: payload
-- is the message's bytes as received, POSTed unchanged on every try.
CREATE TABLE webhooks_events (
    id         TEXT PRIMARY KEY,                    -- the event id (webhook-id)
    type       TEXT    NOT NULL,
    payload    BLOB    NOT NULL,
    created_at INTEGER NOT NULL                     -- unix ms, when stored here
);
CREATE INDEX webhooks_events_created ON webhooks_events (created_at);

-- One row per endpoint and event: (endpoint_id, event_id) is unique, so a
-- redelivered lifecycle message adds nothing. The last_* columns describe the
-- latest try.
CREATE TABLE webhooks_deliveries (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    endpoint_id      TEXT    NOT NULL REFERENCES webhooks_endpoints (id) ON DELETE CASCADE,
    event_id         TEXT    NOT NULL REFERENCES webhooks_events (id),
    event_type       TEXT    NOT NULL,
    status           TEXT    NOT NULL,              -- pending | succeeded | failed
    attempts         INTEGER NOT NULL,
    next_attempt_at  INTEGER NOT NULL,              -- unix ms; meaningful while pending
    last_status_code INTEGER,
    last_duration_ms INTEGER,
    last_response    TEXT    NOT NULL,
    last_error       TEXT    NOT NULL,
    created_at       INTEGER NOT NULL,              -- unix ms
    updated_at       INTEGER NOT NULL,              -- unix ms
    UNIQUE (endpoint_id, event_id)
);
CREATE INDEX webhooks_deliveries_due ON webhooks_deliveries (endpoint_id, status, next_attempt_at);
CREATE INDEX webhooks_deliveries_endpoint ON webhooks_deliveries (endpoint_id, id);
CREATE INDEX webhooks_deliveries_event ON webhooks_deliveries (event_id);
CREATE INDEX webhooks_deliveries_updated ON webhooks_deliveries (updated_at);

-- +goose Down
DROP TABLE webhooks_deliveries;
DROP TABLE webhooks_events;
DROP TABLE webhooks_endpoints;
