package adapters

import (
	"context"
	"database/sql"
	"errors"

	"github.com/mailroom/mailroom/platform/apperr"
)

// SentBy implements app.Repository: the key that sent the email, read without the
// rest of it.
func (r *Repository) SentBy(ctx context.Context, id string) (string, error) {
	var key sql.NullString
	err := r.db.Read.QueryRowContext(ctx, `SELECT api_key_id FROM emails_emails WHERE id = ?`, id).Scan(&key)
	if errors.Is(err, sql.ErrNoRows) {
		return "", apperr.NotFound("email", id)
	}
	if err != nil {
		return "", apperr.Unavailable("cannot read the email", err)
	}
	return key.String, nil
}
