// Package ports exposes dead letters over HTTP.
package ports

import (
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/mailroom/mailroom/modules/deadletters/internal/app"
	"github.com/mailroom/mailroom/platform/apperr"
	"github.com/mailroom/mailroom/platform/auth"
	"github.com/mailroom/mailroom/platform/httpserver"
)

// HTTP serves /api/dead-letters.
type HTTP struct{ Manage app.Manage }

// Register adds the routes to g (the /api group). Dead letters hold every
// sender's mail, so only admin keys manage them.
func (h HTTP) Register(g *echo.Group) {
	admin := auth.RequireScope(auth.ScopeAdmin)
	g.GET("/dead-letters", h.list, admin)
	g.POST("/dead-letters/replay", h.replayMatching, admin)
	g.POST("/dead-letters/:id/replay", h.replay, admin)
	g.DELETE("/dead-letters/:id", h.discard, admin)
}

// LetterResponse is a dead letter as the API and the CLI show it.
type LetterResponse struct {
	// ID names the letter in /api/dead-letters/{id}: the email id works as well, but
	// a poison message has none.
	ID                string     `json:"id"`
	EmailID           string     `json:"email_id"`
	Status            string     `json:"status"`
	Reason            string     `json:"reason"`
	ErrorClass        string     `json:"error_class"`
	Attempts          int        `json:"attempts"`
	SMTPReply         string     `json:"smtp_reply"`
	Replays           int        `json:"replays"`
	ReplayCount       int        `json:"replay_count"`
	OriginalTopic     string     `json:"original_topic"`
	OriginalPartition *int64     `json:"original_partition"`
	OriginalOffset    *int64     `json:"original_offset"`
	ConsumerGroup     string     `json:"consumer_group"`
	FirstFailedAt     *time.Time `json:"first_failed_at"`
	LastFailedAt      *time.Time `json:"last_failed_at"`
	DeadLetteredAt    time.Time  `json:"dead_lettered_at"`
	ResolvedAt        *time.Time `json:"resolved_at"`
}

// ToResponse shapes a letter for output. ReplayCount counts how many times the email
// reached the dead letters, this time included; Replays how many replays preceded it.
func ToResponse(l app.Letter) LetterResponse {
	return LetterResponse{ID: app.LetterKey(l), EmailID: l.EmailID, Status: l.Status, Reason: l.Reason, ErrorClass: l.ErrorClass,
		Attempts: l.Attempts, SMTPReply: l.SMTPReply, Replays: l.Replay, ReplayCount: l.Replay + 1,
		OriginalTopic: l.OriginalTopic, OriginalPartition: l.OriginalPartition, OriginalOffset: l.OriginalOffset,
		ConsumerGroup: l.ConsumerGroup, FirstFailedAt: l.FirstFailedAt, LastFailedAt: l.LastFailedAt,
		DeadLetteredAt: l.CreatedAt, ResolvedAt: l.ResolvedAt}
}

type listResponse struct {
	Items      []LetterResponse `json:"items"`
	NextCursor string           `json:"next_cursor"`
}

func (h HTTP) list(c echo.Context) error {
	f := app.Filter{Status: c.QueryParam("status"), ReasonContains: c.QueryParam("reason_contains")}
	var err error
	if f.Since, err = queryTime(c, "since"); err != nil {
		return err
	}
	if f.Until, err = queryTime(c, "until"); err != nil {
		return err
	}
	if f.Limit, err = httpserver.QueryLimit(c, app.MaxPageSize); err != nil {
		return err
	}
	if v := c.QueryParam("cursor"); v != "" {
		// Only the form next_cursor is written in: "007" or "+7" is not one.
		if f.Cursor, err = strconv.ParseInt(v, 10, 64); err != nil || f.Cursor < 1 || strconv.FormatInt(f.Cursor, 10) != v {
			return apperr.Invalid("cursor", "not a cursor from next_cursor")
		}
	}
	items, next, err := h.Manage.List(c.Request().Context(), f)
	if err != nil {
		return err
	}
	out := listResponse{Items: make([]LetterResponse, 0, len(items))}
	for _, l := range items {
		out.Items = append(out.Items, ToResponse(l))
	}
	if next > 0 {
		out.NextCursor = strconv.FormatInt(next, 10)
	}
	return c.JSON(http.StatusOK, out)
}

func queryTime(c echo.Context, name string) (*time.Time, error) {
	v := c.QueryParam(name)
	if v == "" {
		return nil, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return nil, apperr.Invalid(name, "not an RFC 3339 time")
	}
	return &t, nil
}

func (h HTTP) replay(c echo.Context) error {
	if err := h.Manage.Replay(c.Request().Context(), c.Param("id")); err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, map[string]any{"email_id": c.Param("id"), "status": "queued"})
}

func (h HTTP) discard(c echo.Context) error {
	if err := h.Manage.Discard(c.Request().Context(), c.Param("id")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// replayFilter is the body of POST /api/dead-letters/replay.
type replayFilter struct {
	ReasonContains string `json:"reason_contains"`
	Since          string `json:"since"`
	Until          string `json:"until"`
}

func (h HTTP) replayMatching(c echo.Context) error {
	var body replayFilter
	if err := httpserver.DecodeJSON(c, &body); err != nil {
		return err
	}
	f, err := ParseFilter(body.ReasonContains, body.Since, body.Until)
	if err != nil {
		return err
	}
	n, err := h.Manage.ReplayMatching(c.Request().Context(), f)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]int{"replayed": n})
}

// ParseFilter builds a filter from its text form, as the API and the CLI take it.
func ParseFilter(reason, since, until string) (app.Filter, error) {
	f := app.Filter{ReasonContains: reason}
	for _, p := range []struct {
		name string
		val  string
		dst  **time.Time
	}{{"since", since, &f.Since}, {"until", until, &f.Until}} {
		if p.val == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339, p.val)
		if err != nil {
			return f, apperr.Invalid(p.name, "not an RFC 3339 time")
		}
		*p.dst = &t
	}
	return f, nil
}
