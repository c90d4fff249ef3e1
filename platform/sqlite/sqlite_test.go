package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/mailroom/mailroom/migrations"
	"github.com/mailroom/mailroom/platform/sqlite"
)

// openDB opens a fresh database file in a temporary directory and closes it at the
// end of the test.
func openDB(tb testing.TB) *sqlite.DB {
	tb.Helper()
	return openPath(tb, filepath.Join(tb.TempDir(), "test.db"))
}

func openPath(tb testing.TB, path string) *sqlite.DB {
	tb.Helper()
	db, err := sqlite.Open(path)
	if err != nil {
		tb.Fatalf("Open(%s): %v", path, err)
	}
	tb.Cleanup(func() {
		if err := db.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return db
}

func exec(tb testing.TB, db *sql.DB, query string, args ...any) {
	tb.Helper()
	if _, err := db.Exec(query, args...); err != nil {
		tb.Fatalf("%s: %v", query, err)
	}
}

func queryInt(tb testing.TB, q interface {
	QueryRow(string, ...any) *sql.Row
}, query string, args ...any) int {
	tb.Helper()
	var n int
	if err := q.QueryRow(query, args...).Scan(&n); err != nil {
		tb.Fatalf("%s: %v", query, err)
	}
	return n
}

func TestTheWriteConnectionHasTheSafePragmas(t *testing.T) {
	db := openDB(t)
	var mode string
	if err := db.Write.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if mode != "wal" {
		t.Errorf("journal_mode = %q, want wal", mode)
	}
	cases := []struct {
		pragma string
		want   int
	}{
		{"synchronous", 2}, // FULL: a commit survives power loss, not only a crash
		{"foreign_keys", 1},
		{"busy_timeout", 10000},
		{"query_only", 0},
		{"wal_autocheckpoint", 0}, // the checkpointer copies the WAL, never a commit
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s is %d", c.pragma, c.want), func(t *testing.T) {
			if got := queryInt(t, db.Write, "PRAGMA "+c.pragma); got != c.want {
				t.Errorf("PRAGMA %s = %d, want %d", c.pragma, got, c.want)
			}
		})
	}
}

func TestForeignKeysAreEnforced(t *testing.T) {
	db := openDB(t)
	exec(t, db.Write, "CREATE TABLE parent (id INTEGER PRIMARY KEY)")
	exec(t, db.Write, "CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER NOT NULL REFERENCES parent(id))")
	_, err := db.Write.Exec("INSERT INTO child (id, parent_id) VALUES (1, 42)")
	if err == nil {
		t.Fatal("inserting a child of a missing parent succeeded")
	}
	if !sqlite.IsConstraint(err) {
		t.Errorf("IsConstraint(%v) = false, want true", err)
	}
}

func TestEveryReadConnectionIsQueryOnly(t *testing.T) {
	db := openDB(t)
	exec(t, db.Write, "CREATE TABLE t (id INTEGER PRIMARY KEY)")
	ctx := context.Background()
	// Hold several connections at once so that the checks reach distinct ones.
	var conns []*sql.Conn
	for range 3 {
		c, err := db.Read.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	t.Cleanup(func() {
		for _, c := range conns {
			_ = c.Close()
		}
	})
	writes := []string{
		"INSERT INTO t (id) VALUES (1)",
		"CREATE TABLE other (id INTEGER)",
		"DELETE FROM t",
	}
	for i, c := range conns {
		var qo int
		if err := c.QueryRowContext(ctx, "PRAGMA query_only").Scan(&qo); err != nil {
			t.Fatal(err)
		}
		if qo != 1 {
			t.Errorf("read connection %d: query_only = %d, want 1", i, qo)
		}
		var mode string
		if err := c.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
			t.Fatal(err)
		}
		if mode != "wal" {
			t.Errorf("read connection %d: journal_mode = %q, want wal", i, mode)
		}
		for _, w := range writes {
			if _, err := c.ExecContext(ctx, w); err == nil {
				t.Errorf("read connection %d accepted the write %q", i, w)
			}
		}
	}
	if n := queryInt(t, db.Write, "SELECT COUNT(*) FROM t"); n != 0 {
		t.Errorf("the table holds %d rows after refused writes, want 0", n)
	}
}

