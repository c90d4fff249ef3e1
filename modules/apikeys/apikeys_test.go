package apikeys_test

// Module-level tests of API keys: the whole app on a real SQLite file, driven over
// HTTP (apptest sends the config's admin key unless told otherwise).

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mailroom/mailroom/app"
	"github.com/mailroom/mailroom/app/apptest"
	"github.com/mailroom/mailroom/modules/apikeys"
	"github.com/mailroom/mailroom/platform/config"
	"github.com/mailroom/mailroom/platform/logging"
)

// keyShape is every key Mailroom makes: the marker and 32 random bytes in base64url.
var keyShape = regexp.MustCompile(`mr_[A-Za-z0-9_-]{43}`)

type key struct {
	ID          string     `json:"id"`
	Name        string     `json:"name"`
	Scope       string     `json:"scope"`
	Prefix      string     `json:"prefix"`
	CreatedAt   time.Time  `json:"created_at"`
	RevokedAt   *time.Time `json:"revoked_at"`
	AllowedFrom []string   `json:"allowed_from"`
	Key         string     `json:"key"`
}

func create(t *testing.T, in *apptest.Instance, name, scope string) key {
	t.Helper()
	r := in.Do(t, http.MethodPost, "/api/keys", map[string]string{"name": name, "scope": scope})
	if r.Status != http.StatusCreated {
		t.Fatalf("POST /api/keys: %d %s", r.Status, r.Body)
	}
	var k key
	r.JSON(t, &k)
	return k
}

type errorBody struct {
	Error struct{ Code, Message, Field string } `json:"error"`
}

func decodeError(t *testing.T, r apptest.Response) errorBody {
	t.Helper()
	var b errorBody
	r.JSON(t, &b)
	if b.Error.Code == "" || b.Error.Message == "" {
		t.Fatalf("error body %s lacks a code or a message", r.Body)
	}
	return b
}

func TestAdminsManageKeysOverHTTP(t *testing.T) {
	t.Parallel()
	in := apptest.Start(t, apptest.Config(t))

	k := create(t, in, "billing service", "send")
	if !keyShape.MatchString(k.Key) || len(k.Key) != 46 {
		t.Fatalf("created key %q does not have the shape mr_ + 43 base64url characters", k.Key)
	}
	if k.Prefix != k.Key[:11] || k.Name != "billing service" || k.Scope != "send" || k.RevokedAt != nil || k.ID == "" {
		t.Errorf("created %+v: want the key's first 11 characters as prefix, the name, scope send, not revoked", k)
	}

	t.Run("the list shows every stored key but never a key itself", func(t *testing.T) {
		other := create(t, in, "ops", "admin")
		r := in.Do(t, http.MethodGet, "/api/keys", nil)
		if r.Status != http.StatusOK {
			t.Fatalf("GET /api/keys: %d %s", r.Status, r.Body)
		}
		if bytes.Contains(r.Body, []byte(k.Key)) || bytes.Contains(r.Body, []byte(other.Key)) || bytes.Contains(r.Body, []byte(`"key"`)) {
			t.Errorf("the list %s shows a key", r.Body)
		}
		var page struct{ Items []key }
		r.JSON(t, &page)
		if len(page.Items) != 2 || page.Items[0].ID != k.ID || page.Items[1].ID != other.ID {
			t.Errorf("list %+v, want %s then %s", page.Items, k.ID, other.ID)
		}
	})

	t.Run("the created key works at once", func(t *testing.T) {
		id := in.Send(t, apptest.NewEmail("a@example.com"), apptest.Bearer(k.Key)...)
		if r := in.Do(t, http.MethodGet, "/api/emails/"+id, nil, apptest.Bearer(k.Key)...); r.Status != http.StatusOK {
			t.Errorf("GET own email: %d %s", r.Status, r.Body)
		}
	})

	bad := []struct {
		name  string
		body  any
		field string
	}{
		{"an unknown scope is refused", map[string]string{"name": "x", "scope": "root"}, "scope"},
		{"a missing scope is refused", map[string]string{"name": "x"}, "scope"},
		{"an empty name is refused", map[string]string{"name": " ", "scope": "send"}, "name"},
		{"a name with a newline is refused", map[string]string{"name": "a\nb", "scope": "send"}, "name"},
		{"a name over 100 characters is refused", map[string]string{"name": strings.Repeat("n", 101), "scope": "send"}, "name"},
		{"an unknown field is refused", map[string]string{"name": "x", "scope": "send", "hash": "00"}, ""},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			r := in.Do(t, http.MethodPost, "/api/keys", tt.body)
			if r.Status != http.StatusBadRequest {
				t.Fatalf("%d %s, want 400", r.Status, r.Body)
			}
			if b := decodeError(t, r); tt.field != "" && b.Error.Field != tt.field {
				t.Errorf("error %s, want field %s", r.Body, tt.field)
			}
		})
	}

	t.Run("revoking an unknown key is 404", func(t *testing.T) {
		r := in.Do(t, http.MethodDelete, "/api/keys/no-such-key", nil)
		if r.Status != http.StatusNotFound || decodeError(t, r).Error.Code != "not_found" {
			t.Errorf("%d %s, want 404 not_found", r.Status, r.Body)
		}
	})
}

