package sqlite_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailroom/mailroom/platform/sqlite"
	"github.com/mailroom/mailroom/platform/testkit/wait"
)

func TestCheckFileTellsADeletedFileFromAReplacedOne(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "test.db")
	db := openPath(t, path)
	if err := db.CheckFile(); err != nil {
		t.Fatalf("CheckFile of the file opened: %v, want nil", err)
	}

	other := filepath.Join(dir, "other.db")
	if err := os.WriteFile(other, []byte("another file"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(other, path); err != nil {
		t.Fatal(err)
	}
	err := db.CheckFile()
	var d *sqlite.DetachedError
	if !errors.As(err, &d) || !d.Replaced || d.Path != path || !errors.Is(err, sqlite.ErrDetached) {
		t.Errorf("CheckFile after another file was renamed over it: %v, want a *DetachedError saying replaced", err)
	}
	if !strings.Contains(err.Error(), "replaced") {
		t.Errorf("error %q does not say replaced", err)
	}

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	err = db.CheckFile()
	if !errors.As(err, &d) || d.Replaced || !errors.Is(err, sqlite.ErrDetached) {
		t.Errorf("CheckFile after the file was deleted: %v, want a *DetachedError saying deleted", err)
	}
	if !strings.Contains(err.Error(), "deleted") {
		t.Errorf("error %q does not say deleted", err)
	}
	// Checking is not detaching: only WatchFile does that.
	if err := db.Err(); err != nil {
		t.Errorf("Err() = %v before any watch, want nil", err)
	}
}

// TestNoConnectionOpensAFilePutInTheDatabasesPlace: the pools open connections when
// they need them; one opened on another file renamed over the database would read
// the database's -wal as that file's and checkpoint it into it. Every connection
// opened once the file was replaced is refused, before any watch noticed, and the
// file put there stays as it was.
func TestNoConnectionOpensAFilePutInTheDatabasesPlace(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "test.db")
	db, err := sqlite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	exec(t, db.Write, "CREATE TABLE acked (id INTEGER PRIMARY KEY)")
	exec(t, db.Write, "INSERT INTO acked (id) VALUES (1)")
	other := filepath.Join(dir, "other")
	if err := os.WriteFile(other, []byte("not this database"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(other, path); err != nil {
		t.Fatal(err)
	}
	// No reader connection was open yet: this query needs a new one.
	var n int
	err = db.Read.QueryRow("SELECT count(*) FROM acked").Scan(&n)
	var d *sqlite.DetachedError
	if !errors.As(err, &d) || !d.Replaced {
		t.Errorf("a read needing a new connection after the file was replaced: n=%d err=%v, want a *DetachedError saying replaced", n, err)
	}
	if err := db.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != "not this database" {
		t.Errorf("the file put in the database's place was changed: %q %v", b[:min(len(b), 32)], err)
	}
}

// TestADatabaseDeletedUnderWritesRefusesThemAndSavesEveryCommit is the promise of
// WatchFile: writers commit continuously, the file is deleted (or replaced), and
// from then on every write fails at once with ErrDetached, while every write that
// was acknowledged is in the rescued copy the log names.
func TestADatabaseDeletedUnderWritesRefusesThemAndSavesEveryCommit(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		remove   func(t *testing.T, path string)
		replaced bool
	}{
		{"the database file deleted", func(t *testing.T, path string) { mustRemove(t, path) }, false},
		{"the database, its -wal and -shm deleted", func(t *testing.T, path string) {
			mustRemove(t, path)
			mustRemove(t, path+"-wal")
			mustRemove(t, path+"-shm")
		}, false},
		{"its whole directory deleted", func(t *testing.T, path string) {
			if err := os.RemoveAll(filepath.Dir(path)); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"another file renamed over it", func(t *testing.T, path string) {
			other := path + ".new"
			if err := os.WriteFile(other, []byte("not this database"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(other, path); err != nil {
				t.Fatal(err)
			}
		}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "data", "test.db")
			db, err := sqlite.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			exec(t, db.Write, "CREATE TABLE acked (id INTEGER PRIMARY KEY)")
			log := &syncBuffer{}
			watchCtx, stopWatch := context.WithCancel(context.Background())
			watched := make(chan struct{})
			go func() {
				defer close(watched)
				db.WatchFile(watchCtx, 20*time.Millisecond, slog.New(slog.NewJSONHandler(log, nil)))
			}()

			w := startWriters(db, 4)
			wait.Until(t, 30*time.Second, time.Millisecond, func() bool { return w.count() >= 300 },
				func() string { return "the writers did not commit 300 rows" })
			c.remove(t, path)
			wait.Until(t, 10*time.Second, 5*time.Millisecond, func() bool { return strings.Contains(log.String(), "rescued_file") },
				func() string { return "no rescue logged; log: " + log.String() })
			// The writers keep writing after the rescue; wait until one of them has
			// been refused rather than stopping them before any tried again.
			wait.Until(t, 10*time.Second, time.Millisecond, func() bool { return w.refused() > 0 },
				func() string { return "no write was refused after the file left" })
			acked, refusals, others := w.stop()
			stopWatch()
			<-watched

			if len(others) > 0 {
				t.Errorf("writes failed other than with ErrDetached: %v", others[:min(3, len(others))])
			}
			err = db.Tx(context.Background(), func(tx *sql.Tx) error {
				t.Error("a transaction ran on a detached database")
				return nil
			})
			var d *sqlite.DetachedError
			if !errors.As(err, &d) || d.Replaced != c.replaced || !errors.Is(db.Err(), sqlite.ErrDetached) {
				t.Errorf("Tx after the detach: %v (Err %v), want a *DetachedError with Replaced %v", err, db.Err(), c.replaced)
			}
			if err := db.Ping(context.Background()); !errors.Is(err, sqlite.ErrDetached) {
				t.Errorf("Ping after the detach: %v, want ErrDetached", err)
			}

			rescued := checkOneRescueLogged(t, log.String(), path, c.replaced)
			if err := db.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
			if c.replaced {
				if b, err := os.ReadFile(path); err != nil || string(b) != "not this database" {
					t.Errorf("the file put in the database's place was changed: %q %v", b, err)
				}
			}
			checkRescuedHolds(t, rescued, acked)
			t.Logf("%d writes acknowledged before the file left, %d refused after; rescued to %s", len(acked), refusals, filepath.Base(rescued))
		})
	}
}

// TestAFileDeletedJustBeforeShutdownIsRescuedOnTheWayOut: the watch checks once more
// when it is stopped, so a shutdown between two checks loses nothing either.
func TestAFileDeletedJustBeforeShutdownIsRescuedOnTheWayOut(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "test.db")
	db := openPath(t, path)
	exec(t, db.Write, "CREATE TABLE acked (id INTEGER PRIMARY KEY)")
	if err := db.Tx(context.Background(), func(tx *sql.Tx) error {
		_, err := tx.Exec("INSERT INTO acked (id) VALUES (1), (2), (3)")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	log := &syncBuffer{}
	ctx, stop := context.WithCancel(context.Background())
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		db.WatchFile(ctx, time.Hour, slog.New(slog.NewJSONHandler(log, nil)))
	}()
	mustRemove(t, path)
	stop()
	<-watched
	rescued := checkOneRescueLogged(t, log.String(), path, false)
	checkRescuedHolds(t, rescued, []int64{1, 2, 3})
}

// writers commit rows with increasing ids into table acked from several goroutines
// until the database refuses them, and keep what was acknowledged.
type writers struct {
	next     atomic.Int64
	wg       sync.WaitGroup
	mu       sync.Mutex
	acked    []int64
	refusals int
	others   []error
	cancel   context.CancelFunc
}

func startWriters(db *sqlite.DB, n int) *writers {
	ctx, cancel := context.WithCancel(context.Background())
	w := &writers{cancel: cancel}
	for range n {
		w.wg.Go(func() {
			for ctx.Err() == nil {
				id := w.next.Add(1)
				err := db.Tx(ctx, func(tx *sql.Tx) error {
					_, err := tx.Exec("INSERT INTO acked (id) VALUES (?)", id)
					return err
				})
				w.mu.Lock()
				switch {
				case err == nil:
					w.acked = append(w.acked, id)
				case errors.Is(err, sqlite.ErrDetached):
					w.refusals++
				case ctx.Err() == nil:
					w.others = append(w.others, err)
				}
				w.mu.Unlock()
			}
		})
	}
	return w
}

func (w *writers) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acked)
}

