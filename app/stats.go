package app

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/mailroom/mailroom/platform/broker"
	"github.com/mailroom/mailroom/platform/outbox"
	"github.com/mailroom/mailroom/platform/sqlite"
)

// statsReporter is implemented by whatever reports a part of GET /api/stats, the
// figures of the operator console's overview: modules (emails: "series" and
// "emails"; delivery: "smtp"; deadletters: "dead_letters") and the app's own
// parts ("outbox", "broker"). Stats calls report once for each of its parts, with
// the part's value (encoded as JSON) or the error that kept it; a failed part is
// null in the answer, its error under "errors", and the other parts are answered
// all the same. Reporters are asked at once, each in a goroutine of its own; Stats
// must return within ctx's deadline.
type statsReporter interface {
	Stats(ctx context.Context, report func(part string, value any, err error))
}

// statsTimeout bounds how long GET /api/stats waits for all its parts.
const statsTimeout = 3 * time.Second

// stats answers GET /api/stats: every reporter's parts, and when it was asked.
func (a *App) stats(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), statsTimeout)
	defer cancel()
	reporters := []statsReporter{outboxStats{db: a.db}, brokerStats{kind: a.cfg.Broker.Kind, broker: a.broker}}
	for _, m := range a.modules {
		if r, ok := m.(statsReporter); ok {
			reporters = append(reporters, r)
		}
	}
	body := collectStats(ctx, time.Now, reporters)
	for part, err := range body.errs {
		a.log.WarnContext(ctx, "stats: a part could not be read", "part", part, "error", err)
	}
	return c.JSON(http.StatusOK, body.answer)
}

// collected is what collectStats gathered: the answer, and each failed part's error.
type collected struct {
	answer map[string]any
	errs   map[string]string
}

// collectStats asks every reporter for its parts at once, so that a slow one (a
// broker that does not answer) does not use up the others' time. The answer holds
// "at", every part, and "errors": the message of each part that failed (whose
// value is null). "at" is read from now once every part is in, so no part (a
// series' current second, the time delivery paused) is later than the answer.
func collectStats(ctx context.Context, now func() time.Time, reporters []statsReporter) collected {
	out := collected{answer: map[string]any{}, errs: map[string]string{}}
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	report := func(part string, value any, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			out.answer[part], out.errs[part] = nil, err.Error()
			return
		}
		out.answer[part] = value
	}
	for _, r := range reporters {
		wg.Go(func() { r.Stats(ctx, report) })
	}
	wg.Wait()
	out.answer["at"] = now().UTC()
	out.answer["errors"] = out.errs
	return out
}

// outboxStats reports the "outbox" part: the relay's backlog.
type outboxStats struct{ db *sqlite.DB }

// outboxPart is the "outbox" part of GET /api/stats (web/openapi.yaml, StatsOutbox).
type outboxPart struct {
	// Backlog counts the rows due now and not yet published.
	Backlog int `json:"backlog"`
	// NotDue counts the rows held back until later: scheduled sends and retries.
	NotDue int `json:"not_due"`
	// OldestDueAgeSeconds is how long the oldest due row has waited; nil with no
	// backlog.
	OldestDueAgeSeconds *float64 `json:"oldest_due_age_seconds"`
}

// Stats implements statsReporter: the outbox's backlog, read on the read pool.
func (s outboxStats) Stats(ctx context.Context, report func(part string, value any, err error)) {
	st, err := outbox.ReadStats(ctx, s.db)
	if err != nil {
		report("outbox", nil, err)
		return
	}
	p := outboxPart{Backlog: st.DuePending, NotDue: st.Pending - st.DuePending}
	if st.DuePending > 0 {
		age := st.OldestDueAge.Seconds()
		p.OldestDueAgeSeconds = &age
	}
	report("outbox", p, nil)
}

// brokerStats reports the "broker" part: whether the broker answers.
type brokerStats struct {
	kind   string
	broker *broker.Broker
}

// brokerPart is the "broker" part of GET /api/stats (web/openapi.yaml, StatsBroker).
type brokerPart struct {
	// Kind is broker.kind: "gochannel" or "kafka".
	Kind string `json:"kind"`
	// State is "up" when the broker answers a ping, else "down".
	State string `json:"state"`
	// Reason is why the ping failed, else "".
	Reason string `json:"reason"`
}

// Stats implements statsReporter: it pings the broker (as /readyz does); a
// broker that does not answer is "down" with why, not a failed part.
func (s brokerStats) Stats(ctx context.Context, report func(part string, value any, err error)) {
	p := brokerPart{Kind: s.kind, State: "up"}
	if err := s.broker.Ping(ctx); err != nil {
		p.State, p.Reason = "down", err.Error()
	}
	report("broker", p, nil)
}
