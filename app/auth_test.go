package app_test

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/mailroom/mailroom/app/apptest"
)

// routeScope is the scope each /api route needs. Every route the app registers must
// be listed here: a new route fails TestEveryAPIRouteAnswersByTheKeyItIsGiven until
// someone decides who may call it.
var routeScope = map[string]string{
	"GET /api/openapi.json":                                 "public", // the API's description, for clients without a key yet
	"POST /api/emails":                                      "send",
	"POST /api/emails/batch":                                "send",
	"GET /api/emails":                                       "send",
	"GET /api/emails/:id":                                   "send",
	"GET /api/emails/:id/raw":                               "send",
	"GET /api/events":                                       "send",
	"PATCH /api/emails/:id":                                 "send",
	"POST /api/emails/:id/cancel":                           "send",
	"GET /api/dead-letters":                                 "admin",
	"POST /api/dead-letters/replay":                         "admin",
	"POST /api/dead-letters/:id/replay":                     "admin",
	"DELETE /api/dead-letters/:id":                          "admin",
	"GET /api/dead-letters/:id":                             "admin",
	"GET /api/suppressions":                                 "admin",
	"POST /api/suppressions":                                "admin",
	"DELETE /api/suppressions/:address":                     "admin",
	"GET /api/keys":                                         "admin",
	"POST /api/keys":                                        "admin",
	"DELETE /api/keys/:id":                                  "admin",
	"POST /api/webhooks":                                    "admin",
	"GET /api/webhooks":                                     "admin",
	"GET /api/webhooks/:id":                                 "admin",
	"PATCH /api/webhooks/:id":                               "admin",
	"DELETE /api/webhooks/:id":                              "admin",
	"POST /api/webhooks/:id/rotate-secret":                  "admin",
	"GET /api/webhooks/:id/deliveries":                      "admin",
	"POST /api/webhooks/:id/deliveries/:delivery_id/replay": "admin",
	"GET /api/stats":                                        "admin", // the console's overview
}

// createKey makes a key through the admin API and returns its id and the key.
func createKey(t *testing.T, in *apptest.Instance, name, scope string) (id, key string) {
	t.Helper()
	r := in.Do(t, http.MethodPost, "/api/keys", map[string]string{"name": name, "scope": scope})
	if r.Status != http.StatusCreated {
		t.Fatalf("POST /api/keys: %d %s", r.Status, r.Body)
	}
	var out struct{ ID, Key string }
	r.JSON(t, &out)
	return out.ID, out.Key
}

func errorCode(t *testing.T, r apptest.Response) string {
	t.Helper()
	var b struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	r.JSON(t, &b)
	if b.Error.Message == "" {
		t.Errorf("error body %s has no message", r.Body)
	}
	return b.Error.Code
}

