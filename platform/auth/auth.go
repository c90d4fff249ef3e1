// Package auth carries who is calling the API through a request: the Principal that
// the API-key middleware authenticated, and the checks every module makes with it
// (scope, ownership). It exists so that modules can authorise without importing the
// module that owns the keys.
package auth

import (
	"context"
	"fmt"

	"github.com/labstack/echo/v4"

	"github.com/mailroom/mailroom/platform/apperr"
)

// Scope is what an API key may do. Scopes are part of the API (they are stored with
// each key and shown by `mailroom keys list`).
type Scope string

// The scopes a key can have.
const (
	// ScopeSend may send emails and read the emails it sent.
	ScopeSend Scope = "send"
	// ScopeAdmin may do everything: read every email, manage dead letters and keys.
	ScopeAdmin Scope = "admin"
)

// ParseScope checks a scope given by a user (CLI flag or JSON field).
func ParseScope(s string) (Scope, error) {
	switch Scope(s) {
	case ScopeSend, ScopeAdmin:
		return Scope(s), nil
	}
	return "", fmt.Errorf("scope must be %q or %q, got %q", ScopeSend, ScopeAdmin, s)
}

// Includes reports whether a key with scope s may do what needs scope need: admin
// includes send, send includes only itself.
func (s Scope) Includes(need Scope) bool {
	switch s {
	case ScopeAdmin:
		return need == ScopeAdmin || need == ScopeSend
	case ScopeSend:
		return need == ScopeSend
	}
	return false
}

// Principal is the authenticated caller of one request: which key, and what it may do.
type Principal struct {
	// KeyID identifies the key (never the key itself); resources record it as their
	// owner.
	KeyID string
	// Name is the key's human name, for logs.
	Name  string
	Scope Scope
}

// SeesEverything reports whether the principal reads every resource, not only the
// ones its key created.
func (p Principal) SeesEverything() bool { return p.Scope == ScopeAdmin }

// CanSee reports whether the principal may read a resource created by the key
// owner: admin keys read everything, send keys only what they created themselves.
// A resource with no recorded owner (created before keys existed) is admin-only.
func (p Principal) CanSee(owner string) bool {
	if p.SeesEverything() {
		return true
	}
	return p.Scope == ScopeSend && owner != "" && owner == p.KeyID
}

type principalKey struct{}

// WithPrincipal returns ctx carrying p; the API-key middleware calls it.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the principal the middleware put in ctx, if any.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok && p.KeyID != ""
}

// Require returns the request's principal, or an unauthorized error when there is
// none: handlers call it so that a route mounted without the middleware fails closed.
func Require(ctx context.Context) (Principal, error) {
	p, ok := FromContext(ctx)
	if !ok {
		return Principal{}, Unauthorized("missing API key: send Authorization: Bearer <key>")
	}
	return p, nil
}

// Unauthorized is the error of a request without a valid key (401). The middleware
// adds the WWW-Authenticate header.
func Unauthorized(message string) *apperr.Error {
	return apperr.New(apperr.CodeUnauthorized, "%s", message)
}

// RequireScope is route middleware: it answers 401 when the request carries no
// principal and 403 when the principal's scope does not include need.
func RequireScope(need Scope) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			p, err := Require(c.Request().Context())
			if err != nil {
				c.Response().Header().Set(echo.HeaderWWWAuthenticate, Challenge)
				return err
			}
			if !p.Scope.Includes(need) {
				return apperr.New(apperr.CodeForbidden, "this API key has scope %q; this route needs %q", p.Scope, need)
			}
			return next(c)
		}
	}
}

// Challenge is the WWW-Authenticate value of a 401 (RFC 6750).
const Challenge = `Bearer realm="mailroom"`

// ChallengeInvalid is the WWW-Authenticate value of a 401 for a key that was sent
// but is wrong or revoked (RFC 6750, error="invalid_token").
const ChallengeInvalid = `Bearer realm="mailroom", error="invalid_token"`
