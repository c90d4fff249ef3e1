package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
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
	// File, when set, receives the key instead of Out, and Out and the log say where
	// it is: under a service manager stderr is the journal, which keeps what it is
	// given and is read by more people than an admin key should be. The file is made
	// with mode 0600 and never overwritten.
	File string
	Log  *slog.Logger
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
	if f.File != "" {
		return f.writeToFile(ctx)
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

// writeToFile makes the first admin key and writes it, alone on a line, to a new
// file f.File of mode 0600, then says on Out and in the log where it is. The file is
// claimed before the key is made, so an existing one (a key of an earlier first
// start, or anything else) is never overwritten and no key is made that nobody can
// read: the server does not start, and the error says what to do. A key whose file
// could not be written is revoked again.
func (f FirstKey) writeToFile(ctx context.Context) (err error) {
	file, err := os.OpenFile(f.File, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("no API key exists, and %s, where the first admin key would be written, already exists: "+
			"it is never overwritten; remove it (its key no longer works) and start again, or create a key with "+
			"`mailroom keys create --name NAME --scope admin`", f.File)
	}
	if err != nil {
		return fmt.Errorf("make the first admin key's file: %w", err)
	}
	var made *Created
	defer func() {
		if err == nil {
			return
		}
		_ = file.Close()
		_ = os.Remove(f.File)
		if made != nil {
			if _, rerr := f.Manage.Revoke(context.WithoutCancel(ctx), made.Key.ID); rerr != nil {
				err = fmt.Errorf("%w; and revoking the unwritten key %s failed: %v", err, made.Key.ID, rerr)
			}
		}
	}()
	c, err := f.Manage.Create(ctx, FirstKeyName, "admin", nil)
	if err != nil {
		return fmt.Errorf("make the first admin key: %w", err)
	}
	made = &c
	if _, err = fmt.Fprintln(file, c.Secret); err != nil {
		return fmt.Errorf("write the first admin key to %s: %w", f.File, err)
	}
	if err = file.Sync(); err != nil {
		return fmt.Errorf("write the first admin key to %s: %w", f.File, err)
	}
	if err = file.Close(); err != nil {
		return fmt.Errorf("write the first admin key to %s: %w", f.File, err)
	}
	f.Log.Warn("no API key existed: made an admin key and wrote it to a file only its owner can read (mode 0600)",
		"key_id", c.Key.ID, "prefix", c.Key.Prefix, "file", f.File)
	// The key is safe in its file; a notice that cannot be printed loses nothing.
	_, _ = fmt.Fprintf(f.Out, "mailroom: no API key existed, so an admin key was made (id %s) and written to %s (mode 0600), not to this log.\n"+
		"mailroom: read it from there and keep it elsewhere, then delete the file; send it as \"Authorization: Bearer <key>\"; make more with `mailroom keys create`.\n",
		c.Key.ID, f.File)
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
