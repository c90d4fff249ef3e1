// Package auth carries who is calling the API through a request: the Principal that
// the API-key middleware authenticated, and the checks every module makes with it
// (scope, ownership). It exists so that modules can authorise without importing the
// module that owns the keys.
package auth

import (
	"context"
	"fmt"
	"strings"

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
	// AllowedFrom restricts the From addresses the key may send as: each entry is a
	// domain ("example.com") or an address ("team@example.com"), lower case. Empty
	// means any From (keys made without a restriction, and the keys of
	// auth.api_keys). MaySendAs reads it; CheckSender answers with it.
	AllowedFrom []string
}

// MaySendAs reports whether the principal may send an email whose From is address
// (a bare local@domain address, display name removed). A key with no AllowedFrom
// may send as anyone. Otherwise an address entry matches the whole address and a
// domain entry matches the address's domain exactly, both case-insensitively: a
// subdomain matches only when listed itself, so "example.com" does not allow
// "a@mail.example.com".
func (p Principal) MaySendAs(address string) bool {
	if len(p.AllowedFrom) == 0 {
		return true
	}
	at := strings.LastIndexByte(address, '@')
	if at < 0 {
		return false
	}
	domain := address[at+1:]
	for _, allowed := range p.AllowedFrom {
		if strings.Contains(allowed, "@") {
			if strings.EqualFold(allowed, address) {
				return true
			}
		} else if strings.EqualFold(allowed, domain) {
			return true
		}
	}
	return false
}

// CheckSender returns nil when the principal may send as address (MaySendAs), and
// otherwise the 403 that names field and says which senders the key allows, so a
// client can tell a refused sender from a refused route.
func (p Principal) CheckSender(field, address string) error {
	if p.MaySendAs(address) {
		return nil
	}
	return &apperr.Error{Code: apperr.CodeForbidden, Field: field, Message: fmt.Sprintf(
		"%s: this API key may not send as %s: it may send only from %s",
		field, apperr.Clip(address), strings.Join(p.AllowedFrom, ", "))}
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
