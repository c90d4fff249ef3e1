// Package ports exposes the delivery module over HTTP and to the broker.
package ports

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/mailroom/mailroom/modules/delivery/internal/app"
)

// HTTP serves the rendered message of an email.
type HTTP struct {
	Store app.Store
}

// Register adds GET /api/emails/{id}/raw to g (the /api group).
func (h HTTP) Register(g *echo.Group) {
	g.GET("/emails/:id/raw", h.raw)
}

func (h HTTP) raw(c echo.Context) error {
	raw, err := h.Store.Raw(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	return c.Blob(http.StatusOK, "message/rfc822", raw)
}
