// Package ports exposes dead letters over HTTP.
package ports

import (
	"net/http"
	"strings"
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
	g.GET("/dead-letters/:id", h.get, admin)
	g.POST("/dead-letters/replay", h.replayMany, admin)
	g.POST("/dead-letters/:id/replay", h.replay, admin)
	g.DELETE("/dead-letters/:id", h.discard, admin)
}

// LetterResponse is a dead letter as the API and the CLI show it.
type LetterResponse struct {
	// ID names the letter in /api/dead-letters/{id}: the email id works as well, but
	// a poison message has none.
	ID         string              `json:"id"`
	EmailID    string              `json:"email_id"`
	Status     string              `json:"status"`
	Subject    string              `json:"subject"`
	Recipients []RecipientResponse `json:"recipients"`
	Reason     string              `json:"reason"`
	ErrorClass string              `json:"error_class"`
	Attempts   int                 `json:"attempts"`
	SMTPReply  string              `json:"smtp_reply"`
	// Replays counts the operator replays of the email before this letter: 0 the
	// first time it is dead-lettered, 1 when it failed again after one replay.
	Replays           int        `json:"replays"`
	OriginalTopic     string     `json:"original_topic"`
	OriginalPartition *int64     `json:"original_partition"`
	OriginalOffset    *int64     `json:"original_offset"`
	ConsumerGroup     string     `json:"consumer_group"`
	FirstFailedAt     *time.Time `json:"first_failed_at"`
	LastFailedAt      *time.Time `json:"last_failed_at"`
	DeadLetteredAt    time.Time  `json:"dead_lettered_at"`
	ResolvedAt        *time.Time `json:"resolved_at"`
}

// RecipientResponse is a recipient a letter's email was not delivered to, and why.
type RecipientResponse struct {
	Address  string `json:"address"`
	Type     string `json:"type"`
	Status   string `json:"status"`
	Attempts int    `json:"attempts"`
	Detail   string `json:"detail"`
}

// ToResponse shapes a letter for output.
func ToResponse(l app.Letter) LetterResponse {
	r := LetterResponse{ID: app.LetterKey(l), EmailID: l.EmailID, Status: l.Status, Subject: l.Subject,
		Recipients: make([]RecipientResponse, 0, len(l.Recipients)), Reason: l.Reason, ErrorClass: l.ErrorClass,
		Attempts: l.Attempts, SMTPReply: l.SMTPReply, Replays: l.Replay,
		OriginalTopic: l.OriginalTopic, OriginalPartition: l.OriginalPartition, OriginalOffset: l.OriginalOffset,
		ConsumerGroup: l.ConsumerGroup, FirstFailedAt: l.FirstFailedAt, LastFailedAt: l.LastFailedAt,
		DeadLetteredAt: l.CreatedAt, ResolvedAt: l.ResolvedAt}
	for _, rc := range l.Recipients {
		r.Recipients = append(r.Recipients, RecipientResponse{Address: rc.Address, Type: rc.Type, Status: rc.Status,
			Attempts: rc.Attempts, Detail: rc.Detail})
	}
	return r
}

func (h HTTP) list(c echo.Context) error {
	if err := httpserver.KnownQuery(c, "status", "reason_contains", "since", "until", "limit", "cursor", "include_total"); err != nil {
		return err
	}
	f, err := ParseFilter(c.QueryParam("reason_contains"), c.QueryParam("since"), c.QueryParam("until"))
	if err != nil {
		return err
	}
	f.Status = c.QueryParam("status")
	if f.Limit, err = httpserver.QueryLimit(c, app.MaxPageSize); err != nil {
		return err
	}
	if f.Cursor, err = httpserver.QueryCursor(c); err != nil {
		return err
	}
	if f.IncludeTotal, err = httpserver.QueryIncludeTotal(c); err != nil {
		return err
	}
	p, err := h.Manage.List(c.Request().Context(), f)
	if err != nil {
		return err
	}
	out := httpserver.PageOf(p.Items, p.Next, ToResponse)
	out.Total = p.Total
	return c.JSON(http.StatusOK, out)
}

func (h HTTP) get(c echo.Context) error {
	l, err := h.Manage.Get(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, ToResponse(l))
}

func (h HTTP) replay(c echo.Context) error {
	emailID, err := h.Manage.Replay(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, map[string]any{"email_id": emailID, "status": "queued"})
}

func (h HTTP) discard(c echo.Context) error {
	if err := h.Manage.Discard(c.Request().Context(), c.Param("id")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// replayRequest is the body of POST /api/dead-letters/replay: the letters to
// replay by their ids, or by a filter, never both.
type replayRequest struct {
	IDs            []string `json:"ids"`
	ReasonContains string   `json:"reason_contains"`
	Since          string   `json:"since"`
	Until          string   `json:"until"`
}

// ReplayedResponse is the answer of a replay of many letters.
type ReplayedResponse struct {
	// Replayed counts the letters replayed.
	Replayed int `json:"replayed"`
	// Skipped are the letters named or matched that were not replayed, and why.
	Skipped []SkippedResponse `json:"skipped"`
}

// SkippedResponse is a letter a replay of many left alone.
type SkippedResponse struct {
	ID     string `json:"id"`
	Reason string `json:"reason"`
}

func (h HTTP) replayMany(c echo.Context) error {
	var body replayRequest
	if err := httpserver.DecodeJSON(c, &body); err != nil {
		return err
	}
	ctx := c.Request().Context()
	var out app.Replayed
	var err error
	if body.IDs != nil {
		if err := onlyIDs(body); err != nil {
			return err
		}
		out, err = h.Manage.ReplayLetters(ctx, body.IDs)
	} else {
		var f app.Filter
		if f, err = ParseFilter(body.ReasonContains, body.Since, body.Until); err != nil {
			return err
		}
		out, err = h.Manage.ReplayMatching(ctx, f)
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, ToReplayedResponse(out))
}

// onlyIDs refuses a filter field beside ids: which letters would be meant, those
// named or those named that also match, is anyone's guess.
func onlyIDs(body replayRequest) error {
	for _, f := range []struct{ name, val string }{
		{"reason_contains", body.ReasonContains}, {"since", body.Since}, {"until", body.Until}} {
		if f.val != "" {
			return apperr.Invalid(f.name, "cannot be combined with ids; replay by ids or by a filter")
		}
	}
	return nil
}

// ToReplayedResponse shapes the outcome of a replay of many for output.
func ToReplayedResponse(r app.Replayed) ReplayedResponse {
	out := ReplayedResponse{Replayed: r.Count, Skipped: make([]SkippedResponse, 0, len(r.Skipped))}
	for _, s := range r.Skipped {
		out.Skipped = append(out.Skipped, SkippedResponse{ID: s.Ref, Reason: s.Reason})
	}
	return out
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
		// RFC 3339 allows a lowercase t and z (section 5.6); Go's layout does not.
		t, err := time.Parse(time.RFC3339, strings.ToUpper(p.val))
		if err != nil {
			return f, apperr.Invalid(p.name, "not an RFC 3339 time")
		}
		*p.dst = &t
	}
	// An empty range would match nothing: more likely a mistake than a question.
	if f.Since != nil && f.Until != nil && !f.Until.After(*f.Since) {
		return f, apperr.Invalid("until", "must be after since (%s)", f.Since.Format(time.RFC3339))
	}
	return f, nil
}
