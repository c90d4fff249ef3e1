package sqlite_test

import (
	"context"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/mailroom/mailroom/migrations"
	"github.com/mailroom/mailroom/platform/sqlite"
)

func migratePlatform(tb testing.TB, db *sqlite.DB) {
	tb.Helper()
	if err := sqlite.Migrate(context.Background(), db, sqlite.MigrationSet{Name: "platform", FS: migrations.For("platform")}); err != nil {
		tb.Fatalf("migrate platform: %v", err)
	}
}

func instanceID(tb testing.TB, db *sqlite.DB) string {
	tb.Helper()
	id, err := db.InstanceID(context.Background())
	if err != nil {
		tb.Fatalf("InstanceID: %v", err)
	}
	return id
}

func TestTheInstanceIDIsMadeOnceAndKeptAcrossReopens(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.db")
	first := openPath(t, path)
	migratePlatform(t, first)
	id := instanceID(t, first)
	if !regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString(id) {
		t.Fatalf("instance id %q is not 16 lower-case hex digits", id)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}

	again := openPath(t, path)
	migratePlatform(t, again) // a restart migrates again: nothing is re-made
	if got := instanceID(t, again); got != id {
		t.Errorf("after reopening the same database the instance id is %q, want %q", got, id)
	}
	if n := queryInt(t, again.Read, "SELECT COUNT(*) FROM platform_instance"); n != 1 {
		t.Errorf("platform_instance holds %d rows, want 1", n)
	}
}

func TestTwoDatabasesHaveDifferentInstanceIDs(t *testing.T) {
	a, b := openDB(t), openDB(t)
	migratePlatform(t, a)
	migratePlatform(t, b)
	if idA, idB := instanceID(t, a), instanceID(t, b); idA == idB {
		t.Errorf("two databases share the instance id %q", idA)
	}
}

func TestInstanceIDFailsBeforeThePlatformIsMigrated(t *testing.T) {
	if id, err := openDB(t).InstanceID(context.Background()); err == nil {
		t.Errorf("InstanceID on an unmigrated database returned %q and no error", id)
	}
}