func TestReadersSeeCommittedDataWithoutWaitingForAnOpenWrite(t *testing.T) {
	db := openDB(t)
	exec(t, db.Write, "CREATE TABLE t (id INTEGER PRIMARY KEY)")
	exec(t, db.Write, "INSERT INTO t (id) VALUES (1)")

	inTx := make(chan struct{})
	release := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- db.Tx(context.Background(), func(tx *sql.Tx) error {
			if _, err := tx.Exec("INSERT INTO t (id) VALUES (2)"); err != nil {
				return err
			}
			close(inTx)
			<-release
			return nil
		})
	}()
	<-inTx
	// The write transaction holds the write lock; a reader is answered at once with
	// the last committed state.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var n int
	if err := db.Read.QueryRowContext(ctx, "SELECT COUNT(*) FROM t").Scan(&n); err != nil {
		t.Fatalf("read during an open write transaction: %v", err)
	}
	if n != 1 {
		t.Errorf("reader saw %d rows during the write, want the 1 committed", n)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("Tx: %v", err)
	}
	if n := queryInt(t, db.Read, "SELECT COUNT(*) FROM t"); n != 2 {
		t.Errorf("reader saw %d rows after the commit, want 2", n)
	}
}

func TestTxCommitsOnNilAndRollsBackOnError(t *testing.T) {
	db := openDB(t)
	exec(t, db.Write, "CREATE TABLE t (id INTEGER PRIMARY KEY)")
	ctx := context.Background()
	if err := db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.Exec("INSERT INTO t (id) VALUES (1)")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.Exec("INSERT INTO t (id) VALUES (2)"); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Tx returned %v, want the function's error", err)
	}
	if n := queryInt(t, db.Read, "SELECT COUNT(*) FROM t"); n != 1 {
		t.Errorf("%d rows after one commit and one rollback, want 1", n)
	}
	// The writer connection is usable again after a rollback.
	if err := db.Ping(ctx); err != nil {
		t.Errorf("Ping after rollback: %v", err)
	}
}

func TestConcurrentTransactionsSerialiseWithoutBusyErrors(t *testing.T) {
	cases := []struct {
		name    string
		handles int // DB values opened on the same file, as two processes would
	}{
		{"goroutines sharing one DB", 1},
		{"two DB handles on one file", 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "test.db")
			var dbs []*sqlite.DB
			for range c.handles {
				dbs = append(dbs, openPath(t, path))
			}
			exec(t, dbs[0].Write, "CREATE TABLE counter (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)")
			exec(t, dbs[0].Write, "INSERT INTO counter (id, n) VALUES (1, 0)")

			const goroutines, perGoroutine = 8, 25
			ctx := context.Background()
			var wg sync.WaitGroup
			errs := make(chan error, goroutines*perGoroutine)
			for g := range goroutines {
				db := dbs[g%len(dbs)]
				wg.Go(func() {
					for range perGoroutine {
						// A read-modify-write: lost updates would show if transactions
						// interleaved, and a deferred BEGIN would fail with SQLITE_BUSY.
						errs <- db.Tx(ctx, func(tx *sql.Tx) error {
							var n int
							if err := tx.QueryRow("SELECT n FROM counter WHERE id = 1").Scan(&n); err != nil {
								return fmt.Errorf("read: %w", err)
							}
							if _, err := tx.Exec("UPDATE counter SET n = ? WHERE id = 1", n+1); err != nil {
								return fmt.Errorf("write: %w", err)
							}
							return nil
						})
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Errorf("Tx: %v (busy/locked: %v)", err, sqlite.IsUnavailable(err))
				}
			}
			if n := queryInt(t, dbs[0].Read, "SELECT n FROM counter WHERE id = 1"); n != goroutines*perGoroutine {
				t.Errorf("counter = %d after %d increments: transactions interleaved", n, goroutines*perGoroutine)
			}
		})
	}
}

func TestOpenCreatesTheDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a", "b", "mailroom.db")
	db := openPath(t, path)
	if db.Path() != path {
		t.Errorf("Path() = %q, want %q", db.Path(), path)
	}
	if err := db.Ping(context.Background()); err != nil {
		t.Errorf("Ping: %v", err)
	}
}

// tables lists the tables of the database.
func tables(tb testing.TB, db *sqlite.DB) map[string]bool {
	tb.Helper()
	rows, err := db.Read.Query("SELECT name FROM sqlite_master WHERE type = 'table'")
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			tb.Fatal(err)
		}
		out[name] = true
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}

func migration(up, down string) *fstest.MapFile {
	return &fstest.MapFile{Data: []byte("-- +goose Up\n" + up + "\n-- +goose Down\n" + down + "\n")}
}

