-- +goose Up
-- What a letter is (delivery's typed dead letter, or a message the poison queue
-- moved), the email's subject and the recipients that were not delivered, so a
-- list shows them without decoding every payload. Letters from before are messages.
ALTER TABLE deadletters_letters ADD COLUMN kind TEXT NOT NULL DEFAULT 'message';
ALTER TABLE deadletters_letters ADD COLUMN subject TEXT NOT NULL DEFAULT '';
ALTER TABLE deadletters_letters ADD COLUMN recipients TEXT NOT NULL DEFAULT '[]';

-- +goose Down
ALTER TABLE deadletters_letters DROP COLUMN recipients;
ALTER TABLE deadletters_letters DROP COLUMN subject;
ALTER TABLE deadletters_letters DROP COLUMN kind;