func TestAKeyRestrictedToSendersIsRefusedAnyOtherFromNamingTheField(t *testing.T) {
	t.Parallel()
	in := apptest.Start(t, apptest.Config(t))
	r := in.Do(t, http.MethodPost, "/api/keys", map[string]any{"name": "billing", "scope": "send",
		"allowed_from": []string{"Example.com", "alerts@ops.example", "example.com"}})
	if r.Status != http.StatusCreated {
		t.Fatalf("POST /api/keys with allowed_from: %d %s", r.Status, r.Body)
	}
	var k key
	r.JSON(t, &k)
	if want := []string{"example.com", "alerts@ops.example"}; !slices.Equal(k.AllowedFrom, want) {
		t.Errorf("created allowed_from %q, want %q (lower case, repeats dropped)", k.AllowedFrom, want)
	}
	unrestricted := create(t, in, "anything goes", "send")
	if unrestricted.AllowedFrom == nil || len(unrestricted.AllowedFrom) != 0 {
		t.Errorf("a key made without allowed_from shows allowed_from %#v, want []", unrestricted.AllowedFrom)
	}

	t.Run("the list shows each key's senders", func(t *testing.T) {
		var page struct{ Items []key }
		in.Do(t, http.MethodGet, "/api/keys", nil).JSON(t, &page)
		if len(page.Items) != 2 || !slices.Equal(page.Items[0].AllowedFrom, k.AllowedFrom) || len(page.Items[1].AllowedFrom) != 0 {
			t.Errorf("list %+v, want the restricted key's senders, then none", page.Items)
		}
	})

	send := func(t *testing.T, from, secret string) apptest.Response {
		t.Helper()
		email := apptest.NewEmail("a@example.net")
		if from != "" {
			email["from"] = from
		}
		return in.Do(t, http.MethodPost, "/api/emails", email, apptest.Bearer(secret)...)
	}
	allowed := []struct{ name, from string }{
		{"an address at the listed domain", "Billing <billing@example.com>"},
		{"the listed domain in another case", "billing@EXAMPLE.COM"},
		{"the listed address", "Alerts <Alerts@ops.example>"},
	}
	for _, tt := range allowed {
		t.Run(tt.name+" is accepted", func(t *testing.T) {
			if r := send(t, tt.from, k.Key); r.Status != http.StatusAccepted {
				t.Errorf("from %q: %d %s, want 202", tt.from, r.Status, r.Body)
			}
		})
	}
	refused := []struct{ name, from string }{
		{"another domain", "Billing <billing@example.net>"},
		{"a subdomain of the listed domain", "billing@mail.example.com"},
		{"another address at the listed address's domain", "boss@ops.example"},
		{"no from, which is smtp.from, not listed", ""},
	}
	for _, tt := range refused {
		t.Run(tt.name+" is 403 naming from", func(t *testing.T) {
			r := send(t, tt.from, k.Key)
			if r.Status != http.StatusForbidden {
				t.Fatalf("from %q: %d %s, want 403", tt.from, r.Status, r.Body)
			}
			b := decodeError(t, r)
			if b.Error.Code != "forbidden" || b.Error.Field != "from" || !strings.HasPrefix(b.Error.Message, "from: ") ||
				!strings.Contains(b.Error.Message, "example.com, alerts@ops.example") {
				t.Errorf("error %s, want forbidden naming from and the senders the key may use", r.Body)
			}
		})
	}
	t.Run("a bad from is still 400, not 403", func(t *testing.T) {
		if r := send(t, "not an address", k.Key); r.Status != http.StatusBadRequest || decodeError(t, r).Error.Field != "from" {
			t.Errorf("%d %s, want 400 naming from", r.Status, r.Body)
		}
	})
	t.Run("a key without a restriction and the config's admin key send as anyone", func(t *testing.T) {
		if r := send(t, "x@anywhere.example", unrestricted.Key); r.Status != http.StatusAccepted {
			t.Errorf("unrestricted key: %d %s, want 202", r.Status, r.Body)
		}
		if r := send(t, "x@anywhere.example", apptest.AdminKey); r.Status != http.StatusAccepted {
			t.Errorf("config admin key: %d %s, want 202", r.Status, r.Body)
		}
	})

	bad := []struct {
		name  string
		from  any
		field string
	}{
		{"a display name", []string{"Team <team@example.com>"}, "allowed_from[0]"},
		{"a wildcard, second", []string{"example.com", "*.example.com"}, "allowed_from[1]"},
		{"an empty entry", []string{""}, "allowed_from[0]"},
		{"a string, not a list", "example.com", "allowed_from"},
	}
	for _, tt := range bad {
		t.Run("allowed_from with "+tt.name+" is 400 naming the entry", func(t *testing.T) {
			r := in.Do(t, http.MethodPost, "/api/keys", map[string]any{"name": "x", "scope": "send", "allowed_from": tt.from})
			if r.Status != http.StatusBadRequest || decodeError(t, r).Error.Field != tt.field {
				t.Errorf("%d %s, want 400 naming %s", r.Status, r.Body, tt.field)
			}
		})
	}
}

