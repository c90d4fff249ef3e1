// Package ports exposes webhook endpoints over HTTP and feeds lifecycle events from
// the broker to the fan-out.
package ports

import (
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/mailroom/mailroom/modules/webhooks/internal/app"
	"github.com/mailroom/mailroom/modules/webhooks/internal/domain"
	"github.com/mailroom/mailroom/platform/auth"
	"github.com/mailroom/mailroom/platform/httpserver"
)

// HTTP serves /api/webhooks.
type HTTP struct{ Manage app.Manage }

// Register adds the routes to g (the /api group). Webhooks receive every sender's
// events, so only admin keys manage them.
func (h HTTP) Register(g *echo.Group) {
	admin := auth.RequireScope(auth.ScopeAdmin)
	g.POST("/webhooks", h.create, admin)
	g.GET("/webhooks", h.list, admin)
	g.GET("/webhooks/:id", h.get, admin)
	g.PATCH("/webhooks/:id", h.update, admin)
	g.DELETE("/webhooks/:id", h.delete, admin)
	g.POST("/webhooks/:id/rotate-secret", h.rotate, admin)
	g.GET("/webhooks/:id/deliveries", h.deliveries, admin)
	g.POST("/webhooks/:id/deliveries/:delivery_id/replay", h.replay, admin)
}

// EndpointResponse is an endpoint as the API and the CLI show it: never its secret.
type EndpointResponse struct {
	ID          string   `json:"id"`
	URL         string   `json:"url"`
	Events      []string `json:"events"`
	Description string   `json:"description"`
	Enabled     bool     `json:"enabled"`
	// DisabledReason says why a disabled endpoint was disabled; "" while enabled.
	DisabledReason string    `json:"disabled_reason"`
	CreatedAt      time.Time `json:"created_at"`
}

// CreatedResponse is an endpoint just created, with its secret: the only answer
// beside rotate-secret's that shows it.
type CreatedResponse struct {
	ID             string    `json:"id"`
	URL            string    `json:"url"`
	Events         []string  `json:"events"`
	Description    string    `json:"description"`
	Enabled        bool      `json:"enabled"`
	DisabledReason string    `json:"disabled_reason"`
	CreatedAt      time.Time `json:"created_at"`
	Secret         string    `json:"secret"`
}

// ToResponse shapes an endpoint for output.
func ToResponse(e domain.Endpoint) EndpointResponse {
	return EndpointResponse{ID: e.ID, URL: e.URL, Events: e.Events, Description: e.Description, Enabled: e.Enabled,
		DisabledReason: e.DisabledReason, CreatedAt: e.CreatedAt}
}

// ToCreated shapes a new endpoint, with its secret, for output.
func ToCreated(e domain.Endpoint) CreatedResponse {
	return CreatedResponse{ID: e.ID, URL: e.URL, Events: e.Events, Description: e.Description, Enabled: e.Enabled,
		DisabledReason: e.DisabledReason, CreatedAt: e.CreatedAt, Secret: e.Secret}
}

// DeliveryResponse is a delivery as the API shows it: the last try's outcome.
type DeliveryResponse struct {
	ID             string    `json:"id"`
	EventID        string    `json:"event_id"`
	EventType      string    `json:"event_type"`
	Status         string    `json:"status"`
	Attempts       int       `json:"attempts"`
	NextAttemptAt  *string   `json:"next_attempt_at"`
	LastStatusCode *int      `json:"last_status_code"`
	LastDurationMs *int64    `json:"last_duration_ms"`
	LastResponse   string    `json:"last_response"`
	LastError      string    `json:"last_error"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
}

// toDelivery shapes a delivery; next_attempt_at is null once it is final.
func toDelivery(d domain.Delivery) DeliveryResponse {
	r := DeliveryResponse{ID: strconv.FormatInt(d.ID, 10), EventID: d.EventID, EventType: d.EventType, Status: d.Status,
		Attempts: d.Attempts, LastStatusCode: d.LastStatusCode, LastDurationMs: d.LastDurationMs,
		LastResponse: d.LastResponse, LastError: d.LastError, CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt}
	if d.Status == domain.StatusPending {
		at := d.NextAttemptAt.Format(time.RFC3339Nano)
		r.NextAttemptAt = &at
	}
	return r
}

// createRequest is the body of POST /api/webhooks.
type createRequest struct {
	URL         string   `json:"url"`
	Events      []string `json:"events"`
	Description string   `json:"description"`
}

// updateRequest is the body of PATCH /api/webhooks/{id}; absent fields stay.
type updateRequest struct {
	URL         *string   `json:"url"`
	Events      *[]string `json:"events"`
	Description *string   `json:"description"`
	Enabled     *bool     `json:"enabled"`
}

func (h HTTP) create(c echo.Context) error {
	if err := httpserver.KnownQuery(c); err != nil {
		return err
	}
	var body createRequest
	if err := httpserver.DecodeJSON(c, &body); err != nil {
		return err
	}
	ep, err := h.Manage.Create(c.Request().Context(), app.NewEndpoint{URL: body.URL, Events: body.Events, Description: body.Description})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, ToCreated(ep))
}

type listResponse struct {
	Items []EndpointResponse `json:"items"`
}

func (h HTTP) list(c echo.Context) error {
	if err := httpserver.KnownQuery(c); err != nil {
		return err
	}
	eps, err := h.Manage.List(c.Request().Context())
	if err != nil {
		return err
	}
	out := listResponse{Items: make([]EndpointResponse, 0, len(eps))}
	for _, e := range eps {
		out.Items = append(out.Items, ToResponse(e))
	}
	return c.JSON(http.StatusOK, out)
}

func (h HTTP) get(c echo.Context) error {
	if err := httpserver.KnownQuery(c); err != nil {
		return err
	}
	ep, err := h.Manage.Get(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, ToResponse(ep))
}

func (h HTTP) update(c echo.Context) error {
	if err := httpserver.KnownQuery(c); err != nil {
		return err
	}
	var body updateRequest
	if err := httpserver.DecodeJSON(c, &body); err != nil {
		return err
	}
	ep, err := h.Manage.Update(c.Request().Context(), c.Param("id"), app.EndpointChange{URL: body.URL, Events: body.Events,
		Description: body.Description, Enabled: body.Enabled})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, ToResponse(ep))
}

func (h HTTP) delete(c echo.Context) error {
	if err := httpserver.KnownQuery(c); err != nil {
		return err
	}
	if err := h.Manage.Delete(c.Request().Context(), c.Param("id")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (h HTTP) rotate(c echo.Context) error {
	if err := httpserver.KnownQuery(c); err != nil {
		return err
	}
	secret, err := h.Manage.RotateSecret(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]string{"secret": secret})
}

func (h HTTP) deliveries(c echo.Context) error {
	if err := httpserver.KnownQuery(c, "limit", "cursor"); err != nil {
		return err
	}
	limit, err := httpserver.QueryLimit(c, app.MaxPageSize)
	if err != nil {
		return err
	}
	cursor, err := httpserver.QueryCursor(c)
	if err != nil {
		return err
	}
	items, next, err := h.Manage.Deliveries(c.Request().Context(), c.Param("id"), cursor, limit)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, httpserver.PageOf(items, next, toDelivery))
}

func (h HTTP) replay(c echo.Context) error {
	if err := httpserver.KnownQuery(c); err != nil {
		return err
	}
	d, err := h.Manage.Replay(c.Request().Context(), c.Param("id"), c.Param("delivery_id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, toDelivery(d))
}
