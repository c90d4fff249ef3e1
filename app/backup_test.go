package app_test

import (
	"bytes"
	"context"
	"database/sql"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mailroom/mailroom/app/apptest"
	"github.com/mailroom/mailroom/app/internal/e2e"
)

// TestABackupUnderLoadRestoresEveryAcknowledgedEmailAndServes is `mailroom backup`
// as an operator runs it: the built binary serves on Go channels, sending to a
// real SMTP server, while clients post emails back to back; `mailroom backup`
// runs beside it (no lock: serve holds the database's). Restored as
// docs/backups.md says (the file alone, in a directory of its own), the copy
// passes PRAGMA integrity_check and holds every email answered 202 before the
// backup began, and a serve started on it lists them all. Serve answers every
// post 202 throughout.
func TestABackupUnderLoadRestoresEveryAcknowledgedEmailAndServes(t *testing.T) {
	t.Parallel()
	rig := e2e.NewRig(t, "")
	db := filepath.Join(rig.Dir, "mailroom.db")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	proc := rig.Serve(t, ctx)
	ld := e2e.StartLoad(t, ctx, rig.Base, e2e.LoadConfig{Workers: 4, Subject: "backup test"})
	defer ld.Stop()
	apptest.Eventually(t, 60*time.Second, func() bool { return ld.Accepted.Load() >= 500 }, ld.Summary)

	before := ld.IDs() // each answered 202 before the backup began
	dest := filepath.Join(t.TempDir(), "backup.db")
	acceptedAtStart := ld.Accepted.Load()
	out, errs, err := runBinary(ctx, rig.Bin, "backup", "--db", db, dest)
	acceptedDuring := ld.Accepted.Load() - acceptedAtStart
	if err != nil || errs != "" {
		t.Fatalf("mailroom backup: %v, stderr %q", err, errs)
	}
	line := regexp.MustCompile(`^mailroom backup: ` + regexp.QuoteMeta(dest) + `, \d+ bytes \([0-9.]+ MiB\), \d+ pages, \S+\n$`)
	if !line.MatchString(out) {
		t.Errorf("mailroom backup printed %q, want one line naming %s, its size, pages and time", out, dest)
	}
	// Serve goes on after the backup as before it.
	target := ld.Accepted.Load() + 200
	apptest.Eventually(t, 60*time.Second, func() bool { return ld.Accepted.Load() >= target }, ld.Summary)
	all := ld.Stop()
	if !ld.AllAccepted() {
		t.Errorf("posts were refused or unanswered around the backup: %s", ld.Summary())
	}

	restored := restoreBackup(t, dest)
	inBackup := checkRestoredDatabase(t, restored, before)
	t.Logf("%d emails answered 202 before the backup began, %d while it ran, %d in all; the backup holds %d (%s)",
		len(before), acceptedDuring, len(all), len(inBackup), strings.TrimSpace(out))

	// The restored database serves: a serve started on it lists every one.
	rig2 := e2e.NewRig(t, restored)
	proc2 := rig2.Serve(t, ctx)
	listed, err := e2e.ListAll(ctx, e2e.NewHTTPClient(t), rig2.Base, "", 100)
	if err != nil {
		t.Fatalf("list the restored instance's emails: %v", err)
	}
	seen := map[string]bool{}
	for _, e := range listed {
		seen[e.ID] = true
	}
	for _, id := range before {
		if !seen[id] {
			t.Errorf("email %s, answered 202 before the backup began, is not listed by the restored instance", id)
		}
	}
	if len(listed) != len(inBackup) {
		t.Errorf("the restored instance lists %d emails; its database holds %d", len(listed), len(inBackup))
	}

	for _, p := range []*e2e.Process{proc, proc2} {
		if code, err := p.Terminate(30 * time.Second); err != nil || code != 0 {
			t.Errorf("serve: exit %d (%v) after SIGTERM, want 0; log:\n%s", code, err, e2e.LogTail(p.Log(), 4000))
		}
		if log := p.Log(); e2e.HasDataRace(log) {
			t.Errorf("the race detector found a data race in mailroom serve:\n%s", e2e.LogTail(log, 20000))
		}
	}
}

// runBinary runs bin with args and the test environment (no MAILROOM_* of the
// caller's) and returns its stdout and stderr.
func runBinary(ctx context.Context, bin string, args ...string) (stdout, stderr string, err error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = e2e.Env()
	var out, errs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errs
	err = cmd.Run()
	return out.String(), errs.String(), err
}

// restoreBackup restores the backup as docs/backups.md says: the file is copied to
// the database's path, in a data directory with no -wal or -shm beside it. It
// returns the database's path.
func restoreBackup(tb testing.TB, backup string) string {
	tb.Helper()
	restored := filepath.Join(tb.TempDir(), "mailroom.db")
	src, err := os.Open(backup)
	if err != nil {
		tb.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(restored, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		tb.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		tb.Fatal(err)
	}
	return restored
}

// checkRestoredDatabase fails tb unless the database at path passes PRAGMA
// integrity_check and PRAGMA foreign_key_check and holds every email in want; it
// returns the ids of the emails it holds. It opens the database read-only, and
// immutable (nothing else has it open), so it leaves no -wal or -shm behind.
func checkRestoredDatabase(tb testing.TB, path string, want []string) map[string]bool {
	tb.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro&immutable=1")
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	var check string
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		tb.Fatalf("PRAGMA integrity_check of the restored database = %q (%v), want ok", check, err)
	}
	if n := countRows(tb, db, "SELECT count(*) FROM pragma_foreign_key_check"); n != 0 {
		tb.Errorf("PRAGMA foreign_key_check of the restored database finds %d rows, want 0", n)
	}
	rows, err := db.Query("SELECT id FROM emails_emails")
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	held := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			tb.Fatal(err)
		}
		held[id] = true
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	missing := 0
	for _, id := range want {
		if !held[id] {
			missing++
			if missing <= 5 {
				tb.Errorf("email %s, answered 202 before the backup began, is not in the backup", id)
			}
		}
	}
	if missing > 0 {
		tb.Fatalf("%d of %d emails answered 202 before the backup began are not in it", missing, len(want))
	}
	return held
}

func countRows(tb testing.TB, db *sql.DB, query string) int {
	tb.Helper()
	var n int
	if err := db.QueryRow(query).Scan(&n); err != nil {
		tb.Fatalf("%s: %v", query, err)
	}
	return n
}
