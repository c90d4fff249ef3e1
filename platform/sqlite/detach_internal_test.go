package sqlite

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// TestNoKeptConnectionCreatesTheDatabaseFile: a connection the pools open after the
// database file was deleted must fail, not make an empty database at db.path that
// the next start would take for the real one.
func TestNoKeptConnectionCreatesTheDatabaseFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "gone.db")
	for name, role := range map[string]connRole{"writer": connWriter, "reader": connReader, "checkpointer": connCheckpointer} {
		if conn, err := sqliteDriver.Open(dsn(path, role, false)); err == nil {
			conn.Close()
			t.Errorf("the %s's connection opened a database file that does not exist", name)
		}
		if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("the %s's connection made %s (%v)", name, path, err)
		}
	}
}
