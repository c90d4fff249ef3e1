package adapters

import (
	"context"
	"time"

	"github.com/mailroom/mailroom/modules/delivery/contract"
	"github.com/mailroom/mailroom/platform/retention"
)

// DeleteFinishedRecords deletes at most limit emails' delivery state whose delivery is final and unchanged for its period at now:
// sent for sent, dead for dead (0 keeps them for ever). A retrying email's
// records are never deleted. It returns how many emails' records went.
func (s Store) DeleteFinishedRecords(ctx context.Context, sent, dead time.Duration, now time.Time, limit int) (int, error) {
	where, args, ok := retention.Older(now,
		retention.Age{Where: "status = ?", Args: []any{contract.StatusSent}, Column: "updated_at", Period: sent},
		retention.Age{Where: "status = ?", Args: []any{contract.StatusDead}, Column: "updated_at", Period: dead})
	if !ok {
		return 0, nil
	}
	return retention.DeleteBatch(ctx, s.DB, limit,
		`SELECT email_id FROM delivery_state WHERE `+where+` LIMIT ?`, args,
		`DELETE FROM delivery_state WHERE email_id IN`)
}
