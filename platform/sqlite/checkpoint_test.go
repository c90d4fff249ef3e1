package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailroom/mailroom/platform/testkit/wait"
)

// fileSize is the size of path, 0 when it does not exist.
func fileSize(tb testing.TB, path string) int64 {
	tb.Helper()
	st, err := os.Stat(path)
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		tb.Fatalf("stat %s: %v", path, err)
	}
	return st.Size()
}

// No commit checkpoints (wal_autocheckpoint is 0), so committed pages reach the
// database file only through the checkpointer: a megabyte committed once, with
// nothing written after it, must show up in the file by itself. SQLite's own
// checkpoint would not have run either (it waits for 1,000 pages, 4 MB).
func TestCommittedPagesReachTheDatabaseFileWithoutAnotherCommit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "test.db")
	db := openPath(t, path)
	exec(t, db.Write, "CREATE TABLE blobs (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
	const rows, size = 256, 4096
	err := db.Tx(context.Background(), func(tx *sql.Tx) error {
		for i := range rows {
			if _, err := tx.Exec("INSERT INTO blobs (id, body) VALUES (?, ?)", i, strings.Repeat("x", size)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("insert: %v", err)
	}
	wait.Until(t, 10*time.Second, 10*time.Millisecond, func() bool { return fileSize(t, path) >= rows*size }, func() string {
		return fmt.Sprintf("database file is %d bytes after committing %d; the WAL is %d bytes: nothing checkpointed it",
			fileSize(t, path), rows*size, fileSize(t, path+"-wal"))
	})
}

// The WAL is reused once checkpointed, so writing without a pause keeps it at about
// the checkpointer's threshold plus what one interval between passes adds (7–8.5 MB
// here under -race beside another test binary), not the size of everything written:
// without the writer's top-up it never started over and grew to 77–102 MB.
func TestTheWALStaysBoundedUnderSteadyWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "test.db")
	db := openPath(t, path)
	exec(t, db.Write, "CREATE TABLE blobs (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
	body := strings.Repeat("x", 4096)
	const total = 32 << 20 // bytes written in all
	for i := 0; i*len(body) < total; i++ {
		err := db.Tx(context.Background(), func(tx *sql.Tx) error {
			_, err := tx.Exec("INSERT INTO blobs (id, body) VALUES (?, ?)", i, body)
			return err
		})
		if err != nil {
			t.Fatalf("insert %d: %v", i, err)
		}
	}
	if wal := fileSize(t, path+"-wal"); wal >= total {
		t.Errorf("WAL is %d bytes after %d bytes written: it is not being reused", wal, total)
	}
}
