package adapters

import (
	"time"

	"github.com/mailroom/mailroom/modules/emails/internal/app"
	"github.com/mailroom/mailroom/modules/emails/internal/domain"
	"github.com/mailroom/mailroom/platform/persecond"
)

// PerSecondWindow is how many seconds of per-second counts the repository keeps:
// the last five minutes.
const PerSecondWindow = 300

// The timeline entries counted per second, by their index in countedEntries.
const (
	countAccepted = iota
	countSent
	countDeferred
	countBounced
	countDeadLettered
)

// countedEntries are the timeline entry types the repository counts per second as
// it commits them: what the operator console's overview charts. Deferred and
// bounced entries are one per recipient; the others one per email.
var countedEntries = []string{
	countAccepted:     domain.EventAccepted,
	countSent:         domain.EventSent,
	countDeferred:     domain.EventDeferred,
	countBounced:      domain.EventBounced,
	countDeadLettered: domain.EventDeadLettered,
}

func newPerSecond(now func() time.Time) *persecond.Counts {
	return persecond.New(PerSecondWindow, now, countedEntries...)
}

// countCommitted counts the entries of a change once its transaction committed.
// Only committed changes are counted: a transaction may run twice (sqlite.DB.Tx),
// or roll back.
func (r *Repository) countCommitted(entries []app.Entry) {
	for _, en := range entries {
		for k, typ := range countedEntries {
			if en.Type == typ {
				r.perSecond.Add(k, 1)
				break
			}
		}
	}
}

// PerSecond returns how many timeline entries of each counted type (accepted, sent,
// deferred, bounced, dead_lettered) this process committed in each of the last
// PerSecondWindow seconds. The counts are in memory and start at zero with the
// process.
func (r *Repository) PerSecond() persecond.Snapshot { return r.perSecond.Snapshot() }
