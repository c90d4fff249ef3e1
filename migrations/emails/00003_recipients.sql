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

-- Whether the email's letter is parked in the dead letters (until a replay): an
-- email that reached nobody is "dead" only once it is, so that "dead" always has a
-- letter to replay.
ALTER TABLE emails_emails ADD COLUMN dead_lettered INTEGER NOT NULL DEFAULT 0;
UPDATE emails_emails SET dead_lettered = 1 WHERE status = 'dead';

-- +goose Down
ALTER TABLE emails_emails DROP COLUMN dead_lettered;
ALTER TABLE emails_emails DROP COLUMN outcome;
DROP TABLE emails_recipients;
