-- +goose Up
-- The rendered message travels back in the try's event (EmailAttempted.message)
-- to the instance that accepted the email, whose emails module keeps it
-- (emails_messages) and shows it at GET /api/emails/{id}/raw. Delivery read this
-- copy for nothing else: the Message-ID is made from the email id on every render,
-- and dead letters and replays carry the SendEmail, not the message. Messages
-- rendered before this version were copied into emails_messages by the emails
-- module's migration 00011 (migrations/emails_adopt_messages.go), which runs
-- first, where both modules share the database.
DROP TABLE delivery_messages;

-- +goose Down
CREATE TABLE delivery_messages (
    email_id     TEXT PRIMARY KEY,
    message_id   TEXT    NOT NULL,
    raw          BLOB    NOT NULL,
    rendered_at  INTEGER NOT NULL,
    owner_key_id TEXT    NOT NULL DEFAULT ''
);
