package main

import (
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/mailroom/mailroom/app/apptest"
)

// backupLine is the one line `mailroom backup` prints: path, size, pages, time.
var backupLine = regexp.MustCompile(`^mailroom backup: (/\S+), (\d+) bytes \(\d+\.\d MiB\), (\d+) pages, [0-9.]+[µm]?s\n$`)

// TestBackupCopiesARunningServersDatabaseAndSaysSoInOneLine: beside a running
// server (which holds the database's lock) the backup copies every email it had
// accepted and prints where, how large, how many pages and how long.
func TestBackupCopiesARunningServersDatabaseAndSaysSoInOneLine(t *testing.T) {
	t.Parallel()
	in := apptest.Start(t, apptest.Config(t))
	var ids []string
	for i := range 5 {
		ids = append(ids, in.Send(t, apptest.NewEmail(fmt.Sprintf("r%d@example.com", i))))
	}
	dest := filepath.Join(t.TempDir(), "backup.db")
	code, out, errs := mailroom(t, "backup", "--db", in.Config.DB.Path, dest)
	if code != 0 || errs != "" {
		t.Fatalf("backup: exit %d, stderr %q; want 0 and nothing on stderr", code, errs)
	}
	m := backupLine.FindStringSubmatch(out)
	if m == nil || m[1] != dest {
		t.Fatalf("backup printed %q, want one line like %q naming %s", out, "mailroom backup: PATH, N bytes (X MiB), N pages, T", dest)
	}
	info, err := os.Stat(dest)
	if err != nil || fmt.Sprint(info.Size()) != m[2] {
		t.Errorf("the line says %s bytes; the file: %v, %v", m[2], info, err)
	}
	cp, err := sql.Open("sqlite3", "file:"+dest+"?mode=ro&immutable=1")
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	for _, id := range ids {
		var n int
		if err := cp.QueryRow("SELECT count(*) FROM emails_emails WHERE id = ?", id).Scan(&n); err != nil || n != 1 {
			t.Errorf("email %s: %d in the backup (%v), want 1", id, n, err)
		}
	}
}

// TestBackupRefusesWhatItWouldLoseOrMake: an existing file (unless --force), no
// PATH, a PATH that is the database, and a database that does not exist are each
// refused in one line with exit 1, and nothing is written.
func TestBackupRefusesWhatItWouldLoseOrMake(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := filepath.Join(dir, "mailroom.db")
	if code, _, errs := mailroom(t, "migrate", "--db", db); code != 0 {
		t.Fatalf("migrate: exit %d, %s", code, errs)
	}
	existing := filepath.Join(dir, "old-backup.db")
	if err := os.WriteFile(existing, []byte("yesterday's"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"backup", "--db", db, existing}, "exists; pass --force to replace it"},
		{[]string{"backup", "--db", db}, "usage: mailroom backup [--force] PATH"},
		{[]string{"backup", "--db", db, "--force", db}, "a file of the database itself"},
		{[]string{"backup", "--db", filepath.Join(dir, "none.db"), filepath.Join(dir, "b.db")},
			"no database at " + filepath.Join(dir, "none.db") + " (db.path)"},
	}
	for _, c := range cases {
		code, out, errs := mailroom(t, c.args...)
		if code != 1 || out != "" || strings.Count(errs, "\n") != 1 || !strings.HasPrefix(errs, "mailroom backup: ") ||
			!strings.Contains(errs, c.want) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want 1 and one line saying %q", c.args, code, out, errs, c.want)
		}
	}
	if b, _ := os.ReadFile(existing); string(b) != "yesterday's" {
		t.Error("a refused backup replaced the existing file")
	}
	for _, made := range []string{filepath.Join(dir, "none.db"), filepath.Join(dir, "b.db")} {
		if _, err := os.Stat(made); err == nil {
			t.Errorf("%s was made", made)
		}
	}
	if code, out, errs := mailroom(t, "backup", "--db", db, "--force", existing); code != 0 || !backupLine.MatchString(out) {
		t.Errorf("backup --force over an existing file: exit %d, %q %q", code, out, errs)
	}
}

// TestMigrateStatusListsEveryMigrationAndAppliesNone: on a database that does not
// exist, every migration of the platform and each module is listed pending and
// nothing is made; after migrate, every one is applied; exit 0 both times.
func TestMigrateStatusListsEveryMigrationAndAppliesNone(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "mailroom.db")
	code, out, errs := mailroom(t, "migrate", "--status", "--db", db)
	if code != 0 || errs != "" {
		t.Fatalf("migrate --status on no database: exit %d, stderr %q", code, errs)
	}
	for _, want := range []string{
		"database " + db + " (none yet",
		"platform: 0 applied, 4 pending\n",
		"emails: 0 applied, ", "delivery: 0 applied, ", "deadletters: 0 applied, ", "apikeys: 0 applied, ",
		"webhooks: 0 applied, ", "suppressions: 0 applied, ", "00011 (Go)",
		"pending: mailroom migrate, or the next serve, applies them\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("migrate --status on no database does not say %q:\n%s", want, out)
		}
	}
	if !regexp.MustCompile(`(?m)^  pending +00001_outbox\.sql$`).MatchString(out) {
		t.Errorf("migrate --status on no database does not list 00001_outbox.sql pending:\n%s", out)
	}
	if strings.Contains(out, "applied 20") {
		t.Errorf("migrate --status on no database lists an applied migration:\n%s", out)
	}
	if _, err := os.Stat(db); err == nil {
		t.Errorf("migrate --status made %s", db)
	}

	if code, _, errs := mailroom(t, "migrate", "--db", db); code != 0 {
		t.Fatalf("migrate: exit %d, %s", code, errs)
	}
	code, out, errs = mailroom(t, "migrate", "--status", "--db", db)
	if code != 0 || errs != "" {
		t.Fatalf("migrate --status after migrate: exit %d, stderr %q", code, errs)
	}
	applied := regexp.MustCompile(`(?m)^  applied  \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ  00001_outbox\.sql$`)
	if !strings.HasPrefix(out, "database "+db+"\n") || !applied.MatchString(out) ||
		strings.Contains(out, "pending  ") || !strings.HasSuffix(out, "nothing pending\n") {
		t.Errorf("migrate --status after migrate:\n%s\nwant every migration applied, with its time, and nothing pending", out)
	}
	owners := regexp.MustCompile(`(?m)^(\w+): \d+ applied, (\d+) pending$`).FindAllStringSubmatch(out, -1)
	if len(owners) != 7 {
		t.Errorf("after migrate, %d owners listed, want 7 (platform and 6 modules):\n%s", len(owners), out)
	}
	for _, o := range owners {
		if o[2] != "0" {
			t.Errorf("after migrate, %s has %s pending", o[1], o[2])
		}
	}
}

// TestBackupAndMigrateHelpShowTheirFlags: backup -h shows --force and the config
// flags, migrate -h shows --status.
func TestBackupAndMigrateHelpShowTheirFlags(t *testing.T) {
	for args, want := range map[string][]string{
		"backup -h":  {"usage: mailroom backup [flags] PATH", "-force", "-db", "-config"},
		"migrate -h": {"-status", "-modules", "-db"},
	} {
		code, out, errs := mailroom(t, strings.Fields(args)...)
		if code != 0 || errs != "" {
			t.Errorf("%s: exit %d, stderr %q", args, code, errs)
		}
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("%s does not show %q:\n%s", args, w, out)
			}
		}
	}
}
