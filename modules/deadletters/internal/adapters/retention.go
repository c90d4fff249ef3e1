package adapters

import (
	"context"
	"time"

	"github.com/mailroom/mailroom/modules/deadletters/internal/app"
	"github.com/mailroom/mailroom/platform/retention"
)

// DeleteOldLetters deletes at most limit letters at now: replayed or discarded
// longer than resolved ago, and still parked longer than parked ago (0 keeps them
// for ever). It returns how many.
func (s Store) DeleteOldLetters(ctx context.Context, resolved, parked time.Duration, now time.Time, limit int) (int, error) {
	where, args, ok := retention.Older(now,
		retention.Age{Where: "status IN (?, ?)", Args: []any{app.StatusReplayed, app.StatusDiscarded}, Column: "resolved_at", Period: resolved},
		retention.Age{Where: "status = ?", Args: []any{app.StatusParked}, Column: "created_at", Period: parked})
	if !ok {
		return 0, nil
	}
	return retention.DeleteBatch(ctx, s.DB, limit,
		`SELECT id FROM deadletters_letters WHERE `+where+` LIMIT ?`, args,
		`DELETE FROM deadletters_letters WHERE id IN`)
}
