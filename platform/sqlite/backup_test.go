package sqlite_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailroom/mailroom/platform/sqlite"
	"github.com/mailroom/mailroom/platform/testkit/wait"
)

// pairsDB opens a database whose every commit (addPair) inserts one row into each
// of two tables with the same id, so any copy that holds a half-done transaction,
// or two moments at once, has tables of different sizes.
func pairsDB(tb testing.TB) *sqlite.DB {
	tb.Helper()
	db := openDB(tb)
	exec(tb, db.Write, "CREATE TABLE left_rows (id INTEGER PRIMARY KEY, body BLOB NOT NULL)")
	exec(tb, db.Write, "CREATE TABLE right_rows (id INTEGER PRIMARY KEY, body BLOB NOT NULL)")
	return db
}

// addPair commits the pair id and returns once it is durable.
func addPair(ctx context.Context, db *sqlite.DB, id int64) error {
	body := make([]byte, 1500) // a few pairs per page, so the database has pages to step through
	rand.Read(body)
	return db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "INSERT INTO left_rows (id, body) VALUES (?, ?)", id, body); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, "INSERT INTO right_rows (id, body) VALUES (?, ?)", id, body)
		return err
	})
}

func addPairs(tb testing.TB, db *sqlite.DB, from, to int64) {
	tb.Helper()
	for id := from; id <= to; id++ {
		if err := addPair(context.Background(), db, id); err != nil {
			tb.Fatalf("commit pair %d: %v", id, err)
		}
	}
}

