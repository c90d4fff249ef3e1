package deadletters

import (
	"context"

	"github.com/mailroom/mailroom/modules/deadletters/internal/app"
)

// Stats implements the app's statsReporter, for GET /api/stats: its part
// "dead_letters" is how many letters are parked now, waiting for an operator to
// replay or discard them, or the error that kept it from the database.
func (m *Module) Stats(ctx context.Context, report func(part string, value any, err error)) {
	n, err := m.store.Count(ctx, app.Filter{Status: app.StatusParked})
	if err != nil {
		report("dead_letters", nil, err)
		return
	}
	report("dead_letters", parked{Parked: n}, nil)
}

// parked is the "dead_letters" part of GET /api/stats (web/openapi.yaml,
// StatsDeadLetters).
type parked struct {
	Parked int `json:"parked"`
}
