package sqlite

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"
)

// ErrDetached is matched (errors.Is) by every error saying that the database file is
// no longer at its path: deleted, or replaced by another file, while open. SQLite
// keeps working on the file it opened, which nobody will ever open again by its
// path, so whatever is written to it then is lost at the next start.
var ErrDetached = errors.New("the database file is no longer at its path")

// DetachedError says how the database file left its path. CheckFile returns it, and
// once the database is detached (see WatchFile) Tx, Ping, ProbeWrite and Err do.
type DetachedError struct {
	// Path is the absolute path of the database file.
	Path string
	// Replaced is true when another file is at Path now, false when nothing is.
	Replaced bool
}

// Error says what happened to which file.
func (e *DetachedError) Error() string {
	if e.Replaced {
		return "the database file " + e.Path + " was replaced by another file while in use"
	}
	return "the database file " + e.Path + " was deleted while in use"
}

// Is matches ErrDetached.
func (e *DetachedError) Is(target error) bool { return target == ErrDetached }

// CheckFile tells whether Path still names the file the database opened: nil if it
// does, a *DetachedError if the file was deleted or another file is there now, and
// another error if Path cannot be looked at (which says nothing either way). It
// costs one stat.
func (db *DB) CheckFile() error { return sameFile(db.path, db.file) }

// sameFile is nil if path names file, a *DetachedError if it names another file or
// none, and another error if path cannot be looked at.
func sameFile(path string, file os.FileInfo) error {
	now, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return &DetachedError{Path: path}
	case err != nil:
		return fmt.Errorf("check the database file: %w", err)
	case !os.SameFile(now, file):
		return &DetachedError{Path: path, Replaced: true}
	}
	return nil
}

// Err is nil while the database is attached to its file and the *DetachedError
// once it is detached (see WatchFile), for components that must stop work then
// (publishing what the database says is due, for one) rather than fail at each
// write.
func (db *DB) Err() error {
	if d := db.detached.Load(); d != nil {
		return d
	}
	return nil
}

// WatchFile checks the database file every interval (CheckFile) until ctx is done.
// Once the file is deleted or replaced it detaches the database: every Tx from then
// on fails at once with the *DetachedError (so nothing more is acknowledged), and
// Ping and Err report it. Then it saves what the still-open database holds into a
// new file next to where the database was, "<path>.rescued-<UTC time>", and logs
// one error naming that file and how to put it back. A failed rescue is logged and
// tried again at the next check. When ctx is done it checks once more, so a file
// deleted just before shutdown is rescued too, and returns once that is done.
func (db *DB) WatchFile(ctx context.Context, interval time.Duration, log *slog.Logger) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	w := fileWatch{db: db, log: log}
	for {
		select {
		case <-ctx.Done():
			w.check()
			return
		case <-tick.C:
			w.check()
		}
	}
}

// fileWatch is WatchFile's state between two checks.
type fileWatch struct {
	db  *DB
	log *slog.Logger
	// rescued is the file the content was saved to; "" until then.
	rescued string
	// lastProblem is the last error logged, so a lasting one is logged once.
	lastProblem string
}

// check detaches the database if its file left, and rescues its content once.
func (w *fileWatch) check() {
	if w.rescued != "" {
		return
	}
	if w.db.Err() == nil {
		err := w.db.CheckFile()
		var d *DetachedError
		if !errors.As(err, &d) {
			w.problem("cannot check the database file", err)
			return
		}
		w.db.detach(d)
	}
	out, err := w.db.rescue()
	if err != nil {
		w.problem("the database file was deleted or replaced while in use, and saving its content failed: mailroom accepts nothing more and tries again at each check; do not stop it before the content is saved", err)
		return
	}
	w.rescued = out
	d := w.db.detached.Load()
	what := "deleted"
	if d.Replaced {
		what = "replaced by another file"
	}
	w.log.Error("the database file was "+what+" while in use: mailroom accepts nothing more, and saved everything it had to rescued_file. "+
		"To restore it: stop mailroom, move rescued_file to db_path (deleting any db_path-wal and db_path-shm left), and start mailroom again",
		"rescued_file", out, "db_path", w.db.path, "error", d)
}

// problem logs err at ERROR unless it is the one logged last.
func (w *fileWatch) problem(msg string, err error) {
	if err == nil {
		w.lastProblem = ""
		return
	}
	if err.Error() == w.lastProblem {
		return
	}
	w.lastProblem = err.Error()
	w.log.Error(msg, "db_path", w.db.path, "error", err)
}

// detach makes the database refuse every write from now on with d, and returns once
// nothing more can be committed. It also stops the checkpoints: the file they copy
// into is no longer anyone's, and the rescue then reads a database nobody changes.
func (db *DB) detach(d *DetachedError) {
	if !db.detached.CompareAndSwap(nil, d) {
		return
	}
	db.writes.refuse(d)
	_ = db.checkpoints.close()
}

// rescue copies the whole database, as its connections still see it, into a new
// file next to Path and returns that file's absolute path. It must run only once the
// database is detached: it uses the writer connection, which saw every commit and
// which the group commit then no longer uses, and VACUUM INTO reads one consistent
// snapshot, which is every transaction ever acknowledged. The copy is synced to disk
// before rescue returns.
func (db *DB) rescue() (string, error) {
	if db.Err() == nil {
		return "", errors.New("rescue of a database that is not detached")
	}
	dir := filepath.Dir(db.path)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", fmt.Errorf("recreate the database directory %s: %w", dir, err)
	}
	out := db.path + ".rescued-" + time.Now().UTC().Format("20060102T150405Z")
	if _, err := os.Lstat(out); err == nil {
		return "", fmt.Errorf("%s exists already", out)
	}
	// The statement is not interrupted: a half-made copy is worth nothing.
	if _, err := db.Write.ExecContext(context.Background(), "VACUUM INTO ?", out); err != nil {
		_ = os.Remove(out)
		return "", fmt.Errorf("copy the database into %s: %w", out, err)
	}
	if err := syncFile(out); err != nil {
		return "", fmt.Errorf("sync %s: %w", out, err)
	}
	if err := syncFile(dir); err != nil {
		return "", fmt.Errorf("sync the directory %s: %w", dir, err)
	}
	return out, nil
}

// syncFile flushes the file or directory at path to disk.
func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	return errors.Join(f.Sync(), f.Close())
}