func (w *writers) refused() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.refusals
}

func (w *writers) stop() (acked []int64, refusals int, others []error) {
	w.cancel()
	w.wg.Wait()
	return w.acked, w.refusals, w.others
}

// checkOneRescueLogged checks that log (JSON lines) has exactly one ERROR line, and
// that it names the rescued file, beside the database, and says how to restore it;
// it returns the rescued file.
func checkOneRescueLogged(t *testing.T, log, path string, replaced bool) string {
	t.Helper()
	var rescued string
	errorsLogged := 0
	for line := range strings.Lines(log) {
		var rec struct {
			Level, Msg  string
			RescuedFile string `json:"rescued_file"`
			DBPath      string `json:"db_path"`
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if rec.Level != "ERROR" {
			continue
		}
		errorsLogged++
		rescued = rec.RescuedFile
		if rec.DBPath != path || !strings.Contains(rec.Msg, "move rescued_file to db_path") {
			t.Errorf("the rescue line %q does not say to move the rescued file to %s", line, path)
		}
		if what := map[bool]string{false: "deleted", true: "replaced"}[replaced]; !strings.Contains(rec.Msg, what) {
			t.Errorf("the rescue line %q does not say the file was %s", line, what)
		}
	}
	if errorsLogged != 1 {
		t.Errorf("%d ERROR lines, want one:\n%s", errorsLogged, log)
	}
	if !regexp.MustCompile(`^` + regexp.QuoteMeta(path) + `\.rescued-\d{8}T\d{6}Z$`).MatchString(rescued) {
		t.Fatalf("rescued file %q, want %s.rescued-<UTC time>", rescued, path)
	}
	return rescued
}

// checkRescuedHolds checks that the database file at rescued is sound and holds
// every id in table acked.
func checkRescuedHolds(t *testing.T, rescued string, acked []int64) {
	t.Helper()
	copyDB, err := sqlite.OpenExisting(rescued)
	if err != nil {
		t.Fatalf("open the rescued file: %v", err)
	}
	defer copyDB.Close()
	var check string
	if err := copyDB.Read.QueryRow("PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		t.Errorf("integrity_check of the rescued file: %q %v", check, err)
	}
	rows, err := copyDB.Read.Query("SELECT id FROM acked")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	have := map[int64]bool{}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		have[id] = true
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	var lost []int64
	for _, id := range acked {
		if !have[id] {
			lost = append(lost, id)
		}
	}
	if len(lost) > 0 {
		slices.Sort(lost)
		t.Errorf("%d of %d acknowledged writes are not in the rescued file (e.g. %v)", len(lost), len(acked), lost[:min(5, len(lost))])
	}
}

func mustRemove(t *testing.T, path string) {
	t.Helper()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
}

// syncBuffer is a bytes.Buffer that a logger may write while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