func TestMigrateKeepsOneVersionTablePerOwnerAndIsIdempotent(t *testing.T) {
	db := openDB(t)
	ctx := context.Background()
	// Both owners number their first migration 00001: separate version tables let
	// them do so without clashing.
	extra := fstest.MapFS{"00001_widgets.sql": migration("CREATE TABLE widgets (id INTEGER PRIMARY KEY);", "DROP TABLE widgets;")}
	sets := []sqlite.MigrationSet{
		{Name: "platform", FS: migrations.For("platform")},
		{Name: "widgets", FS: extra},
	}
	for round := 1; round <= 3; round++ {
		if err := sqlite.Migrate(ctx, db, sets...); err != nil {
			t.Fatalf("Migrate, round %d: %v", round, err)
		}
	}
	got := tables(t, db)
	for _, want := range []string{"goose_platform", "goose_widgets", "outbox", "widgets"} {
		if !got[want] {
			t.Errorf("table %s missing after Migrate; tables: %v", want, got)
		}
	}
	for _, owner := range []string{"platform", "widgets"} {
		table := "goose_" + owner
		if n := queryInt(t, db.Read, "SELECT COUNT(*) FROM "+table+" WHERE version_id = 1"); n != 1 {
			t.Errorf("%s records version 1 %d times after three runs, want once", table, n)
		}
	}

	// A later migration of one owner is applied alone, on the next run.
	extra["00002_gadgets.sql"] = migration("CREATE TABLE gadgets (id INTEGER PRIMARY KEY);", "DROP TABLE gadgets;")
	if err := sqlite.Migrate(ctx, db, sets...); err != nil {
		t.Fatalf("Migrate with a new migration: %v", err)
	}
	if !tables(t, db)["gadgets"] {
		t.Error("the new migration was not applied")
	}
	if n := queryInt(t, db.Read, "SELECT MAX(version_id) FROM goose_widgets"); n != 2 {
		t.Errorf("goose_widgets is at version %d, want 2", n)
	}
	platform, err := fs.Glob(migrations.For("platform"), "*.sql")
	if err != nil {
		t.Fatal(err)
	}
	if n := queryInt(t, db.Read, "SELECT MAX(version_id) FROM goose_platform"); n != len(platform) {
		t.Errorf("goose_platform is at version %d, want %d (untouched)", n, len(platform))
	}
}

func TestEveryOwnersMigrationsApplyTogether(t *testing.T) {
	db := openDB(t)
	var sets []sqlite.MigrationSet
	for _, owner := range []string{"platform", "emails", "delivery", "deadletters"} {
		sets = append(sets, sqlite.MigrationSet{Name: owner, FS: migrations.For(owner)})
	}
	ctx := context.Background()
	for round := 1; round <= 2; round++ {
		if err := sqlite.Migrate(ctx, db, sets...); err != nil {
			t.Fatalf("Migrate, round %d: %v", round, err)
		}
	}
	got := tables(t, db)
	for _, s := range sets {
		if !got["goose_"+s.Name] {
			t.Errorf("version table goose_%s missing", s.Name)
		}
	}
}

func TestMigrateReportsTheOwnerOfABrokenMigration(t *testing.T) {
	db := openDB(t)
	broken := fstest.MapFS{"00001_broken.sql": migration("CREATE TABLE (;", "")}
	err := sqlite.Migrate(context.Background(), db, sqlite.MigrationSet{Name: "broken_owner", FS: broken})
	if err == nil {
		t.Fatal("a broken migration was applied without error")
	}
	if want := "broken_owner"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not name the owner %q", err, want)
	}
}

func TestOpenExistingNeverMakesADatabase(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	missing := filepath.Join(dir, "no", "such.db")
	db, err := sqlite.OpenExisting(missing)
	var none *sqlite.NoDatabaseError
	if !errors.As(err, &none) || none.Path != missing || !errors.Is(err, fs.ErrNotExist) {
		if db != nil {
			db.Close()
		}
		t.Fatalf("OpenExisting(%s) = %v, want a *NoDatabaseError naming it", missing, err)
	}
	if _, err := os.Stat(filepath.Dir(missing)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("OpenExisting made the directory %s (%v)", filepath.Dir(missing), err)
	}

	path := filepath.Join(dir, "made.db")
	made := openPath(t, path)
	exec(t, made.Write, "CREATE TABLE t (x INTEGER)")
	existing, err := sqlite.OpenExisting(path)
	if err != nil {
		t.Fatalf("OpenExisting of a database that exists: %v", err)
	}
	defer existing.Close()
	if n := queryInt(t, existing.Read, "SELECT count(*) FROM sqlite_master WHERE name = 't'"); n != 1 {
		t.Errorf("OpenExisting opened another database: no table t")
	}
}