func TestEveryAPIRouteAnswersByTheKeyItIsGiven(t *testing.T) {
	t.Parallel()
	in := apptest.Start(t, apptest.Config(t))
	_, sendKey := createKey(t, in, "sender", "send")
	revokedID, revokedKey := createKey(t, in, "gone", "admin")
	if r := in.Do(t, http.MethodDelete, "/api/keys/"+revokedID, nil); r.Status != http.StatusOK {
		t.Fatalf("revoke: %d %s", r.Status, r.Body)
	}

	var routes []*echo.Route
	for _, r := range in.App.Routes() {
		if strings.HasPrefix(r.Path, "/api") && r.Method != echo.RouteNotFound {
			routes = append(routes, r)
		}
	}
	seen := map[string]bool{}
	for _, r := range routes {
		seen[r.Method+" "+r.Path] = true
	}
	for route := range routeScope {
		if !seen[route] {
			t.Errorf("route %s is in the access table but the app does not serve it", route)
		}
	}

	refused := []struct {
		name      string
		headers   []string
		challenge string
	}{
		{"no key", apptest.NoKey, `Bearer realm="mailroom"`},
		{"a wrong key", apptest.Bearer("mr_" + strings.Repeat("A", 43)), `Bearer realm="mailroom", error="invalid_token"`},
		{"a config-length wrong key", apptest.Bearer("not-the-key-at-all-0123456789"), `Bearer realm="mailroom", error="invalid_token"`},
		{"a revoked key", apptest.Bearer(revokedKey), `Bearer realm="mailroom", error="invalid_token"`},
		{"the right key under another scheme", []string{"Authorization", "Basic " + apptest.AdminKey}, `Bearer realm="mailroom", error="invalid_token"`},
		{"the right key with no scheme", []string{"Authorization", apptest.AdminKey}, `Bearer realm="mailroom", error="invalid_token"`},
	}
	for _, route := range routes {
		name := route.Method + " " + route.Path
		scope, listed := routeScope[name]
		if !listed {
			t.Errorf("route %s is not in the access table: decide which scope it needs", name)
			continue
		}
		path := strings.ReplaceAll(route.Path, ":id", "0198a1b2-0000-7000-8000-000000000000")
		path = strings.ReplaceAll(path, ":address", "nobody@example.com")
		var body any
		if route.Method == http.MethodPost {
			body = map[string]any{}
		}
		if scope == "public" {
			t.Run(name, func(t *testing.T) {
				if r := in.Do(t, route.Method, path, body, apptest.NoKey...); r.Status != http.StatusOK {
					t.Errorf("without a key: %d %s, want 200", r.Status, r.Body)
				}
			})
			continue
		}
		t.Run(name, func(t *testing.T) {
			for _, tt := range refused {
				r := in.Do(t, route.Method, path, body, tt.headers...)
				if r.Status != http.StatusUnauthorized {
					t.Errorf("with %s: %d %s, want 401", tt.name, r.Status, r.Body)
					continue
				}
				if code := errorCode(t, r); code != "unauthorized" {
					t.Errorf("with %s: code %q, want unauthorized", tt.name, code)
				}
				if got := r.Header.Get("WWW-Authenticate"); got != tt.challenge {
					t.Errorf("with %s: WWW-Authenticate %q, want %q", tt.name, got, tt.challenge)
				}
			}
			r := in.Do(t, route.Method, path, body, apptest.Bearer(sendKey)...)
			switch {
			case scope == "admin" && r.Status != http.StatusForbidden:
				t.Errorf("with a send key: %d %s, want 403", r.Status, r.Body)
			case scope == "admin" && errorCode(t, r) != "forbidden":
				t.Errorf("with a send key: %s, want code forbidden", r.Body)
			case scope == "send" && (r.Status == http.StatusUnauthorized || r.Status == http.StatusForbidden):
				t.Errorf("with a send key: %d %s, want it let through", r.Status, r.Body)
			}
			if r := in.Do(t, route.Method, path, body); r.Status == http.StatusUnauthorized || r.Status == http.StatusForbidden {
				t.Errorf("with the admin key: %d %s, want it let through", r.Status, r.Body)
			}
		})
	}

	t.Run("a wrong method on a known /api path is 405 with Allow, as outside /api", func(t *testing.T) {
		for _, tc := range []struct{ method, path, allow string }{
			{http.MethodDelete, "/api/emails", "OPTIONS, GET, POST"},
			{http.MethodPut, "/api/emails/0198a1b2-0000-7000-8000-000000000000", "OPTIONS, GET, PATCH"},
			{http.MethodGet, "/api/dead-letters/letter-1/replay", "OPTIONS, POST"},
			{http.MethodDelete, "/healthz", "OPTIONS, GET"},
		} {
			r := in.Do(t, tc.method, tc.path, nil)
			if r.Status != http.StatusMethodNotAllowed || r.Header.Get("Allow") != tc.allow {
				t.Errorf("%s %s: %d Allow %q %s, want 405 Allow %q", tc.method, tc.path, r.Status, r.Header.Get("Allow"), r.Body, tc.allow)
				continue
			}
			if code := errorCode(t, r); code != "method_not_allowed" {
				t.Errorf("%s %s: code %q, want method_not_allowed", tc.method, tc.path, code)
			}
		}
		if r := in.Do(t, http.MethodDelete, "/api/emails", nil, apptest.NoKey...); r.Status != http.StatusUnauthorized {
			t.Errorf("DELETE /api/emails without a key: %d %s, want 401", r.Status, r.Body)
		}
		if r := in.Do(t, http.MethodGet, "/api/nothing-here", nil); r.Status != http.StatusNotFound {
			t.Errorf("GET /api/nothing-here: %d %s, want 404", r.Status, r.Body)
		}
	})

	t.Run("an unknown /api path without a key is 401, not 404", func(t *testing.T) {
		if r := in.Do(t, http.MethodGet, "/api/nothing-here", nil, apptest.NoKey...); r.Status != http.StatusUnauthorized {
			t.Errorf("%d %s, want 401", r.Status, r.Body)
		}
	})
}

func TestOperationsRoutesNeedNoKey(t *testing.T) {
	t.Parallel()
	in := apptest.Start(t, apptest.Config(t))
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		t.Run(path+" answers 200 without a key", func(t *testing.T) {
			r := in.Do(t, http.MethodGet, path, nil, apptest.NoKey...)
			if r.Status != http.StatusOK {
				t.Errorf("%d %s, want 200", r.Status, r.Body)
			}
			if r.Header.Get("WWW-Authenticate") != "" {
				t.Errorf("WWW-Authenticate %q on an open route", r.Header.Get("WWW-Authenticate"))
			}
		})
	}
}

