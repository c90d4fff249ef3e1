// Package ports exposes the suppressions module: the suppression list over HTTP,
// and the consumer that keeps the module's table in step with topics.suppressions.
package ports

import (
	"net/http"
	"net/url"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/mailroom/mailroom/modules/suppressions/internal/app"
	"github.com/mailroom/mailroom/platform/apperr"
	"github.com/mailroom/mailroom/platform/auth"
	"github.com/mailroom/mailroom/platform/httpserver"
)

// HTTP serves the suppression list.
type HTTP struct {
	Manage app.Manage
}

// Register adds the routes to g (the /api group). The suppression list names
// everyone's recipients, so only admin keys manage it.
func (h HTTP) Register(g *echo.Group) {
	admin := auth.RequireScope(auth.ScopeAdmin)
	g.GET("/suppressions", h.list, admin)
	g.POST("/suppressions", h.add, admin)
	g.DELETE("/suppressions/:address", h.remove, admin)
}

// SuppressionResponse is a suppressed address as the API and the CLI show it.
type SuppressionResponse struct {
	Address   string    `json:"address"`
	Reason    string    `json:"reason"`
	Detail    string    `json:"detail"`
	EmailID   string    `json:"email_id"`
	Source    string    `json:"source"`
	CreatedAt time.Time `json:"created_at"`
}

// ToSuppressionResponse shapes a suppression for output.
func ToSuppressionResponse(s app.Suppression) SuppressionResponse {
	return SuppressionResponse{Address: s.Address, Reason: s.Reason, Detail: s.Detail, EmailID: s.EmailID,
		Source: s.Source, CreatedAt: s.CreatedAt}
}

func (h HTTP) list(c echo.Context) error {
	if err := httpserver.KnownQuery(c, "address", "limit", "cursor"); err != nil {
		return err
	}
	f := app.Filter{AddressContains: c.QueryParam("address")}
	var err error
	if f.Limit, err = httpserver.QueryLimit(c, app.MaxPage); err != nil {
		return err
	}
	if f.Cursor, err = httpserver.QueryCursor(c); err != nil {
		return err
	}
	items, next, err := h.Manage.List(c.Request().Context(), f)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, httpserver.PageOf(items, next, ToSuppressionResponse))
}

// addRequest is the body of POST /api/suppressions.
type addRequest struct {
	Address string `json:"address"`
	Reason  string `json:"reason"`
}

// add answers 201 with the new suppression, or 200 with the one the address had
// already (adding is idempotent).
func (h HTTP) add(c echo.Context) error {
	var req addRequest
	if err := httpserver.DecodeJSON(c, &req); err != nil {
		return err
	}
	s, created, err := h.Manage.Add(c.Request().Context(), req.Address, req.Reason)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return c.JSON(status, ToSuppressionResponse(s))
}

func (h HTTP) remove(c echo.Context) error {
	address := c.Param("address")
	// Echo routes on the raw path when the request escaped something (the console's
	// encodeURIComponent writes @ as %40), and then hands the parameter over raw.
	if c.Request().URL.RawPath != "" {
		var err error
		if address, err = url.PathUnescape(address); err != nil {
			return apperr.Invalid("address", "not a valid percent-encoded path segment")
		}
	}
	if err := h.Manage.Remove(c.Request().Context(), address); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
