package ports

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/mailroom/mailroom/modules/emails/contract"
	"github.com/mailroom/mailroom/modules/emails/internal/app"
	"github.com/mailroom/mailroom/platform/apperr"
	"github.com/mailroom/mailroom/platform/auth"
	"github.com/mailroom/mailroom/platform/httpserver"
)

// eventPage is the answer of GET /api/events.
type eventPage struct {
	Items      []contract.Event `json:"items"`
	NextCursor string           `json:"next_cursor"`
}

// listEvents serves GET /api/events?after=&type=&email_id=&limit=.
func (h HTTP) listEvents(c echo.Context) error {
	if err := httpserver.KnownQuery(c, "after", "type", "email_id", "limit"); err != nil {
		return err
	}
	q := app.EventQuery{After: c.QueryParam("after"), Type: c.QueryParam("type"), EmailID: c.QueryParam("email_id")}
	if q.EmailID != "" && !validCursor(q.EmailID) {
		return apperr.Invalid("email_id", "not an email id")
	}
	var err error
	if q.Limit, err = httpserver.QueryLimit(c, app.MaxEventPage); err != nil {
		return err
	}
	by, err := auth.Require(c.Request().Context())
	if err != nil {
		return err
	}
	page, err := h.Events.Handle(c.Request().Context(), q, by)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, eventPage{Items: page.Events, NextCursor: page.Next})
}