func TestARevokedKeyStopsWorkingOnTheNextRequest(t *testing.T) {
	t.Parallel()
	in := apptest.Start(t, apptest.Config(t))
	k := create(t, in, "short-lived", "admin")
	if r := in.Do(t, http.MethodGet, "/api/keys", nil, apptest.Bearer(k.Key)...); r.Status != http.StatusOK {
		t.Fatalf("before revocation: %d %s", r.Status, r.Body)
	}

	// The key revokes itself: an admin key may.
	r := in.Do(t, http.MethodDelete, "/api/keys/"+k.ID, nil, apptest.Bearer(k.Key)...)
	if r.Status != http.StatusOK {
		t.Fatalf("DELETE /api/keys/%s: %d %s", k.ID, r.Status, r.Body)
	}
	var revoked key
	r.JSON(t, &revoked)
	if revoked.RevokedAt == nil {
		t.Fatalf("revoked key %s has no revoked_at", r.Body)
	}

	r = in.Do(t, http.MethodGet, "/api/keys", nil, apptest.Bearer(k.Key)...)
	if r.Status != http.StatusUnauthorized {
		t.Fatalf("after revocation: %d %s, want 401", r.Status, r.Body)
	}
	if b := decodeError(t, r); b.Error.Code != "unauthorized" || !strings.Contains(b.Error.Message, "revoked") {
		t.Errorf("after revocation: %s, want unauthorized saying revoked", r.Body)
	}

	t.Run("revoking again keeps the first revocation time", func(t *testing.T) {
		r := in.Do(t, http.MethodDelete, "/api/keys/"+k.ID, nil)
		var again key
		r.JSON(t, &again)
		if r.Status != http.StatusOK || again.RevokedAt == nil || !again.RevokedAt.Equal(*revoked.RevokedAt) {
			t.Errorf("second revocation: %d %s, want 200 with revoked_at %s", r.Status, r.Body, revoked.RevokedAt)
		}
	})
}

func TestEachKeyHasItsOwnRateLimit(t *testing.T) {
	t.Parallel()
	cfg := apptest.Config(t)
	other := "second-config-key-0123456789"
	cfg.Auth.APIKeys = append(cfg.Auth.APIKeys, config.Secret(other))
	// One token per 1,000 s after a burst of 3: the fourth request is refused however
	// slowly this machine runs the test.
	cfg.Auth.RateLimit = 0.001
	cfg.Auth.RateBurst = 3
	in := apptest.Start(t, cfg)

	for i := range 3 {
		if r := in.Do(t, http.MethodGet, "/api/emails", nil); r.Status != http.StatusOK {
			t.Fatalf("request %d of the burst: %d %s", i+1, r.Status, r.Body)
		}
	}
	r := in.Do(t, http.MethodGet, "/api/emails", nil)
	if r.Status != http.StatusTooManyRequests {
		t.Fatalf("request over the burst: %d %s, want 429", r.Status, r.Body)
	}
	if b := decodeError(t, r); b.Error.Code != "rate_limited" {
		t.Errorf("429 body %s, want code rate_limited", r.Body)
	}
	secs, err := strconv.Atoi(r.Header.Get("Retry-After"))
	if err != nil || secs < 1 || secs > 1000 {
		t.Errorf("Retry-After %q, want whole seconds between 1 and 1000", r.Header.Get("Retry-After"))
	}

	cases := []struct {
		name    string
		path    string
		headers []string
		want    int
	}{
		{"another key is not slowed by the first", "/api/emails", apptest.Bearer(other), http.StatusOK},
		{"health checks are not rate limited", "/healthz", apptest.NoKey, http.StatusOK},
		{"a request without a key is 401, not 429", "/api/emails", apptest.NoKey, http.StatusUnauthorized},
		{"the limited key stays limited", "/api/emails", nil, http.StatusTooManyRequests},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			if r := in.Do(t, http.MethodGet, tt.path, nil, tt.headers...); r.Status != tt.want {
				t.Errorf("GET %s: %d %s, want %d", tt.path, r.Status, r.Body, tt.want)
			}
		})
	}
}

