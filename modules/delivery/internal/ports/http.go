// Package ports exposes the delivery module over HTTP: the rendered message of an
// email.
package ports

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/mailroom/mailroom/modules/delivery/internal/app"
	"github.com/mailroom/mailroom/platform/apperr"
	"github.com/mailroom/mailroom/platform/auth"
)

// HTTP serves the rendered message of an email.
type HTTP struct {
	Store app.Store
}

// Register adds GET /api/emails/{id}/raw to g (the /api group).
func (h HTTP) Register(g *echo.Group) {
	g.GET("/emails/:id/raw", h.raw)
}

// raw answers the message to the key that sent the email and to admins. To any
// other key it answers exactly as for an id with no rendered message (unknown, or
// not rendered yet), so that a send key cannot even learn which ids are taken.
func (h HTTP) raw(c echo.Context) error {
	ctx, id := c.Request().Context(), c.Param("id")
	p, err := auth.Require(ctx)
	if err != nil {
		return err
	}
	raw, owner, err := h.Store.Raw(ctx, id)
	if e, ok := apperr.As(err); ok && e.Code == apperr.CodeNotFound {
		return notRendered(id)
	}
	if err != nil {
		return err
	}
	if !p.CanSee(owner) {
		return notRendered(id)
	}
	return c.Blob(http.StatusOK, "message/rfc822", raw)
}

// notRendered is the one answer raw gives for a message it does not show.
func notRendered(id string) error {
	return apperr.NotFound("rendered message of email", id)
}
