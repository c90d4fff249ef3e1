package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
)

// FirstKeyName is the name of the admin key made at first start.
const FirstKeyName = "admin (made at first start)"

// FirstKey makes sure a server never runs with no way in: when no usable key exists
// (none in auth.api_keys, none stored that is not revoked) it makes an admin key and
// prints it once, if the server listens on loopback only. On any other address it
// refuses to start: a key printed to a log is not how a reachable server should get
// its first credential, and a server nobody can call is a mistake worth stopping for.
type FirstKey struct {
	Manage     ManageKeys
	ConfigKeys int
	// Addr is http.addr.
	Addr string
	// Out receives the key; it is the terminal (stderr), not the log.
	Out io.Writer
	Log *slog.Logger
}

// Handle makes the first key when needed and returns an error when the server must
// not start.
func (f FirstKey) Handle(ctx context.Context) error {
	if f.ConfigKeys > 0 {
		return nil
	}
	n, err := f.Manage.Store.CountUsable(ctx)
	if err != nil {
		return fmt.Errorf("count API keys: %w", err)
	}
	if n > 0 {
		return nil
	}
	if !IsLoopback(f.Addr) {
		return fmt.Errorf("http.addr %s is reachable from other hosts and no API key exists: "+
			"create one with `mailroom keys create --name NAME --scope admin` or set auth.api_keys "+
			"(MAILROOM_AUTH_API_KEYS), then start again", f.Addr)
	}
	c, err := f.Manage.Create(ctx, FirstKeyName, "admin", nil)
	if err != nil {
		return fmt.Errorf("make the first admin key: %w", err)
	}
	f.Log.Warn("no API key existed: made an admin key and printed it on stderr", "key_id", c.Key.ID, "prefix", c.Key.Prefix)
	_, err = fmt.Fprintf(f.Out, "\nmailroom: no API key existed, so this admin key was made (id %s):\n\n    %s\n\n"+
		"mailroom: keep it now: it is shown only this once, and only its hash is stored.\n"+
		"mailroom: send it as \"Authorization: Bearer <key>\"; make more with `mailroom keys create`.\n\n",
		c.Key.ID, c.Secret)
	if err != nil {
		return fmt.Errorf("print the first admin key: %w", err)
	}
	return nil
}

// IsLoopback reports whether a listen address (host:port) takes connections from
// this host only: a loopback IP or "localhost". An empty host, 0.0.0.0, :: and any
// other name listen for (or may resolve to) other hosts.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
