package app_test

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mailroom/mailroom/app/apptest"
	"github.com/mailroom/mailroom/app/internal/e2e"
	"github.com/mailroom/mailroom/platform/sqlite"
)

// TestADatabaseFileDeletedUnderLoadIsRefusedAndRescued is the database file deleted
// under a running server (once alone, once with its -wal and -shm), while clients
// post continuously. Within seconds every POST must be answered 503 (never 500) and
// /readyz 503, and the log must name a rescued copy. Following the log's advice
// must lose nothing: the copy holds every email answered 202, and once it is moved
// to db.path and the server started again, every one of them is delivered. (Some
// twice: a message sent after the deletion could not be recorded as sent.)
func TestADatabaseFileDeletedUnderLoadIsRefusedAndRescued(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name     string
		suffixes []string
	}{
		{"the database file", []string{""}},
		{"the database, -wal and -shm files", []string{"", "-wal", "-shm"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			deleteDatabaseUnderLoad(t, c.name, c.suffixes)
		})
	}
}

// deleteDatabaseUnderLoad deletes the database file plus each of suffixes ("" is the
// file itself) under load; what is the name of that for the figures.
func deleteDatabaseUnderLoad(t *testing.T, what string, suffixes []string) {
	rig := e2e.NewRig(t, "",
		"MAILROOM_LOG_FORMAT=json",
		"MAILROOM_RETRY_INITIAL_INTERVAL=50ms",
		"MAILROOM_RETRY_MAX_INTERVAL=1s",
		"MAILROOM_DELIVERY_CONCURRENCY="+strconv.Itoa(faultLanes),
	)
	db := filepath.Join(rig.Dir, "mailroom.db")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	proc := rig.Serve(t, ctx)
	ld := e2e.StartLoad(t, ctx, rig.Base, e2e.LoadConfig{Workers: 4, Timeout: 30 * time.Second, Subject: "deleted database test"})
	defer ld.Stop()
	apptest.Eventually(t, 60*time.Second, func() bool { return ld.Accepted.Load() >= 300 },
		func() string { return "load: " + ld.Summary() })

	for _, s := range suffixes {
		if err := os.Remove(db + s); err != nil {
			t.Fatal(err)
		}
	}
	removed := time.Now()
	acceptedAtDelete := ld.Accepted.Load()

	refusedBefore := ld.Refused.Load()
	apptest.Eventually(t, 10*time.Second, func() bool { return ld.Refused.Load() >= refusedBefore+20 },
		func() string {
			return "POSTs are still answered 202 after the database file was deleted: " + ld.Summary()
		})
	refusedAfter := time.Since(removed)
	checkRefusedWith503(t, apptest.Do(t, rig.Base, http.MethodPost, "/api/emails", apptest.NewEmail("probe@example.com")))
	ready := apptest.Do(t, rig.Base, http.MethodGet, "/readyz", nil)
	if ready.Status != http.StatusServiceUnavailable || !strings.Contains(string(ready.Body), "deleted or replaced") {
		t.Errorf("/readyz = %d %s, want 503 saying the database file was deleted or replaced", ready.Status, ready.Body)
	}
	if strings.Contains(string(ready.Body), rig.Dir) {
		t.Errorf("/readyz %s shows a server path: it is not authenticated", ready.Body)
	}
	var rescued string
	apptest.Eventually(t, 10*time.Second, func() bool {
		rescued = rescuedFileLogged(t, proc.Log(), db)
		return rescued != ""
	}, func() string { return "no rescued file logged:\n" + e2e.LogTail(proc.Log(), 3000) })

	ids := ld.Stop()
	for status := range ld.Statuses() {
		if status != http.StatusServiceUnavailable {
			t.Errorf("answers other than 202 and 503: %s", ld.Summary())
		}
	}
	if n := ld.Failures.Load(); n > 0 {
		t.Errorf("%d POSTs got no answer: %s", n, ld.Summary())
	}
	// The operator stops the server, as the log says: SIGTERM ends it, although
	// the relay's publishes in flight wait for handlers that can record nothing
	// (the relay abandons them: every row is in the copy).
	code, err := proc.Terminate(30 * time.Second)
	if err != nil {
		t.Errorf("after SIGTERM: %v; log:\n%s", err, e2e.LogTail(proc.Log(), 4000))
	}
	t.Logf("exit code %d after SIGTERM with the database file gone", code)
	if log := proc.Log(); e2e.HasDataRace(log) {
		t.Errorf("the race detector found a data race in mailroom serve:\n%s", e2e.LogTail(log, 20000))
	}
	checkEmailsIn(t, rescued, ids)

	// What the log says to do: move the rescued file to db.path, without the old
	// -wal and -shm, and start again.
	for _, s := range []string{"-wal", "-shm"} {
		if err := os.Remove(db + s); err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Fatal(err)
		}
	}
	if err := os.Rename(rescued, db); err != nil {
		t.Fatal(err)
	}
	restarted := rig.Serve(t, ctx)
	rx := newReceivedIndex()
	rx.waitReceived(t, rig.SMTP, ids, 90*time.Second, nil)
	checkAllSent(t, ctx, rig.Base, ids)
	t.Logf("FIGURES deleted database (%s): %d emails answered 202 (%d before the deletion); first 503s within %s; all in %s and delivered after the restore (%d received, %d duplicates)",
		what, len(ids), acceptedAtDelete, refusedAfter.Round(10*time.Millisecond),
		filepath.Base(rescued), rig.SMTP.Count(), rx.duplicates())
	terminate(t, restarted)
}

