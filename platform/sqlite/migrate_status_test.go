package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"

	"github.com/pressly/goose/v3"

	"github.com/mailroom/mailroom/platform/sqlite"
)

// statusOf returns MigrationStatus of sets on the database at path, opened
// read-only ("": no database), as "owner version state" lines, failing tb on an
// error.
func statusOf(tb testing.TB, ctx context.Context, path string, sets ...sqlite.MigrationSet) ([]string, []sqlite.SetStatus) {
	tb.Helper()
	var st []sqlite.SetStatus
	var err error
	if path == "" {
		st, err = sqlite.MigrationStatus(ctx, nil, sets...)
	} else {
		ro, openErr := sqlite.OpenReadOnly(path)
		if openErr != nil {
			tb.Fatalf("OpenReadOnly(%s): %v", path, openErr)
		}
		defer ro.Close()
		st, err = sqlite.MigrationStatus(ctx, ro, sets...)
	}
	if err != nil {
		tb.Fatalf("MigrationStatus: %v", err)
	}
	var lines []string
	for _, s := range st {
		for _, m := range s.Migrations {
			lines = append(lines, fmt.Sprintf("%s %d %s", s.Name, m.Source.Version, m.State))
		}
	}
	return lines, st
}

// TestMigrationStatusSaysWhatIsAppliedAndPendingAndChangesNothing: on no database,
// on a database not migrated, after one set is migrated and after a later
// migration is added, each migration is listed applied or pending as it is, and
// asking creates no version table.
func TestMigrationStatusSaysWhatIsAppliedAndPendingAndChangesNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	widgets := fstest.MapFS{"00001_widgets.sql": migration("CREATE TABLE widgets (id INTEGER PRIMARY KEY);", "DROP TABLE widgets;")}
	gadgets := fstest.MapFS{"00001_gadgets.sql": migration("CREATE TABLE gadgets (id INTEGER PRIMARY KEY);", "DROP TABLE gadgets;")}
	sets := []sqlite.MigrationSet{{Name: "widgets", FS: widgets}, {Name: "gadgets", FS: gadgets}}
	want := func(t *testing.T, got []string, want ...string) {
		t.Helper()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("status = %q, want %q", got, want)
		}
	}

	got, _ := statusOf(t, ctx, "", sets...)
	want(t, got, "widgets 1 pending", "gadgets 1 pending")

	db := openDB(t)
	got, _ = statusOf(t, ctx, db.Path(), sets...)
	want(t, got, "widgets 1 pending", "gadgets 1 pending")
	if tb := tables(t, db); tb["goose_widgets"] || tb["goose_gadgets"] {
		t.Errorf("asking for the status made version tables: %v", tb)
	}

	if err := sqlite.Migrate(ctx, db, sets[0]); err != nil {
		t.Fatal(err)
	}
	got, st := statusOf(t, ctx, db.Path(), sets...)
	want(t, got, "widgets 1 applied", "gadgets 1 pending")
	if at := st[0].Migrations[0].AppliedAt; at.IsZero() {
		t.Error("an applied migration has no time")
	}
	if st[0].Pending() != 0 || st[1].Pending() != 1 {
		t.Errorf("Pending() = %d and %d, want 0 and 1", st[0].Pending(), st[1].Pending())
	}

	widgets["00002_more.sql"] = migration("ALTER TABLE widgets ADD COLUMN name TEXT;", "")
	got, _ = statusOf(t, ctx, db.Path(), sets...)
	want(t, got, "widgets 1 applied", "widgets 2 pending", "gadgets 1 pending")
	if tb := tables(t, db); tb["goose_gadgets"] {
		t.Error("asking for the status made goose_gadgets")
	}
}

// TestMigrationStatusNamesWhatANewerMailroomApplied: a version the database
// records that the set does not hold (the database was migrated by a newer
// binary) is reported, so an operator sees a downgrade before serve starts.
func TestMigrationStatusNamesWhatANewerMailroomApplied(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	newer := fstest.MapFS{
		"00001_widgets.sql": migration("CREATE TABLE widgets (id INTEGER PRIMARY KEY);", ""),
		"00002_more.sql":    migration("ALTER TABLE widgets ADD COLUMN name TEXT;", ""),
	}
	db := openDB(t)
	if err := sqlite.Migrate(ctx, db, sqlite.MigrationSet{Name: "widgets", FS: newer}); err != nil {
		t.Fatal(err)
	}
	older := fstest.MapFS{"00001_widgets.sql": newer["00001_widgets.sql"]}
	got, st := statusOf(t, ctx, db.Path(), sqlite.MigrationSet{Name: "widgets", FS: older})
	if fmt.Sprint(got) != fmt.Sprint([]string{"widgets 1 " + string(goose.StateApplied)}) || fmt.Sprint(st[0].Unknown) != "[2]" {
		t.Errorf("status = %q, unknown %v; want version 1 applied and 2 unknown", got, st[0].Unknown)
	}
}

// TestOpenReadOnlyNeverMakesADatabase: like OpenExisting, no file is a
// *NoDatabaseError and nothing is made.
func TestOpenReadOnlyNeverMakesADatabase(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "none.db")
	db, err := sqlite.OpenReadOnly(missing)
	var none *sqlite.NoDatabaseError
	if db != nil || !errors.As(err, &none) {
		t.Fatalf("OpenReadOnly(%s) = %v, %v; want a *NoDatabaseError", missing, db, err)
	}
	if _, err := os.Stat(missing); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s was made (%v)", missing, err)
	}
}