// firstStart is a config with no key at all, on a loopback address.
func firstStart(t *testing.T) *config.Config {
	t.Helper()
	cfg := apptest.Config(t)
	cfg.Auth.APIKeys = nil
	return cfg
}

func TestTheFirstStartMakesAnAdminKeyAndPrintsItOnce(t *testing.T) {
	t.Parallel()
	cfg := firstStart(t)
	var notices bytes.Buffer
	in := apptest.Start(t, cfg, app.WithNotices(&notices))

	printed := keyShape.FindAllString(notices.String(), -1)
	if len(printed) != 1 {
		t.Fatalf("first start printed %d keys, want 1:\n%s", len(printed), notices.String())
	}
	if !strings.Contains(notices.String(), "keep it") || !strings.Contains(notices.String(), "shown only this once") {
		t.Errorf("the notice does not tell the user to keep the key:\n%s", notices.String())
	}
	first := printed[0]
	if r := in.Do(t, http.MethodGet, "/api/keys", nil, apptest.Bearer(first)...); r.Status != http.StatusOK {
		t.Fatalf("the printed key on an admin route: %d %s", r.Status, r.Body)
	}
	if r := in.Do(t, http.MethodGet, "/api/keys", nil); r.Status != http.StatusUnauthorized {
		t.Errorf("a key that is not configured: %d %s, want 401", r.Status, r.Body)
	}

	// A restart with the key stored prints nothing. (Restarts run in this test, not
	// in subtests: an instance stops when the test that started it ends.)
	in.Stop(t)
	notices.Reset()
	in = apptest.Start(t, cfg, app.WithNotices(&notices))
	if notices.Len() != 0 {
		t.Errorf("second start printed:\n%s", notices.String())
	}
	if r := in.Do(t, http.MethodGet, "/api/keys", nil, apptest.Bearer(first)...); r.Status != http.StatusOK {
		t.Errorf("the first key after a restart: %d %s", r.Status, r.Body)
	}

	// A restart after the last key was revoked makes a new one.
	var page struct{ Items []key }
	in.Do(t, http.MethodGet, "/api/keys", nil, apptest.Bearer(first)...).JSON(t, &page)
	if len(page.Items) != 1 || page.Items[0].Scope != "admin" {
		t.Fatalf("stored keys %+v, want the one admin key", page.Items)
	}
	if r := in.Do(t, http.MethodDelete, "/api/keys/"+page.Items[0].ID, nil, apptest.Bearer(first)...); r.Status != http.StatusOK {
		t.Fatalf("revoke: %d %s", r.Status, r.Body)
	}
	in.Stop(t)
	notices.Reset()
	in = apptest.Start(t, cfg, app.WithNotices(&notices))
	again := keyShape.FindAllString(notices.String(), -1)
	if len(again) != 1 || again[0] == first {
		t.Fatalf("restart with only a revoked key printed %v, want one new key", again)
	}
	if r := in.Do(t, http.MethodGet, "/api/keys", nil, apptest.Bearer(again[0])...); r.Status != http.StatusOK {
		t.Errorf("the new key: %d %s", r.Status, r.Body)
	}
}

