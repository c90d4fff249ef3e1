package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
)

// batchDB is a database with a table t (n INTEGER PRIMARY KEY) for driving
// groupCommit.commit directly, with a batch of our choosing.
func batchDB(t *testing.T) *DB {
	t.Helper()
	db, err := Open(filepath.Join(t.TempDir(), "batch.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Write.Exec(`CREATE TABLE t (n INTEGER PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	return db
}

// insertJob is a job that inserts n, counts its runs in calls[n], and then fails
// if fail is set.
func insertJob(n int, fail bool, calls map[int]int) *txJob {
	return &txJob{ctx: context.Background(), done: make(chan error, 1), fn: func(tx *sql.Tx) error {
		calls[n]++
		if _, err := tx.Exec(`INSERT INTO t (n) VALUES (?)`, n); err != nil {
			return err
		}
		if fail {
			return errors.New("refused after writing")
		}
		return nil
	}}
}

func committed(t *testing.T, db *DB) map[int]bool {
	t.Helper()
	rows, err := db.Read.Query(`SELECT n FROM t`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := map[int]bool{}
	for rows.Next() {
		var n int
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		got[n] = true
	}
	return got
}

// TestABatchWithoutFailuresRunsEachFunctionOnce: the common case takes no
// savepoints and no second run.
func TestABatchWithoutFailuresRunsEachFunctionOnce(t *testing.T) {
	db := batchDB(t)
	calls := map[int]int{}
	batch := []*txJob{insertJob(1, false, calls), insertJob(2, false, calls), insertJob(3, false, calls)}
	db.writes.commit(batch)
	for i, j := range batch {
		if err := <-j.done; err != nil {
			t.Errorf("job %d: %v", i+1, err)
		}
	}
	for n := 1; n <= 3; n++ {
		if calls[n] != 1 {
			t.Errorf("job %d ran %d times, want once", n, calls[n])
		}
	}
	if got := committed(t, db); len(got) != 3 {
		t.Errorf("committed %v, want 1, 2 and 3", got)
	}
}

// TestAFailureInABatchIsUndoneAloneByRunningTheBatchAgain: a function that wrote and
// then failed sends the batch round again, each in a savepoint: its write is gone,
// its neighbours' writes are committed once, and each caller hears its own result.
func TestAFailureInABatchIsUndoneAloneByRunningTheBatchAgain(t *testing.T) {
	db := batchDB(t)
	calls := map[int]int{}
	batch := []*txJob{insertJob(1, false, calls), insertJob(2, true, calls), insertJob(3, false, calls)}
	db.writes.commit(batch)
	for i, j := range batch {
		err := <-j.done
		if (i == 1) != (err != nil) {
			t.Errorf("job %d: error %v", i+1, err)
		}
	}
	// The first run stops at the failure: job 3 runs only in the second.
	if calls[1] != 2 || calls[2] != 2 || calls[3] != 1 {
		t.Errorf("runs = %v, want 1:2 2:2 3:1", calls)
	}
	if got := committed(t, db); !got[1] || got[2] || !got[3] || len(got) != 2 {
		t.Errorf("committed %v, want 1 and 3", got)
	}
}

// TestAFailingBatchOfOneIsRolledBack: alone in its batch, a failed function's write
// is rolled back with the transaction, and it runs once.
func TestAFailingBatchOfOneIsRolledBack(t *testing.T) {
	db := batchDB(t)
	calls := map[int]int{}
	j := insertJob(1, true, calls)
	db.writes.commit([]*txJob{j})
	if err := <-j.done; err == nil {
		t.Error("the failing job succeeded")
	}
	if calls[1] != 1 {
		t.Errorf("ran %d times, want once", calls[1])
	}
	if got := committed(t, db); len(got) != 0 {
		t.Errorf("committed %v, want nothing", got)
	}
}
