-- +goose Up
-- Each email's envelope recipients, each with its own outcome (pending, delivered,
-- deferred, bounced, suppressed, failed), kept from delivery's events. position keeps
-- the to, cc, bcc order. Emails accepted before this table existed have no rows.
CREATE TABLE emails_recipients (
    email_id   TEXT    NOT NULL REFERENCES emails_emails (id),
    position   INTEGER NOT NULL,
    address    TEXT    NOT NULL,
    type       TEXT    NOT NULL,   -- to | cc | bcc
    status     TEXT    NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    detail     TEXT    NOT NULL DEFAULT '',
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (email_id, address)
) WITHOUT ROWID;

-- What the recipients sum up to: pending, complete, partial or none ('' for emails
-- from before), so a list shows an email sent to only some recipients as such.
ALTER TABLE emails_emails ADD COLUMN outcome TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE emails_emails DROP COLUMN outcome;
DROP TABLE emails_recipients;
