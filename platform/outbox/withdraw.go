package outbox

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// A row the relay may already hold cannot be taken back: the relay reads a row
// once it is due, publishes it and deletes it only afterwards, so deleting or
// moving a row it has read would not stop the publish. Withdraw and Reschedule
// therefore touch a row only while it falls due after notDueBefore, checked in
// the caller's write transaction. The relay reads rows due at its own clock, so
// a row due later than now cannot have been read yet; notDueBefore should lie a
// margin past now, longer than the caller's transaction may take to commit, so
// that the row does not fall due (and get read) between the check and the
// commit.
//
// The caller names the row by its message uuid and the due time it was given
// (Add's at, or Reschedule's), which it keeps anyway (a scheduled email's send_at):
// the row is found on the outbox's due-time index, so no index on uuid costs every
// row's insert and delete on the relay's hot path. A row given no future due time
// fell due at once and is out of reach, as it should be.

// Withdraw deletes the row of the message uuid due at due, as part of tx, so that
// it is never published, provided the row falls due after notDueBefore. It reports whether it
// deleted a row: false when there is none (the relay published it, or it was
// withdrawn before) or when it is due by notDueBefore and may be on its way out;
// then nothing is changed, and the message will be (or was) published.
func (o *Outbox) Withdraw(ctx context.Context, tx *sql.Tx, uuid string, due, notDueBefore time.Time) (bool, error) {
	res, err := tx.ExecContext(ctx, `DELETE FROM outbox WHERE available_at = ? AND uuid = ? AND available_at > ?`,
		due.UnixMilli(), uuid, notDueBefore.UnixMilli())
	if err != nil {
		return false, fmt.Errorf("outbox: withdraw message %s: %w", uuid, err)
	}
	return rowsChanged(res, "withdraw", uuid)
}

// Reschedule moves the row of the message uuid due at due, as part of tx, to fall
// due at at
// (a time already past means at once, as with Add), provided the row falls due
// after notDueBefore; see Withdraw for what it reports and why. The caller should
// Notify after the commit: a relay waiting for the row's old due time learns of
// the new one only when woken or at its next poll.
func (o *Outbox) Reschedule(ctx context.Context, tx *sql.Tx, uuid string, due, at, notDueBefore time.Time) (bool, error) {
	res, err := tx.ExecContext(ctx, `UPDATE outbox SET available_at = ? WHERE available_at = ? AND uuid = ? AND available_at > ?`,
		max(at.UnixMilli(), o.now().UnixMilli()), due.UnixMilli(), uuid, notDueBefore.UnixMilli())
	if err != nil {
		return false, fmt.Errorf("outbox: reschedule message %s: %w", uuid, err)
	}
	return rowsChanged(res, "reschedule", uuid)
}

func rowsChanged(res sql.Result, op, uuid string) (bool, error) {
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("outbox: %s message %s: %w", op, uuid, err)
	}
	return n > 0, nil
}