// TestASendKeySeesOnlyItsOwnEmails holds every read of an email (one, the list, the
// raw message) to the key that sent it; admin keys see everything.
func TestASendKeySeesOnlyItsOwnEmails(t *testing.T) {
	t.Parallel()
	in := apptest.Start(t, apptest.Config(t))
	_, alice := createKey(t, in, "alice", "send")
	_, bob := createKey(t, in, "bob", "send")
	_, otherAdmin := createKey(t, in, "ops", "admin")

	adminID := in.Send(t, apptest.NewEmail("from-admin@example.com"))
	aliceID := in.Send(t, apptest.NewEmail("from-alice@example.com"), apptest.Bearer(alice)...)
	in.WaitForStatus(t, adminID, "sent", 20*time.Second)
	in.WaitForStatus(t, aliceID, "sent", 20*time.Second)

	reads := []struct {
		name    string
		headers []string
		id      string
		want    int
	}{
		{"the sender reads its email", apptest.Bearer(alice), aliceID, http.StatusOK},
		{"another send key gets 404", apptest.Bearer(bob), aliceID, http.StatusNotFound},
		{"a send key gets 404 for the admin's email", apptest.Bearer(alice), adminID, http.StatusNotFound},
		{"the config admin key reads a send key's email", nil, aliceID, http.StatusOK},
		{"a stored admin key reads every email", apptest.Bearer(otherAdmin), adminID, http.StatusOK},
	}
	for _, tt := range reads {
		t.Run(tt.name, func(t *testing.T) {
			for _, suffix := range []string{"", "/raw"} {
				r := in.Do(t, http.MethodGet, "/api/emails/"+tt.id+suffix, nil, tt.headers...)
				if r.Status != tt.want {
					t.Errorf("GET /api/emails/{id}%s: %d %s, want %d", suffix, r.Status, r.Body, tt.want)
				}
				if tt.want == http.StatusNotFound && errorCode(t, r) != "not_found" {
					t.Errorf("GET /api/emails/{id}%s: %s, want code not_found", suffix, r.Body)
				}
			}
		})
	}

	lists := []struct {
		name    string
		headers []string
		want    []string
	}{
		{"the list shows a send key its emails only", apptest.Bearer(alice), []string{aliceID}},
		{"the list of a key that sent nothing is empty", apptest.Bearer(bob), nil},
		{"the list shows an admin every email", nil, []string{aliceID, adminID}},
	}
	for _, tt := range lists {
		t.Run(tt.name, func(t *testing.T) {
			for _, query := range []string{"", "?status=sent"} {
				r := in.Do(t, http.MethodGet, "/api/emails"+query, nil, tt.headers...)
				var page struct{ Items []struct{ ID string } }
				r.JSON(t, &page)
				var ids []string
				for _, it := range page.Items {
					ids = append(ids, it.ID)
				}
				if !slices.Equal(ids, tt.want) {
					t.Errorf("GET /api/emails%s lists %v, want %v", query, ids, tt.want)
				}
			}
		})
	}

	t.Run("two keys using the same Idempotency-Key get their own emails", func(t *testing.T) {
		a := in.Send(t, apptest.NewEmail("idem-a@example.com"), append(apptest.Bearer(alice), "Idempotency-Key", "same")...)
		b := in.Send(t, apptest.NewEmail("idem-b@example.com"), append(apptest.Bearer(bob), "Idempotency-Key", "same")...)
		again := in.Send(t, apptest.NewEmail("idem-a@example.com"), append(apptest.Bearer(alice), "Idempotency-Key", "same")...)
		if a == b {
			t.Errorf("bob's request answered with alice's email %s", a)
		}
		if again != a {
			t.Errorf("alice's repeat answered %s, want her first email %s", again, a)
		}
	})

	t.Run("the raw message of another key's email answers as an unknown id does", func(t *testing.T) {
		scheduledID := in.Send(t, map[string]any{"to": []string{"later@example.com"}, "subject": "later", "text": "hi",
			"send_at": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}, apptest.Bearer(bob)...)
		unknownID := "0198a1b2-0000-7000-8000-000000000000"
		// The id in the message is the one asked for; everything else must match.
		answer := func(headers []string, id string) string {
			r := in.Do(t, http.MethodGet, "/api/emails/"+id+"/raw", nil, headers...)
			return strconv.Itoa(r.Status) + " " + strings.ReplaceAll(string(r.Body), id, "{id}")
		}
		want := answer(apptest.Bearer(bob), unknownID)
		for name, got := range map[string]string{
			"another send key's email":        answer(apptest.Bearer(bob), aliceID),
			"the admin's email":               answer(apptest.Bearer(bob), adminID),
			"its own email, not yet rendered": answer(apptest.Bearer(bob), scheduledID),
		} {
			if got != want {
				t.Errorf("%s: %s; an unknown id: %s", name, got, want)
			}
		}
	})
}
