package adapters

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	delivery "github.com/mailroom/mailroom/modules/delivery/contract"
	"github.com/mailroom/mailroom/modules/emails/internal/app"
	"github.com/mailroom/mailroom/modules/emails/internal/domain"
	"github.com/mailroom/mailroom/platform/apperr"
)

// ChangeSchedule implements app.Repository. A reschedule wakes the relay once it is
// committed, for a send_at moved earlier than the relay's next planned read.
func (r *Repository) ChangeSchedule(ctx context.Context, ch app.Change) (domain.Status, bool, error) {
	ctx = context.WithoutCancel(ctx) // a statement of a shared transaction is never interrupted
	if ch.At.IsZero() {
		ch.At = r.now()
	}
	var (
		found   domain.Status
		changed bool
	)
	err := r.db.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		found, changed, err = r.changeSchedule(ctx, tx, ch)
		return err
	})
	if err != nil {
		if _, ok := apperr.As(err); ok {
			return "", false, err
		}
		return "", false, apperr.Unavailable("the database cannot change the email right now", err)
	}
	if changed && ch.SendAt != nil {
		r.box.Notify()
	}
	return found, changed, nil
}

// changeSchedule is ChangeSchedule's transaction. The outbox row is checked
// against the margin here, inside the transaction, with the clock read here: the
// margin covers the time from this check to the commit.
func (r *Repository) changeSchedule(ctx context.Context, tx *sql.Tx, ch app.Change) (domain.Status, bool, error) {
	var (
		status string
		sendAt sql.NullInt64
	)
	err := tx.QueryRowContext(ctx, `SELECT status, send_at FROM emails_emails WHERE id = ?`, ch.EmailID).Scan(&status, &sendAt)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, apperr.NotFound("email", ch.EmailID)
	}
	if err != nil {
		return "", false, fmt.Errorf("read status of %s: %w", ch.EmailID, err)
	}
	if domain.Status(status) != domain.StatusScheduled || !sendAt.Valid {
		return domain.Status(status), false, nil
	}
	// The row waits until the email's send_at: that and its uuid find it.
	uuid, due, notDueBefore := sendEmailUUID(ch.EmailID), time.UnixMilli(sendAt.Int64), r.now().Add(app.SendingMargin)
	var ok bool
	if ch.SendAt != nil {
		ok, err = r.box.Reschedule(ctx, tx, uuid, due, *ch.SendAt, notDueBefore)
	} else {
		ok, err = r.box.Withdraw(ctx, tx, uuid, due, notDueBefore)
	}
	if err != nil || !ok {
		return domain.StatusScheduled, false, err
	}
	if _, err := r.applyChange(ctx, tx, ch); err != nil {
		return "", false, err
	}
	return domain.StatusScheduled, true, nil
}

// sendEmailUUID is the message uuid of an email's first SendEmail, the one its
// outbox row carries until it is published (encodeEmail builds it the same way).
func sendEmailUUID(emailID string) string {
	return delivery.FirstTry(delivery.Email{EmailID: emailID}).MessageUUID()
}
