// Package sqlite opens Mailroom's SQLite database the one way that is safe for it: WAL
// with synchronous=FULL, foreign keys on, immediate write transactions, one writer
// connection and a separate pool of readers.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"

	sqlite3 "github.com/mattn/go-sqlite3"
)

// DB holds the single writer connection and the read pool of one database file.
// SQLite allows one writer at a time; funnelling writes through one connection turns
// lock contention into queueing, and readers never wait for it in WAL mode.
type DB struct {
	Write  *sql.DB
	Read   *sql.DB
	path   string
	writes *groupCommit
	// checkpoints copies the WAL into the database file, off the writer.
	checkpoints *checkpointer
}

// driverName is mattn/go-sqlite3 with the settings its DSN cannot carry.
const driverName = "sqlite3_mailroom"

func init() {
	sql.Register(driverName, &sqlite3.SQLiteDriver{ConnectHook: func(c *sqlite3.SQLiteConn) error {
		// The checkpointer copies the WAL into the database file; no commit does.
		if _, err := c.Exec("PRAGMA wal_autocheckpoint=0", nil); err != nil {
			return fmt.Errorf("disable automatic checkpoints: %w", err)
		}
		return nil
	}})
}

// Open opens (creating if needed) the database file at path and its directory.
func Open(path string) (*DB, error) {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("create database directory %s: %w", dir, err)
		}
	}
	write, err := openOne(path)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := write.Ping(); err != nil {
		write.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	read, err := sql.Open(driverName, dsn(path, true))
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("open %s for reading: %w", path, err)
	}
	readers := max(4, runtime.NumCPU()*2)
	read.SetMaxOpenConns(readers)
	read.SetMaxIdleConns(readers)
	writes := newGroupCommit(write)
	ckpt, err := newCheckpointer(path, writes.checkpointBeforeNext)
	if err != nil {
		writes.close()
		write.Close()
		read.Close()
		return nil, err
	}
	return &DB{Write: write, Read: read, path: path, writes: writes, checkpoints: ckpt}, nil
}

// openOne opens a pool of one read-write connection, kept open: the writer's, and
// the checkpointer's.
func openOne(path string) (*sql.DB, error) {
	db, err := sql.Open(driverName, dsn(path, false))
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	return db, nil
}

func dsn(path string, readOnly bool) string {
	q := url.Values{}
	q.Set("_journal_mode", "WAL")
	q.Set("_synchronous", "FULL")
	q.Set("_foreign_keys", "on")
	q.Set("_busy_timeout", "10000")
	q.Set("_txlock", "immediate")
	// Reuse prepared statements: parsing SQL was a tenth of the write path.
	q.Set("_stmt_cache_size", "64")
	if readOnly {
		q.Set("_query_only", "true")
	}
	return "file:" + path + "?" + q.Encode()
}

// Path is the database file.
func (db *DB) Path() string { return db.path }

// Tx runs fn as one write transaction: its changes are committed if it returns nil
// and discarded if it returns an error, and Tx returns once that is durable. Writes
// from the whole process are group-committed (see groupCommit), so fn shares the
// SQLite transaction with others: it must not COMMIT, ROLLBACK or keep tx after
// returning, and should not run a statement with a context that may be cancelled
// mid-statement (SQLite's interrupt would roll back the group; the group then fails
// as a whole and every caller sees the error).
//
// fn may run twice: when another function of its group fails, the group is rolled
// back and run again with a savepoint around each function (cheaper than a
// savepoint each every time, since failures are rare). Only the last run's writes
// count, so fn must act only through tx, and set from scratch anything it reports
// to its caller (a counter it increments must start at zero inside fn).
func (db *DB) Tx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return db.writes.submit(ctx, fn)
}

// Ping checks that the database answers a write-path query.
func (db *DB) Ping(ctx context.Context) error {
	var n int
	if err := db.Write.QueryRowContext(ctx, "SELECT 1").Scan(&n); err != nil {
		return fmt.Errorf("ping database: %w", err)
	}
	return nil
}

// Close stops the checkpointer, finishes the queued transactions and closes both
// pools.
func (db *DB) Close() error {
	err := db.checkpoints.close()
	db.writes.close()
	return errors.Join(err, db.Read.Close(), db.Write.Close())
}

// IsConstraint reports whether err is a uniqueness or other constraint violation.
func IsConstraint(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && se.Code == sqlite3.ErrConstraint
}

// IsUnavailable reports whether err means the database cannot be written at all
// (read-only file or directory, full disk, I/O error), as opposed to a bad query.
func IsUnavailable(err error) bool {
	var se sqlite3.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code {
	case sqlite3.ErrReadonly, sqlite3.ErrIoErr, sqlite3.ErrFull, sqlite3.ErrCantOpen, sqlite3.ErrBusy, sqlite3.ErrLocked, sqlite3.ErrPerm:
		return true
	}
	return false
}
