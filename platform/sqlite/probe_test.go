package sqlite_test

import (
	"context"
	"testing"

	"github.com/mailroom/mailroom/migrations"
	"github.com/mailroom/mailroom/platform/sqlite"
)

func TestProbeWriteCommitsARowOnceThePlatformIsMigrated(t *testing.T) {
	db := openDB(t)
	ctx := context.Background()
	if err := db.ProbeWrite(ctx); err == nil {
		t.Fatal("ProbeWrite succeeded before the platform migrations created its table")
	}
	if err := sqlite.Migrate(ctx, db, sqlite.MigrationSet{Name: "platform", FS: migrations.For("platform")}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := db.ProbeWrite(ctx); err != nil {
			t.Fatalf("ProbeWrite: %v", err)
		}
	}
	if n := queryInt(t, db.Read, "SELECT COUNT(*) FROM platform_health"); n != 1 {
		t.Errorf("platform_health holds %d rows after three probes, want 1", n)
	}
}
