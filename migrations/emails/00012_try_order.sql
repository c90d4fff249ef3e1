-- +goose Up
-- The order rule (domain.Apply): delivery's events about an email can arrive out
-- of order, so each email remembers the replay it is in (0 for the original send,
-- n after an operator's n-th replay; with attempts, the latest try applied to it),
-- and each recipient the try whose report set its state (try_replay, try_attempt;
-- try_attempt 0 at the start of a replay). A report of an earlier try then never
-- replaces a later state.
-- (00011 is migrations/emails_adopt_messages.go, written in Go.)
ALTER TABLE emails_emails ADD COLUMN replay INTEGER NOT NULL DEFAULT 0;
ALTER TABLE emails_recipients ADD COLUMN try_replay INTEGER NOT NULL DEFAULT 0;
ALTER TABLE emails_recipients ADD COLUMN try_attempt INTEGER NOT NULL DEFAULT 0;

-- Emails stored before: each replay left one "replayed" entry on the timeline,
-- and a recipient carried by every try of its replay until it was final has as
-- many attempts as the try that last reported it.
UPDATE emails_emails SET replay =
    (SELECT COUNT(*) FROM emails_events ev WHERE ev.email_id = emails_emails.id AND ev.type = 'replayed')
WHERE id IN (SELECT email_id FROM emails_events WHERE type = 'replayed');
UPDATE emails_recipients SET try_attempt = attempts WHERE attempts > 0;
UPDATE emails_recipients SET try_replay = (SELECT e.replay FROM emails_emails e WHERE e.id = emails_recipients.email_id)
WHERE email_id IN (SELECT id FROM emails_emails WHERE replay > 0);

-- +goose Down
ALTER TABLE emails_recipients DROP COLUMN try_attempt;
ALTER TABLE emails_recipients DROP COLUMN try_replay;
ALTER TABLE emails_emails DROP COLUMN replay;
