-- +goose Up
-- The list's recipient filter (GET /api/emails?recipient=) finds an address's
-- emails by this index, as emails_recipients stores the address (domain
-- lower-cased), in to, cc and bcc alike.
CREATE INDEX emails_recipients_address ON emails_recipients (address, email_id);

-- +goose Down
DROP INDEX emails_recipients_address;
