package adapters

import (
	"context"
	"strings"
	"time"

	"github.com/mailroom/mailroom/modules/delivery/contract"
	"github.com/mailroom/mailroom/platform/retention"
)

// DeleteFinishedRecords deletes at most limit emails' delivery records (state and
// rendered message) whose delivery is final and unchanged for its period at now:
// sent for sent, dead for dead (0 keeps them for ever). A retrying email's
// records are never deleted. It returns how many emails' records went.
func (s Store) DeleteFinishedRecords(ctx context.Context, sent, dead time.Duration, now time.Time, limit int) (int, error) {
	var conds []string
	var args []any
	if sent > 0 {
		conds, args = append(conds, "(status = ? AND updated_at < ?)"), append(args, contract.StatusSent, now.Add(-sent).UnixMilli())
	}
	if dead > 0 {
		conds, args = append(conds, "(status = ? AND updated_at < ?)"), append(args, contract.StatusDead, now.Add(-dead).UnixMilli())
	}
	if len(conds) == 0 {
		return 0, nil
	}
	return retention.DeleteBatch(ctx, s.DB, limit,
		`SELECT email_id FROM delivery_state WHERE `+strings.Join(conds, " OR ")+` LIMIT ?`, args,
		`DELETE FROM delivery_messages WHERE email_id IN`,
		`DELETE FROM delivery_state WHERE email_id IN`)
}
