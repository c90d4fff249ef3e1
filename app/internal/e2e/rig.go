package e2e

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/mailroom/mailroom/platform/testkit/smtptest"
)

// Rig is what a test of the real binary sending to an in-process SMTP server sets up
// before it starts the binary: the build, the server, a free address and the
// environment pointing one at the other. The crash and fault tests share it.
type Rig struct {
	Bin     string
	SMTP    *smtptest.Server
	Dir     string // the test's directory: the log, and the database by default
	Base    string // the binary's base URL, http://addr
	Env     []string
	LogPath string
}

// NewRig builds the binary, starts an SMTP server and picks a free address. The
// database is dbPath, or mailroom.db in Dir when dbPath is empty; vars (KEY=VALUE)
// override SMTPEnv's settings.
func NewRig(tb testing.TB, dbPath string, vars ...string) *Rig {
	tb.Helper()
	r := &Rig{Bin: Build(tb), SMTP: smtptest.Start(tb), Dir: tb.TempDir()}
	if dbPath == "" {
		dbPath = filepath.Join(r.Dir, "mailroom.db")
	}
	addr := FreeAddr(tb)
	r.Base = "http://" + addr
	r.Env = SMTPEnv(dbPath, addr, r.SMTP.Host(), r.SMTP.Port(), vars...)
	r.LogPath = filepath.Join(r.Dir, "mailroom.log")
	return r
}

// Serve starts `mailroom serve` on the rig and waits until it is ready (see Serve).
func (r *Rig) Serve(tb testing.TB, ctx context.Context) *Process {
	tb.Helper()
	return Serve(tb, ctx, r.Bin, r.Env, r.LogPath, r.Base)
}
