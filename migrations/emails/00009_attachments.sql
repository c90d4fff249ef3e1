-- +goose Up
-- An email's attachments without their content (which travels in the SendEmail
-- command only): [{"filename", "content_type", "size", "content_id"}] in the
-- client's order, as GET /api/emails/{id} shows them. NULL for an email without.
ALTER TABLE emails_emails ADD COLUMN attachments TEXT;

-- +goose Down
ALTER TABLE emails_emails DROP COLUMN attachments;