func TestAServerReachableFromOtherHostsWithNoKeyDoesNotStart(t *testing.T) {
	t.Parallel()
	refused := []string{"0.0.0.0:0", "[::]:0", ":0"}
	for _, addr := range refused {
		t.Run("http.addr "+addr+" with no key is refused", func(t *testing.T) {
			t.Parallel()
			cfg := firstStart(t)
			cfg.HTTP.Addr = addr
			var notices bytes.Buffer
			a, err := app.New(cfg, app.WithLogger(logging.Discard()), app.WithNotices(&notices))
			if err == nil {
				a.Close()
				t.Fatalf("app.New on %s with no key succeeded", addr)
			}
			for _, want := range []string{"http.addr", "mailroom keys create", "auth.api_keys"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %s", err, want)
				}
			}
			if notices.Len() != 0 {
				t.Errorf("a refused start printed:\n%s", notices.String())
			}
		})
	}

	allowed := []struct {
		name    string
		prepare func(t *testing.T, cfg *config.Config)
	}{
		{"a key in auth.api_keys lets it start", func(t *testing.T, cfg *config.Config) {
			cfg.Auth.APIKeys = []config.Secret{apptest.AdminKey}
		}},
		{"a key made with the CLI lets it start", func(t *testing.T, cfg *config.Config) {
			db, err := app.OpenDatabase(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			m := apikeys.New(app.APIKeysConfig(cfg, nil), db, logging.Discard())
			if _, err := m.Create(context.Background(), "ops", "admin", nil); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range allowed {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := firstStart(t)
			cfg.HTTP.Addr = "0.0.0.0:0"
			tt.prepare(t, cfg)
			var notices bytes.Buffer
			a, err := app.New(cfg, app.WithLogger(logging.Discard()), app.WithNotices(&notices))
			if err != nil {
				t.Fatalf("app.New: %v", err)
			}
			defer a.Close()
			if notices.Len() != 0 {
				t.Errorf("printed a key though one existed:\n%s", notices.String())
			}
		})
	}
}

// TestTheCLIFunctionsShareTheRunningServersKeys creates and revokes a key the way
// `mailroom keys` does, on the database of a running app: no cache stands between.
func TestTheCLIFunctionsShareTheRunningServersKeys(t *testing.T) {
	t.Parallel()
	in := apptest.Start(t, apptest.Config(t))
	db, err := app.OpenDatabase(context.Background(), in.Config)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cli := apikeys.New(app.APIKeysConfig(in.Config, nil), db, logging.Discard())
	ctx := context.Background()

	k, err := cli.Create(ctx, "from the cli", "send", nil)
	if err != nil {
		t.Fatal(err)
	}
	if r := in.Do(t, http.MethodGet, "/api/emails", nil, apptest.Bearer(k.Key)...); r.Status != http.StatusOK {
		t.Fatalf("a key made by the CLI: %d %s", r.Status, r.Body)
	}
	listed, err := cli.List(ctx)
	if err != nil || len(listed) != 1 || listed[0].ID != k.ID {
		t.Fatalf("CLI list: %+v %v, want the one key", listed, err)
	}
	if raw, _ := json.Marshal(listed); bytes.Contains(raw, []byte(k.Key)) {
		t.Errorf("CLI list shows the key: %s", raw)
	}
	if _, err := cli.Revoke(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	if r := in.Do(t, http.MethodGet, "/api/emails", nil, apptest.Bearer(k.Key)...); r.Status != http.StatusUnauthorized {
		t.Errorf("a key revoked by the CLI: %d %s, want 401", r.Status, r.Body)
	}
	if _, err := cli.Revoke(ctx, "no-such-key"); err == nil {
		t.Errorf("CLI revoke of an unknown key succeeded")
	}
	if _, err := cli.Create(ctx, "x", "superuser", nil); err == nil {
		t.Errorf("CLI create with scope superuser succeeded")
	}
}

func TestTheKeyListTakesNoQueryParametersAndRefusesAnyNamingIt(t *testing.T) {
	t.Parallel()
	in := apptest.Start(t, apptest.Config(t))
	create(t, in, "billing service", "send")

	for _, tt := range []struct{ query, field string }{
		{"to=x", "to"},
		{"scope=send", "scope"},
		{"limit=10", "limit"},
	} {
		r := in.Do(t, http.MethodGet, "/api/keys?"+tt.query, nil)
		if r.Status != http.StatusBadRequest {
			t.Errorf("GET /api/keys?%s: %d %s, want 400", tt.query, r.Status, r.Body)
			continue
		}
		b := decodeError(t, r)
		if b.Error.Code != "invalid_field" || b.Error.Field != tt.field ||
			b.Error.Message != tt.field+": unknown query parameter; this route takes no query parameters" {
			t.Errorf("GET /api/keys?%s: error %s, want invalid_field naming %s", tt.query, r.Body, tt.field)
		}
	}

	r := in.Do(t, http.MethodGet, "/api/keys", nil)
	var page struct{ Items []key }
	r.JSON(t, &page)
	if r.Status != http.StatusOK || len(page.Items) != 1 || page.Items[0].Name != "billing service" {
		t.Errorf("GET /api/keys: %d %s, want the one key", r.Status, r.Body)
	}
}