// checkRefusedWith503 asserts a 503 in the contract's error shape.
func checkRefusedWith503(t *testing.T, r apptest.Response) {
	t.Helper()
	var b struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if r.Status != http.StatusServiceUnavailable || json.Unmarshal(r.Body, &b) != nil || b.Error.Code != "unavailable" {
		t.Errorf("POST after the database file was deleted: %d %s, want 503 with code unavailable", r.Status, r.Body)
	}
}

// rescuedFileLogged returns the rescued file named by the one error line of log
// (JSON lines) that names one, or "" when there is none yet. It fails the test if
// two lines name one, or the file is not beside db.
func rescuedFileLogged(t *testing.T, log, db string) string {
	t.Helper()
	var files []string
	for line := range strings.Lines(log) {
		var rec struct {
			Level       string `json:"level"`
			RescuedFile string `json:"rescued_file"`
		}
		if json.Unmarshal([]byte(line), &rec) == nil && rec.RescuedFile != "" {
			if rec.Level != "ERROR" {
				t.Errorf("the rescue is logged at %s, want ERROR: %s", rec.Level, line)
			}
			files = append(files, rec.RescuedFile)
		}
	}
	switch {
	case len(files) == 0:
		return ""
	case len(files) > 1:
		t.Fatalf("%d lines name a rescued file, want one: %v", len(files), files)
	case !strings.HasPrefix(files[0], db+".rescued-"):
		t.Fatalf("rescued file %s, want %s.rescued-<time>", files[0], db)
	}
	return files[0]
}

// checkEmailsIn checks that the database file at path holds every email in ids.
func checkEmailsIn(t *testing.T, path string, ids []string) {
	t.Helper()
	copyDB, err := sqlite.OpenExisting(path)
	if err != nil {
		t.Fatalf("open the rescued file: %v", err)
	}
	defer copyDB.Close()
	have := map[string]bool{}
	rows, err := copyDB.Read.Query("SELECT id FROM emails_emails")
	if err != nil {
		t.Fatalf("read the rescued file: %v", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		have[id] = true
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	var missing []string
	for _, id := range ids {
		if !have[id] {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		t.Errorf("%d of %d emails answered 202 are not in the rescued file (e.g. %v)", len(missing), len(ids), missing[:min(5, len(missing))])
	}
	t.Logf("the rescued file holds all %d emails answered 202 (%d in all)", len(ids), len(have))
}
