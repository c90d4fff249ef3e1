package auth_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/mailroom/mailroom/platform/apperr"
	"github.com/mailroom/mailroom/platform/auth"
)

func TestWhoSeesWhat(t *testing.T) {
	admin := auth.Principal{KeyID: "k-admin", Scope: auth.ScopeAdmin}
	alice := auth.Principal{KeyID: "k-alice", Scope: auth.ScopeSend}
	cases := []struct {
		name  string
		p     auth.Principal
		owner string
		want  bool
	}{
		{"an admin sees another key's email", admin, "k-alice", true},
		{"an admin sees an email with no recorded key", admin, "", true},
		{"a send key sees its own email", alice, "k-alice", true},
		{"a send key does not see another key's email", alice, "k-bob", false},
		{"a send key does not see an email with no recorded key", alice, "", false},
		{"no principal sees nothing", auth.Principal{}, "", false},
		{"an unknown scope sees nothing, not even its own", auth.Principal{KeyID: "k", Scope: "root"}, "k", false},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.CanSee(tt.owner); got != tt.want {
				t.Errorf("CanSee(%q) = %v, want %v", tt.owner, got, tt.want)
			}
		})
	}
}

func TestScopes(t *testing.T) {
	cases := []struct {
		name       string
		have, need auth.Scope
		want       bool
	}{
		{"admin includes admin", auth.ScopeAdmin, auth.ScopeAdmin, true},
		{"admin includes send", auth.ScopeAdmin, auth.ScopeSend, true},
		{"send includes send", auth.ScopeSend, auth.ScopeSend, true},
		{"send does not include admin", auth.ScopeSend, auth.ScopeAdmin, false},
		{"no scope includes nothing", "", auth.ScopeSend, false},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.have.Includes(tt.need); got != tt.want {
				t.Errorf("%q.Includes(%q) = %v, want %v", tt.have, tt.need, got, tt.want)
			}
		})
	}
	for _, s := range []string{"send", "admin"} {
		if got, err := auth.ParseScope(s); err != nil || string(got) != s {
			t.Errorf("ParseScope(%q) = %q, %v", s, got, err)
		}
	}
	for _, s := range []string{"", "Admin", "root"} {
		if _, err := auth.ParseScope(s); err == nil {
			t.Errorf("ParseScope(%q) succeeded", s)
		}
	}
}

func TestRequireScope(t *testing.T) {
	cases := []struct {
		name string
		p    *auth.Principal
		code apperr.Code // "" when let through
	}{
		{"no principal is unauthorized", nil, apperr.CodeUnauthorized},
		{"a send key on an admin route is forbidden", &auth.Principal{KeyID: "k", Scope: auth.ScopeSend}, apperr.CodeForbidden},
		{"an admin key is let through", &auth.Principal{KeyID: "k", Scope: auth.ScopeAdmin}, ""},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			if tt.p != nil {
				req = req.WithContext(auth.WithPrincipal(context.Background(), *tt.p))
			}
			rec := httptest.NewRecorder()
			c := echo.New().NewContext(req, rec)
			called := false
			err := auth.RequireScope(auth.ScopeAdmin)(func(echo.Context) error { called = true; return nil })(c)
			if tt.code == "" {
				if err != nil || !called {
					t.Errorf("err %v, called %v; want the handler called", err, called)
				}
				return
			}
			e, ok := apperr.As(err)
			if !ok || e.Code != tt.code || called {
				t.Errorf("err %v, called %v; want code %s and no handler", err, called, tt.code)
			}
			if tt.code == apperr.CodeUnauthorized && rec.Header().Get("WWW-Authenticate") != auth.Challenge {
				t.Errorf("WWW-Authenticate %q, want %q", rec.Header().Get("WWW-Authenticate"), auth.Challenge)
			}
		})
	}
}

func TestAKeyRestrictedToSendersMaySendOnlyAsThem(t *testing.T) {
	restricted := auth.Principal{KeyID: "k", Scope: auth.ScopeSend,
		AllowedFrom: []string{"example.com", "team@other.example"}}
	anyone := auth.Principal{KeyID: "k", Scope: auth.ScopeSend}
	cases := []struct {
		name    string
		p       auth.Principal
		address string
		want    bool
	}{
		{"a key with no restriction sends as anyone", anyone, "x@anywhere.example", true},
		{"an address at a listed domain is allowed", restricted, "billing@example.com", true},
		{"the domain matches whatever its case", restricted, "billing@EXAMPLE.Com", true},
		{"a subdomain of a listed domain is refused", restricted, "a@mail.example.com", false},
		{"a domain that only ends like a listed one is refused", restricted, "a@badexample.com", false},
		{"a parent of a listed domain is refused", restricted, "a@com", false},
		{"a listed address is allowed", restricted, "team@other.example", true},
		{"a listed address matches whatever its case", restricted, "Team@Other.Example", true},
		{"another address at a listed address's domain is refused", restricted, "boss@other.example", false},
		{"an address that is not an address is refused", restricted, "example.com", false},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.MaySendAs(tt.address); got != tt.want {
				t.Errorf("MaySendAs(%q) = %v, want %v", tt.address, got, tt.want)
			}
			err := tt.p.CheckSender("from", tt.address)
			if tt.want != (err == nil) {
				t.Fatalf("CheckSender(%q) = %v, want an error: %v", tt.address, err, !tt.want)
			}
			if err == nil {
				return
			}
			e, ok := apperr.As(err)
			if !ok || e.Code != apperr.CodeForbidden || e.Field != "from" ||
				!strings.HasPrefix(e.Message, "from: ") || !strings.Contains(e.Message, "example.com, team@other.example") {
				t.Errorf("CheckSender(%q) = %#v, want a forbidden error naming from and the allowed senders", tt.address, err)
			}
		})
	}
}
