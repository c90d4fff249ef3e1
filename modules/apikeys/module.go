// Package apikeys locks the API: it owns the API keys (table apikeys_keys), checks the
// key of every /api request, limits each key's rate, makes the first admin key when
// none exists, and lets an admin create, list and revoke keys over HTTP or the CLI.
// Other modules see only the auth.Principal it puts in the request's context.
package apikeys

import (
	"context"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/labstack/echo/v4"

	"github.com/mailroom/mailroom/modules/apikeys/internal/adapters"
	"github.com/mailroom/mailroom/modules/apikeys/internal/app"
	"github.com/mailroom/mailroom/modules/apikeys/internal/ports"
	"github.com/mailroom/mailroom/platform/broker"
	"github.com/mailroom/mailroom/platform/sqlite"
)

// Config is what the apikeys module needs to know.
type Config struct {
	// ConfigKeys are the keys of auth.api_keys, in clear; they act with admin scope.
	ConfigKeys []string
	// RateLimit is the requests per second each key may make on average.
	RateLimit float64
	// RateBurst is how many requests a key may make at once.
	RateBurst int
	// HTTPAddr is http.addr: the first admin key is made only on a loopback address.
	HTTPAddr string
	// Notices receives the first admin key (stderr when nil), or, with FirstKeyFile
	// set, where to find it.
	Notices io.Writer
	// FirstKeyFile, when set, is the file the first admin key is written to instead
	// of Notices: a new file of mode 0600, never one that exists (then the server
	// does not start). Under a service manager, whose journal keeps stderr, this is
	// where the key belongs.
	FirstKeyFile string
}

// Module is the apikeys module.
type Module struct {
	http  ports.HTTP
	first app.FirstKey
}

// New builds the module.
func New(cfg Config, db *sqlite.DB, log *slog.Logger) *Module {
	log = log.With("module", "apikeys")
	store := adapters.Store{DB: db, Now: time.Now}
	manage := app.ManageKeys{Store: store, Now: time.Now}
	authn := app.NewAuthenticate(store, cfg.ConfigKeys)
	notices := cfg.Notices
	if notices == nil {
		notices = os.Stderr
	}
	return &Module{
		http:  ports.HTTP{Authenticate: authn, Limits: app.NewLimiter(cfg.RateLimit, cfg.RateBurst), Manage: manage, Log: log},
		first: app.FirstKey{Manage: manage, ConfigKeys: authn.ConfigKeys(), Addr: cfg.HTTPAddr, Out: notices, File: cfg.FirstKeyFile, Log: log},
	}
}

// Name implements app.Module.
func (m *Module) Name() string { return "apikeys" }

// RegisterRoutes implements app.Module: GET/POST /api/keys and DELETE
// /api/keys/{id}, for admin keys.
func (m *Module) RegisterRoutes(api *echo.Group) { m.http.Register(api) }

// RegisterHandlers implements app.Module; the module consumes nothing.
func (m *Module) RegisterHandlers(*message.Router, *broker.Broker) error { return nil }

// APIMiddleware authenticates and rate-limits every /api request; app puts it in
// front of the /api group before any module adds a route.
func (m *Module) APIMiddleware() echo.MiddlewareFunc { return m.http.Middleware() }

// Bootstrap runs before the server listens: when no usable key exists it makes an
// admin key and prints it once, or writes it to Config.FirstKeyFile (on a loopback
// http.addr), or refuses to start (on any other address).
func (m *Module) Bootstrap(ctx context.Context) error { return m.first.Handle(ctx) }

// Key is a stored key as the CLI shows it.
type Key = ports.KeyResponse

// CreatedKey is a key just made, with the key itself shown this once.
type CreatedKey = ports.CreatedResponse

// Create makes a key (`mailroom keys create`). scope is "send" or "admin";
// allowedFrom restricts the From of the emails it sends to these domains and
// addresses (none: any From). A bad entry is an invalid_field error naming
// allowed_from[i].
func (m *Module) Create(ctx context.Context, name, scope string, allowedFrom []string) (CreatedKey, error) {
	c, err := m.http.Manage.Create(ctx, name, scope, allowedFrom)
	if err != nil {
		return CreatedKey{}, err
	}
	return CreatedKey{KeyResponse: ports.ToResponse(c.Key), Key: c.Secret}, nil
}

// List returns every stored key, oldest first (`mailroom keys list`). Keys of
// auth.api_keys live in the config and are not listed.
func (m *Module) List(ctx context.Context) ([]Key, error) {
	keys, err := m.http.Manage.List(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Key, 0, len(keys))
	for _, k := range keys {
		out = append(out, ports.ToResponse(k))
	}
	return out, nil
}

// Revoke revokes a key for good (`mailroom keys revoke`); it stops working at once,
// in every running instance on the same database.
func (m *Module) Revoke(ctx context.Context, id string) (Key, error) {
	k, err := m.http.Manage.Revoke(ctx, id)
	if err != nil {
		return Key{}, err
	}
	return ports.ToResponse(k), nil
}
