package adapters

import (
	"context"
	"strings"
	"time"

	"github.com/mailroom/mailroom/modules/deadletters/internal/app"
	"github.com/mailroom/mailroom/platform/retention"
)

// DeleteOldLetters deletes at most limit letters at now: replayed or discarded
// longer than resolved ago, and still parked longer than parked ago (0 keeps them
// for ever). It returns how many.
func (s Store) DeleteOldLetters(ctx context.Context, resolved, parked time.Duration, now time.Time, limit int) (int, error) {
	var conds []string
	var args []any
	if resolved > 0 {
		conds = append(conds, "(status IN (?, ?) AND resolved_at < ?)")
		args = append(args, app.StatusReplayed, app.StatusDiscarded, now.Add(-resolved).UnixMilli())
	}
	if parked > 0 {
		conds = append(conds, "(status = ? AND created_at < ?)")
		args = append(args, app.StatusParked, now.Add(-parked).UnixMilli())
	}
	if len(conds) == 0 {
		return 0, nil
	}
	return retention.DeleteBatch(ctx, s.DB, limit,
		`SELECT id FROM deadletters_letters WHERE `+strings.Join(conds, " OR ")+` LIMIT ?`, args,
		`DELETE FROM deadletters_letters WHERE id IN`)
}
