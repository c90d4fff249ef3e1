package sqlite_test

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/mailroom/mailroom/platform/sqlite"
)

func TestASecondLockOfADatabaseIsRefusedNamingItsHolder(t *testing.T) {
	t.Chdir(t.TempDir()) // a relative db.path is named by its absolute path
	abs, err := filepath.Abs(filepath.Join("data", "mailroom.db"))
	if err != nil {
		t.Fatal(err)
	}
	first, err := sqlite.LockExclusive(filepath.Join("data", "mailroom.db"))
	if err != nil {
		t.Fatalf("first lock: %v", err)
	}
	if first.Path() != abs+".lock" {
		t.Errorf("lock file %s, want %s.lock beside the database", first.Path(), abs)
	}
	pid := strconv.Itoa(os.Getpid())
	if b, err := os.ReadFile(abs + ".lock"); err != nil || strings.TrimSpace(string(b)) != pid {
		t.Errorf("lock file holds %q (%v), want the holder's pid %s", b, err, pid)
	}

	second, err := sqlite.LockExclusive(abs)
	var inUse *sqlite.InUseError
	if !errors.As(err, &inUse) {
		second.Release()
		t.Fatalf("second lock: %v, want an *InUseError", err)
	}
	if inUse.Database != abs || inUse.PID != os.Getpid() {
		t.Errorf("InUseError = %+v, want database %s held by pid %d", inUse, abs, os.Getpid())
	}
	want := "database " + abs + " is in use by another mailroom serve (pid " + pid + "); stop that one first or give this one another db.path"
	if err.Error() != want {
		t.Errorf("error %q,\nwant  %q", err, want)
	}
	if _, err := os.Stat(abs); err == nil {
		t.Errorf("locking made the database file %s", abs)
	}

	if err := first.Release(); err != nil {
		t.Fatalf("release: %v", err)
	}
	again, err := sqlite.LockExclusive(abs)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	if err := again.Release(); err != nil {
		t.Errorf("release: %v", err)
	}
	if err := again.Release(); err != nil {
		t.Errorf("a second release: %v, want nil", err)
	}
}

func TestLocksOfDifferentDatabasesDoNotConflict(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, name := range []string{"a.db", "b.db"} {
		l, err := sqlite.LockExclusive(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("lock %s: %v", name, err)
		}
		t.Cleanup(func() { l.Release() })
	}
}
