package emails

import (
	"context"
	"time"

	"github.com/mailroom/mailroom/modules/emails/internal/domain"
)

// Stats implements the app's statsReporter, for GET /api/stats. It reports two
// parts: "series", how many emails this process accepted, sent and dead-lettered,
// and how many recipients were deferred and bounced, in each of the last five
// minutes' seconds (counted in memory as each change commits, from zero at start);
// and "emails", how many emails are in each status now (every status, 0 included),
// or the error that kept it from the database.
func (m *Module) Stats(ctx context.Context, report func(part string, value any, err error)) {
	s := m.repo.PerSecond()
	report("series", series{IntervalSeconds: 1, Since: s.Started.UTC(), Last: s.Newest, Counts: s.Series}, nil)
	counts, err := m.repo.CountByStatus(ctx)
	if err != nil {
		report("emails", nil, err)
		return
	}
	byStatus := make(map[string]int, len(domain.Statuses))
	for _, st := range domain.Statuses {
		byStatus[string(st)] = counts[st]
	}
	report("emails", byStatus, nil)
}

// series is the "series" part of GET /api/stats (web/openapi.yaml, StatsSeries).
type series struct {
	// IntervalSeconds is how long each count covers.
	IntervalSeconds int `json:"interval_seconds"`
	// Since is when counting began: no earlier second was counted.
	Since time.Time `json:"since"`
	// Last is the start of the last second of every series, the current one.
	Last time.Time `json:"last"`
	// Counts holds one series per counted timeline entry type, oldest first.
	Counts map[string][]int64 `json:"counts"`
}
