// Package ports exposes the apikeys module over HTTP: the middleware in front of
// every /api route, and the admin routes that manage keys.
package ports

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/mailroom/mailroom/modules/apikeys/internal/app"
	"github.com/mailroom/mailroom/modules/apikeys/internal/domain"
	"github.com/mailroom/mailroom/platform/apperr"
	"github.com/mailroom/mailroom/platform/auth"
	"github.com/mailroom/mailroom/platform/httpserver"
	"github.com/mailroom/mailroom/platform/logging"
)

// HTTP serves /api/keys and authenticates /api.
type HTTP struct {
	Authenticate app.Authenticate
	Limits       *app.Limiter
	Manage       app.ManageKeys
	Log          *slog.Logger
}

// Middleware authenticates every request of the group it is used on: a missing,
// malformed, unknown or revoked key is 401 with WWW-Authenticate; a key over its
// rate is 429 with Retry-After; otherwise the request's context carries the
// auth.Principal for the handlers.
func (h HTTP) Middleware() echo.MiddlewareFunc {
	// Refusals are logged a line a second at most: a client sending bad keys in a
	// loop must not grow the log by a line a request.
	refusals := logging.NewSampler(time.Second)
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			req := c.Request()
			values := req.Header.Values(echo.HeaderAuthorization)
			if len(values) == 0 {
				c.Response().Header().Set(echo.HeaderWWWAuthenticate, auth.Challenge)
				return auth.Unauthorized("missing API key: send Authorization: Bearer <key>")
			}
			secret, ok := bearer(values)
			if !ok {
				c.Response().Header().Set(echo.HeaderWWWAuthenticate, auth.ChallengeInvalid)
				return auth.Unauthorized("the Authorization header must be one \"Bearer <key>\"")
			}
			p, err := h.Authenticate.Handle(req.Context(), secret)
			switch {
			case errors.Is(err, app.ErrInvalidKey), errors.Is(err, app.ErrRevokedKey):
				if n := refusals.Take(time.Now()); n > 0 {
					h.Log.Info("API key refused", "reason", err.Error(), "remote_ip", c.RealIP(), "refused", n,
						"method", req.Method, "path", c.Path(), logging.KeyCorrelationID, c.Response().Header().Get(echo.HeaderXRequestID))
				}
				c.Response().Header().Set(echo.HeaderWWWAuthenticate, auth.ChallengeInvalid)
				return auth.Unauthorized(err.Error())
			case err != nil:
				return apperr.Unavailable("cannot check the API key right now", err)
			}
			if ok, wait := h.Limits.Allow(p.KeyID); !ok {
				secs := int(wait / time.Second)
				c.Response().Header().Set(echo.HeaderRetryAfter, strconv.Itoa(secs))
				return apperr.New(apperr.CodeRateLimited, "this API key is over its rate of %g requests per second: retry after %d s",
					h.Limits.Rate(), secs)
			}
			c.SetRequest(req.WithContext(auth.WithPrincipal(req.Context(), p)))
			return next(c)
		}
	}
}

// bearer returns the key of a single "Bearer <key>" header (the scheme is
// case-insensitive, RFC 7235).
func bearer(values []string) (string, bool) {
	if len(values) != 1 {
		return "", false
	}
	scheme, key, ok := strings.Cut(values[0], " ")
	key = strings.TrimSpace(key)
	if !ok || !strings.EqualFold(scheme, "Bearer") || key == "" || strings.ContainsAny(key, " \t") {
		return "", false
	}
	return key, true
}

// Register adds the admin routes that manage keys to g (the /api group).
func (h HTTP) Register(g *echo.Group) {
	admin := auth.RequireScope(auth.ScopeAdmin)
	g.GET("/keys", h.list, admin)
	g.POST("/keys", h.create, admin)
	g.DELETE("/keys/:id", h.revoke, admin)
}

// KeyResponse is a stored key as the API and the CLI show it: never the key itself.
type KeyResponse struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Scope     string     `json:"scope"`
	Prefix    string     `json:"prefix"`
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at"`
	// AllowedFrom is the domains and addresses the key may send as; empty means
	// any sender.
	AllowedFrom []string `json:"allowed_from"`
}

// CreatedResponse is the answer to a created key: the one time the key is shown.
type CreatedResponse struct {
	KeyResponse
	Key string `json:"key"`
}

// ToResponse shapes a key for output.
func ToResponse(k domain.Key) KeyResponse {
	allowed := k.AllowedFrom
	if allowed == nil {
		allowed = []string{} // shown as [], never null: the list is always a list
	}
	return KeyResponse{ID: k.ID, Name: k.Name, Scope: string(k.Scope), Prefix: k.Prefix, CreatedAt: k.CreatedAt,
		RevokedAt: k.RevokedAt, AllowedFrom: allowed}
}

type createRequest struct {
	Name  string `json:"name"`
	Scope string `json:"scope"`
	// AllowedFrom restricts the key to these sender domains and addresses.
	AllowedFrom []string `json:"allowed_from"`
}

type listResponse struct {
	Items []KeyResponse `json:"items"`
}

func (h HTTP) list(c echo.Context) error {
	if err := httpserver.KnownQuery(c); err != nil {
		return err
	}
	keys, err := h.Manage.List(c.Request().Context())
	if err != nil {
		return err
	}
	out := listResponse{Items: make([]KeyResponse, 0, len(keys))}
	for _, k := range keys {
		out.Items = append(out.Items, ToResponse(k))
	}
	return c.JSON(http.StatusOK, out)
}

func (h HTTP) create(c echo.Context) error {
	var req createRequest
	if err := httpserver.DecodeJSON(c, &req); err != nil {
		return err
	}
	created, err := h.Manage.Create(c.Request().Context(), req.Name, req.Scope, req.AllowedFrom)
	if err != nil {
		return err
	}
	by, _ := auth.FromContext(c.Request().Context())
	h.Log.Info("API key created", "key_id", created.Key.ID, "name", created.Key.Name, "scope", created.Key.Scope,
		"allowed_from", created.Key.AllowedFrom, "by", by.KeyID)
	c.Response().Header().Set(echo.HeaderLocation, "/api/keys/"+created.Key.ID)
	c.Response().Header().Set(echo.HeaderCacheControl, "no-store")
	return c.JSON(http.StatusCreated, CreatedResponse{KeyResponse: ToResponse(created.Key), Key: created.Secret})
}

func (h HTTP) revoke(c echo.Context) error {
	k, err := h.Manage.Revoke(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	by, _ := auth.FromContext(c.Request().Context())
	h.Log.Info("API key revoked", "key_id", k.ID, "name", k.Name, "by", by.KeyID)
	return c.JSON(http.StatusOK, ToResponse(k))
}
