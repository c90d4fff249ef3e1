package adapters

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/mailroom/mailroom/modules/emails/internal/domain"
	"github.com/mailroom/mailroom/platform/retention"
)

// Periods says how long the emails module keeps finished mail; 0 keeps it for ever.
type Periods struct {
	// Sent is how long after its last change an email sent, or cancelled, is kept.
	Sent time.Duration
	// Dead is how long after its last change a dead email is kept: as long as its
	// parked letter (retention.dead_letters), so a replay finds the email.
	Dead time.Duration
}

// DeleteFinishedEmails deletes at most limit emails that are final (sent,
// cancelled, or dead with no replay since) and unchanged for their period at now,
// with their tags, recipients, timeline and rendered message, in one transaction,
// and returns how many. Emails not final are never deleted, whatever their age. A cancelled email
// keeps its place in its key's daily quota (see app.CancelEmail), and its deletion
// gives back exactly what a sent one's does: nothing while the quota book holds
// the day in memory.
func (r *Repository) DeleteFinishedEmails(ctx context.Context, p Periods, now time.Time, limit int) (int, error) {
	where, args, ok := retention.Older(now,
		retention.Age{Where: "status IN (?, ?)", Args: []any{string(domain.StatusSent), string(domain.StatusCancelled)},
			Column: "updated_at", Period: p.Sent},
		retention.Age{Where: "status = ?", Args: []any{string(domain.StatusDead)}, Column: "updated_at", Period: p.Dead})
	if !ok {
		return 0, nil
	}
	return retention.DeleteBatch(ctx, r.db, limit, `SELECT id FROM emails_emails WHERE `+where+` LIMIT ?`, args,
		`DELETE FROM emails_events WHERE email_id IN`, `DELETE FROM emails_tags WHERE email_id IN`,
		`DELETE FROM emails_recipients WHERE email_id IN`, `DELETE FROM emails_messages WHERE email_id IN`,
		`DELETE FROM emails_emails WHERE id IN`)
}

// DeleteStaleBookkeeping deletes at most limit rows that no request can use any
// more: Idempotency-Keys past IdempotencyWindow. It returns how many.
func (r *Repository) DeleteStaleBookkeeping(ctx context.Context, now time.Time, limit int) (int, error) {
	var n int
	ctx = context.WithoutCancel(ctx)
	err := r.db.Tx(ctx, func(tx *sql.Tx) error {
		n = 0
		res, err := tx.ExecContext(ctx,
			`DELETE FROM emails_idempotency WHERE key IN (SELECT key FROM emails_idempotency WHERE created_at <= ? LIMIT ?)`,
			now.Add(-IdempotencyWindow).UnixMilli(), limit)
		if err != nil {
			return fmt.Errorf("delete old idempotency keys: %w", err)
		}
		n += affected(res)
		return nil
	})
	return n, err
}

func affected(res sql.Result) int {
	n, _ := res.RowsAffected()
	return int(n)
}
