// Package ports exposes the delivery module over HTTP and to the broker.
package ports

import (
	"context"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/mailroom/mailroom/modules/delivery/internal/app"
	"github.com/mailroom/mailroom/platform/apperr"
	"github.com/mailroom/mailroom/platform/auth"
)

// HTTP serves the rendered message of an email.
type HTTP struct {
	Store app.Store
	// CanRead says whether the caller may read the email (see delivery.Config).
	CanRead func(ctx context.Context, emailID string) error
}

// Register adds GET /api/emails/{id}/raw to g (the /api group).
func (h HTTP) Register(g *echo.Group) {
	g.GET("/emails/:id/raw", h.raw)
}

func (h HTTP) raw(c echo.Context) error {
	ctx, id := c.Request().Context(), c.Param("id")
	p, err := auth.Require(ctx)
	if err != nil {
		return err
	}
	switch {
	case h.CanRead != nil:
		if err := h.CanRead(ctx, id); err != nil {
			return err
		}
	case !p.SeesEverything():
		return apperr.NotFound("email", id)
	}
	raw, err := h.Store.Raw(ctx, id)
	if err != nil {
		return err
	}
	return c.Blob(http.StatusOK, "message/rfc822", raw)
}
