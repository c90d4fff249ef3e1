-- +goose Up
-- Each email's message as delivery last rendered and sent it, carried back in the
-- try's event (EmailAttempted.message) from whichever instance sent it, for
-- GET /api/emails/{id}/raw on the instance that accepted the email. No row until
-- a try rendered the email; deleted with the email.
CREATE TABLE emails_messages (
    email_id    TEXT PRIMARY KEY,
    message_id  TEXT    NOT NULL,
    raw         BLOB    NOT NULL,
    rendered_at INTEGER NOT NULL   -- unix ms: when the try that rendered it ended
);

-- +goose Down
DROP TABLE emails_messages;
