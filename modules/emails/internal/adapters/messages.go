package adapters

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/mailroom/mailroom/modules/emails/internal/app"
	"github.com/mailroom/mailroom/platform/apperr"
)

// storeMessage keeps the message ch carries as the email's rendered message in
// tx, unless the stored one is from a later try: events of one email arrive in
// order, but a try's event is the only witness of when it ended.
func storeMessage(ctx context.Context, tx *sql.Tx, ch app.Change) error {
	m := ch.Message
	if m == nil || len(m.Raw) == 0 {
		return nil
	}
	_, err := tx.ExecContext(ctx,
		`INSERT INTO emails_messages (email_id, message_id, raw, rendered_at) VALUES (?, ?, ?, ?)
		 ON CONFLICT (email_id) DO UPDATE SET message_id = excluded.message_id, raw = excluded.raw,
		   rendered_at = excluded.rendered_at
		 WHERE excluded.rendered_at >= emails_messages.rendered_at`,
		ch.EmailID, m.MessageID, m.Raw, ch.At.UnixMilli())
	if err != nil {
		return fmt.Errorf("store the rendered message: %w", err)
	}
	return nil
}

// RawMessage implements app.Repository.
func (r *Repository) RawMessage(ctx context.Context, id string) ([]byte, string, error) {
	var (
		raw   []byte
		owner string
	)
	err := r.db.Read.QueryRowContext(ctx,
		`SELECT m.raw, COALESCE(e.api_key_id, '') FROM emails_messages m JOIN emails_emails e ON e.id = m.email_id
		 WHERE m.email_id = ?`, id).Scan(&raw, &owner)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, "", apperr.NotFound("rendered message of email", id)
	}
	if err != nil {
		return nil, "", apperr.Unavailable("cannot read the rendered message", err)
	}
	return raw, owner, nil
}
