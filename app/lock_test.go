package app_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailroom/mailroom/app"
	"github.com/mailroom/mailroom/app/apptest"
	"github.com/mailroom/mailroom/app/internal/e2e"
	"github.com/mailroom/mailroom/platform/logging"
	"github.com/mailroom/mailroom/platform/sqlite"
)

// TestASecondAppOnOneDatabaseIsRefusedUntilTheFirstStops: in one process as in
// two, one database has one server; once it stops, the next one starts.
func TestASecondAppOnOneDatabaseIsRefusedUntilTheFirstStops(t *testing.T) {
	t.Parallel()
	cfg := apptest.Config(t)
	first := apptest.Start(t, cfg)
	second, err := app.New(cfg, app.WithLogger(logging.Discard()))
	var inUse *sqlite.InUseError
	if !errors.As(err, &inUse) {
		if second != nil {
			second.Close()
		}
		t.Fatalf("app.New on a database in use: %v, want an *sqlite.InUseError", err)
	}
	if inUse.PID != os.Getpid() || inUse.Database != cfg.DB.Path {
		t.Errorf("InUseError %+v, want %s held by pid %d", inUse, cfg.DB.Path, os.Getpid())
	}
	first.Stop(t)
	again := apptest.Start(t, cfg)
	if r := again.Do(t, http.MethodPost, "/api/emails", apptest.NewEmail("to@example.com")); r.Status != http.StatusAccepted {
		t.Errorf("POST to the app started after the first stopped: %d %s", r.Status, r.Body)
	}
}

// TestASecondServeOnOneDatabaseIsRefusedAndTheFirstKeepsServing: the real binary
// twice on one database. The second exits at once, non-zero, with one line naming
// the database and the first one's pid; the first keeps serving. After the first is
// killed with SIGKILL the kernel has dropped its lock, so a new serve starts there.
func TestASecondServeOnOneDatabaseIsRefusedAndTheFirstKeepsServing(t *testing.T) {
	t.Parallel()
	rig := e2e.NewRig(t, "")
	db := filepath.Join(rig.Dir, "mailroom.db")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	first := rig.Serve(t, ctx)

	secondLog := filepath.Join(rig.Dir, "second.log")
	env := append(slices.Clone(rig.Env), "MAILROOM_HTTP_ADDR="+e2e.FreeAddr(t))
	began := time.Now()
	second := e2e.Start(t, rig.Bin, env, secondLog, "serve")
	apptest.Eventually(t, 30*time.Second, second.Exited, func() string {
		return "the second serve on the database is still running; log:\n" + second.Log()
	})
	took := time.Since(began)
	code, err := second.Terminate(time.Second)
	if err != nil || code == 0 {
		t.Errorf("the second serve exited with %d (%v), want a non-zero code", code, err)
	}
	_, printed, _ := strings.Cut(second.Log(), "\n") // after the line Start writes
	want := fmt.Sprintf("mailroom: database %s is in use by another mailroom serve (pid %d); stop that one first or give this one another db.path\n", db, first.Pid())
	if printed != want {
		t.Errorf("the second serve printed\n%q\nwant\n%q", printed, want)
	}
	t.Logf("the second serve exited in %s", took.Round(time.Millisecond))

	if first.Exited() {
		t.Fatalf("the first serve ended; log:\n%s", e2e.LogTail(first.Log(), 3000))
	}
	if r := apptest.Do(t, rig.Base, http.MethodPost, "/api/emails", apptest.NewEmail("to@example.com")); r.Status != http.StatusAccepted {
		t.Errorf("POST to the first serve: %d %s", r.Status, r.Body)
	}
	if r := apptest.Do(t, rig.Base, http.MethodGet, "/readyz", nil); r.Status != http.StatusOK {
		t.Errorf("/readyz of the first serve: %d %s", r.Status, r.Body)
	}

	first.Kill()
	third := rig.Serve(t, ctx)
	if r := apptest.Do(t, rig.Base, http.MethodPost, "/api/emails", apptest.NewEmail("to@example.com")); r.Status != http.StatusAccepted {
		t.Errorf("POST to the serve started after a kill -9: %d %s", r.Status, r.Body)
	}
	terminate(t, third)
}
