package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/mailroom/mailroom/platform/sqlite"
)

// TestGroupCommitIsolatesEachCallersFate runs many transactions at once, so that
// they share commits, with every third one failing and one panicking: the failed ones
// leave no trace, every other one is committed, and each caller hears its own result.
func TestGroupCommitIsolatesEachCallersFate(t *testing.T) {
	db := openDB(t)
	if _, err := db.Write.Exec(`CREATE TABLE t (n INTEGER PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	const n = 300
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = db.Tx(context.Background(), func(tx *sql.Tx) error {
				if _, err := tx.Exec(`INSERT INTO t (n) VALUES (?)`, i); err != nil {
					return err
				}
				switch {
				case i == 7:
					panic("boom")
				case i%3 == 0:
					return fmt.Errorf("job %d refuses", i)
				}
				return nil
			})
		}()
	}
	wg.Wait()
	want := 0
	for i, err := range errs {
		shouldFail := i == 7 || i%3 == 0
		if shouldFail != (err != nil) {
			t.Errorf("job %d: error %v, want failure %v", i, err, shouldFail)
		}
		var present int
		if err := db.Read.QueryRow(`SELECT COUNT(*) FROM t WHERE n = ?`, i).Scan(&present); err != nil {
			t.Fatal(err)
		}
		if present == 1 == shouldFail {
			t.Errorf("job %d: row present=%d, failed=%v", i, present, shouldFail)
		}
		if !shouldFail {
			want++
		}
	}
	var got int
	if err := db.Read.QueryRow(`SELECT COUNT(*) FROM t`).Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("%d rows committed, want %d", got, want)
	}
}

// TestGroupCommitAfterCloseRefuses: a transaction after Close is refused, not lost
// silently and not hung.
func TestGroupCommitAfterCloseRefuses(t *testing.T) {
	db, err := sqlite.Open(t.TempDir() + "/x.db")
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	err = db.Tx(context.Background(), func(*sql.Tx) error { return nil })
	if !errors.Is(err, sqlite.ErrClosed) {
		t.Fatalf("Tx after Close: %v, want ErrClosed", err)
	}
}