// openCopy opens a backup read-only, as it is (immutable: no WAL, no other reader).
func openCopy(tb testing.TB, path string) *sql.DB {
	tb.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro&immutable=1")
	if err != nil {
		tb.Fatalf("open the backup %s: %v", path, err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// checkPairs fails tb unless the copy at path passes PRAGMA integrity_check and
// holds the pairs 1..n, whole, for some n of at least want; it returns n.
func checkPairs(tb testing.TB, path string, want int64) int64 {
	tb.Helper()
	cp := openCopy(tb, path)
	var check string
	if err := cp.QueryRow("PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		tb.Fatalf("integrity_check of the backup = %q (%v), want ok", check, err)
	}
	var left, right, maxLeft, maxRight int64
	if err := cp.QueryRow(`SELECT (SELECT count(*) FROM left_rows), (SELECT count(*) FROM right_rows),
		(SELECT coalesce(max(id), 0) FROM left_rows), (SELECT coalesce(max(id), 0) FROM right_rows)`).
		Scan(&left, &right, &maxLeft, &maxRight); err != nil {
		tb.Fatalf("count the backup's rows: %v", err)
	}
	if left != right || maxLeft != maxRight || left != maxLeft {
		tb.Fatalf("the backup holds %d left rows (up to %d) and %d right rows (up to %d): not one moment of the database",
			left, maxLeft, right, maxRight)
	}
	if left < want {
		tb.Fatalf("the backup holds pairs 1..%d, want at least 1..%d (committed before the backup began)", left, want)
	}
	return left
}

// TestABackupIsTheDatabaseAsItStoodWhenTheBackupBegan: commits acknowledged
// between the copy's steps are not in the copy, everything committed before it
// began is, and the copy takes one step per PagesPerStep pages: it never starts
// over although the database changes behind it (the read transaction held across
// the steps is what keeps it to one moment).
func TestABackupIsTheDatabaseAsItStoodWhenTheBackupBegan(t *testing.T) {
	t.Parallel()
	db := pairsDB(t)
	addPairs(t, db, 1, 300)
	dest := filepath.Join(t.TempDir(), "backup.db")
	next := int64(301)
	const perStep = 4
	opts := sqlite.WithAfterStep(sqlite.BackupOptions{PagesPerStep: perStep}, func(int) {
		addPairs(t, db, next, next+2) // three commits between every two steps
		next += 3
	})
	res, err := sqlite.Backup(context.Background(), db.Path(), dest, opts)
	if err != nil {
		t.Fatalf("Backup: %v", err)
	}
	if next == 301 {
		t.Fatal("no commit landed between two steps: the test proves nothing")
	}
	if n := checkPairs(t, dest, 300); n != 300 {
		t.Errorf("the backup holds pairs 1..%d, want 1..300: commits acknowledged after it began are in it", n)
	}
	if want := (res.Pages + perStep - 1) / perStep; res.Steps != want {
		t.Errorf("the copy of %d pages took %d steps of %d, want %d: it started over", res.Pages, res.Steps, perStep, want)
	}
	info, err := os.Stat(dest)
	if err != nil {
		t.Fatal(err)
	}
	if res.Path != dest || res.Bytes != info.Size() || res.Bytes != int64(res.Pages*res.PageSize) {
		t.Errorf("result %+v; the file is %d bytes", res, info.Size())
	}
	if mode := info.Mode().Perm(); mode != 0o600 {
		t.Errorf("the backup's mode is %o, want 600: it holds key hashes and webhook secrets", mode)
	}
	if _, err := os.Stat(dest + ".tmp"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s.tmp is still there (%v)", dest, err)
	}
	// The source went on: every pair committed during the backup is in it.
	var n int64
	if err := db.Read.QueryRow("SELECT count(*) FROM left_rows").Scan(&n); err != nil || n != next-1 {
		t.Errorf("the database holds %d pairs (%v), want %d", n, err, next-1)
	}
}

// TestABackupUnderSteadyWritesHoldsEveryEarlierCommitAndNoHalfOfAnother: with a
// writer committing as fast as it can on other goroutines, the copy is one whole
// moment holding at least every commit acknowledged before the backup began.
func TestABackupUnderSteadyWritesHoldsEveryEarlierCommitAndNoHalfOfAnother(t *testing.T) {
	t.Parallel()
	db := pairsDB(t)
	addPairs(t, db, 1, 200)
	var (
		nextID   atomic.Int64
		acked    atomic.Int64 // every pair up to here is acknowledged
		mu       sync.Mutex
		done     = map[int64]bool{}
		stop     = make(chan struct{})
		writers  sync.WaitGroup
		writeErr atomic.Pointer[error]
	)
	nextID.Store(200)
	acked.Store(200)
	for range 4 {
		writers.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				id := nextID.Add(1)
				if err := addPair(context.Background(), db, id); err != nil {
					writeErr.Store(&err)
					return
				}
				mu.Lock()
				done[id] = true
				for done[acked.Load()+1] {
					acked.Add(1)
				}
				mu.Unlock()
			}
		})
	}
	// The writers are under way before the backup begins.
	wait.Until(t, 30*time.Second, time.Millisecond, func() bool { return acked.Load() >= 400 || writeErr.Load() != nil },
		func() string { return fmt.Sprintf("%d pairs acknowledged, want 400", acked.Load()) })
	before := acked.Load()
	dest := filepath.Join(t.TempDir(), "backup.db")
	_, err := sqlite.Backup(context.Background(), db.Path(), dest, sqlite.BackupOptions{PagesPerStep: 2})
	close(stop)
	writers.Wait()
	if err != nil {
		t.Fatalf("Backup: %v", err)
	}
	if p := writeErr.Load(); p != nil {
		t.Fatalf("a commit failed during the backup: %v", *p)
	}
	n := checkPairs(t, dest, before)
	t.Logf("%d pairs acknowledged when the backup began, %d in the backup, %d at the end", before, n, acked.Load())
}

// TestABackupNeverWritesTheDatabase: backing up a stopped instance's database
// leaves the database file byte for byte as it was (the backup reads on a
// read-only connection, which neither checkpoints nor truncates the WAL).
func TestABackupNeverWritesTheDatabase(t *testing.T) {
	t.Parallel()
	db := pairsDB(t)
	addPairs(t, db, 1, 50)
	path := db.Path()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	before := fileSum(t, path)
	dest := filepath.Join(t.TempDir(), "backup.db")
	if _, err := sqlite.Backup(context.Background(), path, dest, sqlite.BackupOptions{}); err != nil {
		t.Fatalf("Backup: %v", err)
	}
	if after := fileSum(t, path); !bytes.Equal(before, after) {
		t.Error("the database file changed during its backup")
	}
	checkPairs(t, dest, 50)
}

func fileSum(tb testing.TB, path string) []byte {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return sum[:]
}

