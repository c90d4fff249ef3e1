// Package sqlite opens Mailroom's SQLite database the one way that is safe for it: WAL
// with synchronous=FULL, foreign keys on, immediate write transactions, one writer
// connection and a separate pool of readers.
package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"

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
	// file is the file opened, to tell whether path still names it (CheckFile).
	file os.FileInfo
	// detached is set once path no longer names file (see WatchFile).
	detached atomic.Pointer[DetachedError]
}

// sqliteDriver is mattn/go-sqlite3 with the settings its DSN cannot carry.
var sqliteDriver = &sqlite3.SQLiteDriver{ConnectHook: func(c *sqlite3.SQLiteConn) error {
	// The checkpointer copies the WAL into the database file; no commit does.
	if _, err := c.Exec("PRAGMA wal_autocheckpoint=0", nil); err != nil {
		return fmt.Errorf("disable automatic checkpoints: %w", err)
	}
	return nil
}}

// fileConnector opens connections to the database file a DB opened, and refuses to
// open one once another file, or none, is at its path. database/sql opens
// connections when it needs them, long after Open; one opened on a file put in the
// database's place would find the database's -wal beside it (same name), read it as
// that file's, and checkpoint the database's pages into it: the other file is
// overwritten and the database's last commits leave the WAL the rescue reads.
type fileConnector struct {
	dsn  string
	path string
	// file is the database file, as found before the first connection opened it.
	file os.FileInfo
}

// Connect opens a connection if path still names the database's file, and returns
// the *DetachedError otherwise.
func (c *fileConnector) Connect(context.Context) (driver.Conn, error) {
	if err := sameFile(c.path, c.file); err != nil {
		return nil, fmt.Errorf("open a connection to %s: %w", c.path, err)
	}
	return sqliteDriver.Open(c.dsn)
}

// Driver is mattn/go-sqlite3's.
func (c *fileConnector) Driver() driver.Driver { return sqliteDriver }

// Open opens (creating if needed) the database file at path and its directory.
func Open(path string) (*DB, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("db.path %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o750); err != nil {
		return nil, fmt.Errorf("create database directory %s: %w", filepath.Dir(abs), err)
	}
	return open(abs, true)
}

// NoDatabaseError is OpenExisting's answer when there is no database file.
type NoDatabaseError struct {
	// Path is the absolute path where the database was looked for.
	Path string
}

// Error names the path.
func (e *NoDatabaseError) Error() string { return "no database at " + e.Path }

// Is makes errors.Is(err, fs.ErrNotExist) true.
func (e *NoDatabaseError) Is(target error) bool { return target == fs.ErrNotExist }

// OpenExisting opens the database file at path as Open does, but never creates it
// nor its directory: with no file there it returns a *NoDatabaseError. It is for
// commands that act on a server's database, where a new empty database would only
// hide a wrong path.
func OpenExisting(path string) (*DB, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("db.path %s: %w", path, err)
	}
	if _, err := os.Stat(abs); errors.Is(err, fs.ErrNotExist) {
		return nil, &NoDatabaseError{Path: abs}
	}
	db, err := open(abs, false)
	if err != nil {
		if _, statErr := os.Stat(abs); errors.Is(statErr, fs.ErrNotExist) {
			return nil, &NoDatabaseError{Path: abs} // deleted since the check above
		}
	}
	return db, err
}

// open opens the database at the absolute path, creating its file if create is set.
func open(path string, create bool) (*DB, error) {
	if create {
		if err := createFile(path); err != nil {
			return nil, fmt.Errorf("open %s: %w", path, err)
		}
	}
	// Every connection opens this file; any file found at path later that is not
	// this one was put there by someone else (see CheckFile and fileConnector).
	file, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	write := sql.OpenDB(&fileConnector{dsn: dsn(path, connWriter, false), path: path, file: file})
	keepOne(write)
	if err := write.Ping(); err != nil {
		write.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	read := sql.OpenDB(&fileConnector{dsn: dsn(path, connReader, false), path: path, file: file})
	readers := max(4, runtime.NumCPU()*2)
	read.SetMaxOpenConns(readers)
	read.SetMaxIdleConns(readers)
	writes := newGroupCommit(write)
	ckpt, err := newCheckpointer(&fileConnector{dsn: dsn(path, connCheckpointer, false), path: path, file: file}, writes.checkpointBeforeNext)
	if err != nil {
		writes.close()
		write.Close()
		read.Close()
		return nil, err
	}
	return &DB{Write: write, Read: read, path: path, writes: writes, checkpoints: ckpt, file: file}, nil
}

// createFile makes the database file at path unless it exists, with a connection
// of its own: every connection the DB keeps opens only an existing file.
func createFile(path string) error {
	conn, err := sqliteDriver.Open(dsn(path, connWriter, true))
	if err != nil {
		return err
	}
	return conn.Close()
}

// keepOne makes db a pool of one connection, kept open for good: the writer's, and
// the checkpointer's.
func keepOne(db *sql.DB) {
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
}

// connRole is what a connection is for.
type connRole int

const (
	connWriter connRole = iota
	connReader
	connCheckpointer
)

// dsn is the data source name of a connection of role to the database at path.
// Only createFile's connection creates the file (create): every connection the DB
// keeps opens the file that exists, so that one opened after the file was deleted
// fails instead of making an empty database at path (see CheckFile).
func dsn(path string, role connRole, create bool) string {
	q := url.Values{}
	q.Set("_journal_mode", "WAL")
	q.Set("_synchronous", "FULL")
	q.Set("_foreign_keys", "on")
	q.Set("_busy_timeout", "10000")
	q.Set("_txlock", "immediate")
	// Reuse prepared statements: parsing SQL was a tenth of the write path.
	q.Set("_stmt_cache_size", "64")
	if role == connReader {
		q.Set("_query_only", "true")
	}
	if !create {
		q.Set("mode", "rw")
	}
	return "file:" + path + "?" + q.Encode()
}

// Path is the database file, as an absolute path.
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
//
// Once the database is detached from its file (see WatchFile), Tx fails at once
// with a *DetachedError, which errors.Is matches with ErrDetached.
func (db *DB) Tx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return db.writes.submit(ctx, fn)
}

// Ping checks that the database answers a write-path query. It fails with the
// *DetachedError once the database is detached from its file.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.Err(); err != nil {
		return err
	}
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