// TestABackupReplacesAFileOnlyWhenForced: an existing destination, or a .tmp a
// killed backup left, is refused unless Force; forced, both are replaced.
func TestABackupReplacesAFileOnlyWhenForced(t *testing.T) {
	t.Parallel()
	db := pairsDB(t)
	addPairs(t, db, 1, 10)
	dir := t.TempDir()
	dest := filepath.Join(dir, "backup.db")
	for _, existing := range []string{dest, dest + ".tmp"} {
		if err := os.WriteFile(existing, []byte("an older backup"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := sqlite.Backup(context.Background(), db.Path(), dest, sqlite.BackupOptions{})
		if !errors.Is(err, fs.ErrExist) || !strings.Contains(err.Error(), existing) {
			t.Errorf("with %s there: %v, want an error naming it that matches fs.ErrExist", existing, err)
		}
		if b, _ := os.ReadFile(existing); string(b) != "an older backup" {
			t.Errorf("%s was changed by a refused backup", existing)
		}
		if _, err := sqlite.Backup(context.Background(), db.Path(), dest, sqlite.BackupOptions{Force: true}); err != nil {
			t.Fatalf("forced, with %s there: %v", existing, err)
		}
		checkPairs(t, dest, 10)
		if err := os.Remove(dest); err != nil {
			t.Fatal(err)
		}
	}
}

// TestABackupRefusesToOverwriteTheDatabaseOrItsFiles: not even Force makes the
// database, its WAL, its shared memory or its lock file a backup's destination.
func TestABackupRefusesToOverwriteTheDatabaseOrItsFiles(t *testing.T) {
	t.Parallel()
	db := pairsDB(t)
	addPairs(t, db, 1, 10)
	src := db.Path()
	link := filepath.Join(t.TempDir(), "link.db")
	if err := os.Symlink(src, link); err != nil {
		t.Fatal(err)
	}
	for _, dest := range []string{src, src + "-wal", src + "-shm", src + ".lock", link} {
		_, err := sqlite.Backup(context.Background(), src, dest, sqlite.BackupOptions{Force: true})
		if err == nil || !strings.Contains(err.Error(), "a file of the database itself") {
			t.Errorf("backup to %s: %v, want a refusal", dest, err)
		}
	}
	if _, err := sqlite.Backup(context.Background(), src, filepath.Dir(src), sqlite.BackupOptions{Force: true}); err == nil ||
		!strings.Contains(err.Error(), "is a directory") {
		t.Errorf("backup to a directory: %v, want a refusal saying it is one", err)
	}
	var n int
	if err := db.Read.QueryRow("SELECT count(*) FROM left_rows").Scan(&n); err != nil || n != 10 {
		t.Errorf("the database holds %d pairs (%v) after the refusals, want 10", n, err)
	}
}

// TestABackupOfADatabaseThatDoesNotExistMakesNothing: no file at the path is a
// *NoDatabaseError, and neither the database nor the backup is made.
func TestABackupOfADatabaseThatDoesNotExistMakesNothing(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	missing := filepath.Join(dir, "none.db")
	dest := filepath.Join(dir, "backup.db")
	_, err := sqlite.Backup(context.Background(), missing, dest, sqlite.BackupOptions{})
	var none *sqlite.NoDatabaseError
	if !errors.As(err, &none) || none.Path != missing {
		t.Fatalf("Backup of %s: %v, want a *NoDatabaseError naming it", missing, err)
	}
	for _, p := range []string{missing, dest, dest + ".tmp"} {
		if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s was made (%v)", p, err)
		}
	}
}

// TestAnInterruptedBackupLeavesNoFile: cancelled between two steps, Backup stops,
// says so, and removes its .tmp; the destination is not made.
func TestAnInterruptedBackupLeavesNoFile(t *testing.T) {
	t.Parallel()
	db := pairsDB(t)
	addPairs(t, db, 1, 50)
	dest := filepath.Join(t.TempDir(), "backup.db")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	opts := sqlite.WithAfterStep(sqlite.BackupOptions{PagesPerStep: 1}, func(steps int) {
		if steps == 3 {
			cancel()
		}
	})
	_, err := sqlite.Backup(ctx, db.Path(), dest, opts)
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "interrupted") {
		t.Fatalf("Backup cancelled mid-copy: %v, want an error saying it was interrupted", err)
	}
	entries, _ := os.ReadDir(filepath.Dir(dest))
	for _, e := range entries {
		t.Errorf("%s is left in the backup's directory", e.Name())
	}
}
