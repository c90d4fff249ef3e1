package sqlite

import (
	"cmp"
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	sqlite3 "github.com/mattn/go-sqlite3"
)

// BackupOptions shapes a Backup.
type BackupOptions struct {
	// Force lets Backup replace a file at the destination, and the destination's
	// ".tmp" file that a backup killed before it finished left behind; without it
	// Backup refuses both with an error that errors.Is matches with fs.ErrExist.
	Force bool
	// PagesPerStep is how many pages each step of the copy takes (zero:
	// DefaultPagesPerStep; negative: all in one step). Backup checks its context
	// between steps, so a smaller step stops sooner when it is cancelled.
	PagesPerStep int
	// afterStep, when set (by tests, see export_test.go), is called after each
	// step that copied pages but did not finish, with the steps so far.
	afterStep func(steps int)
}

// DefaultPagesPerStep is the pages one step of a Backup copies unless told
// otherwise: 4 MiB of Mailroom's 4 KiB pages.
const DefaultPagesPerStep = 1024

// BackupResult says what Backup wrote.
type BackupResult struct {
	// Path is the backup file, as an absolute path.
	Path string
	// Bytes is its size; Pages and PageSize its pages (Bytes = Pages × PageSize).
	Bytes    int64
	Pages    int
	PageSize int
	// Steps is how many steps the copy took.
	Steps int
	// Took is how long Backup took, the check of the copy included.
	Took time.Duration
}

// Backup copies the database at dbPath, as one consistent snapshot, to dest: a
// file that opens as that database as it stood at one commit, with every
// transaction committed before Backup began and none half-done.
//
// It reads with SQLite's online backup API on a read-only connection of its own,
// in steps of opts.PagesPerStep pages, inside one read transaction that it opens
// before the first step and ends after the last. In WAL mode a reader never blocks
// the writer, so a running server keeps committing during the copy, and holding
// the snapshot across the steps is what keeps the copy to one moment: without it
// SQLite starts the copy over after each step that a commit lands behind, which
// under steady writes would be for ever. While the snapshot is held the
// checkpointer cannot copy the newer WAL frames into the database file, so the
// WAL grows by what is committed during the backup; it is checkpointed as usual
// afterwards. Backup takes no lock of its own (not the server's flock): it works
// beside a running serve and on a stopped one's database alike, and never writes
// to the database.
//
// The copy is written to dest+".tmp" (mode 0600: the database holds key hashes
// and webhook secrets), checked with PRAGMA quick_check, synced to disk and only
// then renamed to dest, so dest is either the whole snapshot or untouched. Backup
// refuses a dest that is the database itself or one of its own files (-wal, -shm,
// -journal, .lock), a directory, and an existing dest or dest.tmp unless
// opts.Force. With no file at dbPath it returns a *NoDatabaseError.
func Backup(ctx context.Context, dbPath, dest string, opts BackupOptions) (BackupResult, error) {
	began := time.Now()
	src, err := filepath.Abs(dbPath)
	if err != nil {
		return BackupResult{}, fmt.Errorf("db.path %s: %w", dbPath, err)
	}
	if _, err := os.Stat(src); errors.Is(err, fs.ErrNotExist) {
		return BackupResult{}, &NoDatabaseError{Path: src}
	}
	if dest, err = filepath.Abs(dest); err != nil {
		return BackupResult{}, fmt.Errorf("backup path: %w", err)
	}
	tmp := dest + ".tmp"
	if err := checkBackupDestination(src, dest, tmp, opts.Force); err != nil {
		return BackupResult{}, err
	}
	if err := createPrivate(tmp, opts.Force); err != nil {
		return BackupResult{}, err
	}
	res, err := copyAndPlace(ctx, src, tmp, dest, opts)
	if err != nil {
		removeTemporary(tmp)
		return BackupResult{}, err
	}
	res.Took = time.Since(began)
	return res, nil
}

// copyAndPlace copies the snapshot into tmp, checks and syncs it, and renames it
// to dest.
func copyAndPlace(ctx context.Context, src, tmp, dest string, opts BackupOptions) (BackupResult, error) {
	res, err := copySnapshot(ctx, src, tmp, opts)
	if err != nil {
		return res, err
	}
	if err := quickCheck(tmp); err != nil {
		return res, err
	}
	if err := syncFile(tmp); err != nil {
		return res, fmt.Errorf("sync %s: %w", tmp, err)
	}
	// dest was free when Backup began; a file put there since is not replaced.
	if _, err := os.Lstat(dest); err == nil && !opts.Force {
		return res, fmt.Errorf("%s appeared during the backup: %w", dest, fs.ErrExist)
	}
	if err := os.Rename(tmp, dest); err != nil {
		return res, fmt.Errorf("rename %s to %s: %w", tmp, dest, err)
	}
	if err := syncFile(filepath.Dir(dest)); err != nil {
		return res, fmt.Errorf("sync the directory of %s (the backup is there, but a crash now could lose its name): %w", dest, err)
	}
	info, err := os.Stat(dest)
	if err != nil {
		return res, fmt.Errorf("stat %s: %w", dest, err)
	}
	res.Path, res.Bytes = dest, info.Size()
	return res, nil
}

// checkBackupDestination refuses a destination that would overwrite the database
// or its own files, a directory, and, unless force, an existing dest or tmp.
func checkBackupDestination(src, dest, tmp string, force bool) error {
	for _, own := range []string{src, src + "-wal", src + "-shm", src + "-journal", src + ".lock"} {
		for _, p := range []string{dest, tmp} {
			if p == own || sameExistingFile(p, own) {
				return fmt.Errorf("the backup would overwrite %s, a file of the database itself: give the backup another path", own)
			}
		}
	}
	info, err := os.Stat(dest)
	switch {
	case err == nil && info.IsDir():
		return fmt.Errorf("%s is a directory: give the backup a file name", dest)
	case err == nil && !force:
		return fmt.Errorf("%s exists: %w", dest, fs.ErrExist)
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("backup path: %w", err)
	}
	if _, err := os.Stat(filepath.Dir(dest)); err != nil {
		return fmt.Errorf("the backup's directory: %w", err)
	}
	return nil
}

// sameExistingFile reports whether a and b both exist and are one file (a hard
// link, or a path through a symbolic link).
func sameExistingFile(a, b string) bool {
	ia, errA := os.Stat(a)
	ib, errB := os.Stat(b)
	return errA == nil && errB == nil && os.SameFile(ia, ib)
}

// createPrivate makes the empty file path with mode 0600. An existing one (left by
// a backup that was killed, or another backup running to the same path now) is
// refused unless force, which removes it first.
func createPrivate(path string, force bool) error {
	if force {
		removeTemporary(path)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s exists (another backup to the same path is running, or one was killed before it finished): %w", path, fs.ErrExist)
	}
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	return f.Close()
}

// removeTemporary removes the copy in progress at path and SQLite's journal of it.
func removeTemporary(path string) {
	_ = os.Remove(path)
	_ = os.Remove(path + "-journal")
}

// copySnapshot copies the database at src into the empty file tmp through the
// online backup API, inside one read transaction of a read-only connection (see
// Backup).
func copySnapshot(ctx context.Context, src, tmp string, opts BackupOptions) (_ BackupResult, err error) {
	from, pageSize, err := openSnapshot(src)
	if err != nil {
		return BackupResult{}, err
	}
	defer from.Close() // ends the read transaction
	to, err := openConn("file:" + tmp + "?_synchronous=FULL")
	if err != nil {
		return BackupResult{}, fmt.Errorf("open %s: %w", tmp, err)
	}
	defer func() {
		if closeErr := to.Close(); err == nil && closeErr != nil {
			err = fmt.Errorf("close %s: %w", tmp, closeErr)
		}
	}()
	bk, err := to.Backup("main", from, "main")
	if err != nil {
		return BackupResult{}, fmt.Errorf("start the backup of %s: %w", src, err)
	}
	steps, err := stepThrough(ctx, bk, cmp.Or(opts.PagesPerStep, DefaultPagesPerStep), opts.afterStep)
	pages := bk.PageCount()
	if finishErr := bk.Finish(); err == nil && finishErr != nil {
		err = fmt.Errorf("finish the backup of %s: %w", src, finishErr)
	}
	if err != nil {
		return BackupResult{}, err
	}
	return BackupResult{Pages: pages, PageSize: pageSize, Steps: steps}, nil
}

// stepThrough runs the backup's steps until it is done, and returns how many it
// took. A step SQLite answers busy (the source or the copy locked for a moment)
// is tried again after a short pause. afterStep, if not nil, is called after each
// step that copied pages without finishing.
func stepThrough(ctx context.Context, bk *sqlite3.SQLiteBackup, pagesPerStep int, afterStep func(int)) (int, error) {
	const busyPause = 10 * time.Millisecond
	for steps := 1; ; steps++ {
		if err := ctx.Err(); err != nil {
			return steps - 1, fmt.Errorf("backup interrupted: %w", err)
		}
		before := bk.Remaining()
		done, err := bk.Step(pagesPerStep)
		switch {
		case err != nil:
			return steps, fmt.Errorf("copy pages: %w", err)
		case done:
			return steps, nil
		case bk.Remaining() == before && before > 0:
			select { // busy: nothing was copied
			case <-ctx.Done():
			case <-time.After(busyPause):
			}
		case afterStep != nil:
			afterStep(steps)
		}
	}
}

// openSnapshot opens a read-only connection to the database at path, begins a
// read transaction on it and reads the page size in it: until the connection is
// closed, everything it reads is the database as of that moment.
func openSnapshot(path string) (*sqlite3.SQLiteConn, int, error) {
	conn, err := openConn(readOnlyDSN(path))
	if err != nil {
		return nil, 0, fmt.Errorf("open %s: %w", path, err)
	}
	if _, err := conn.Exec("BEGIN", nil); err != nil {
		conn.Close()
		return nil, 0, fmt.Errorf("begin a read of %s: %w", path, err)
	}
	// A deferred transaction takes its snapshot at its first read.
	if _, err := queryStrings(conn, "SELECT count(*) FROM sqlite_schema"); err != nil {
		conn.Close()
		return nil, 0, fmt.Errorf("read %s: %w", path, err)
	}
	size, err := queryStrings(conn, "PRAGMA page_size")
	if err != nil || len(size) != 1 {
		conn.Close()
		return nil, 0, fmt.Errorf("read the page size of %s: %w", path, err)
	}
	var pageSize int
	if _, err := fmt.Sscan(size[0], &pageSize); err != nil {
		conn.Close()
		return nil, 0, fmt.Errorf("read the page size of %s: %w", path, err)
	}
	return conn, pageSize, nil
}

// readOnlyDSN is the data source name of a connection that only reads the database
// at path: it never writes the database file nor checkpoints the WAL, not even when
// it is the last connection to close.
func readOnlyDSN(path string) string {
	return "file:" + path + "?mode=ro&_busy_timeout=10000&_query_only=true"
}

// quickCheck runs PRAGMA quick_check on the copy at path, opened as immutable (it
// has no WAL, and nothing else has it open), so that a copy of a damaged database
// is refused rather than kept as a backup.
func quickCheck(path string) error {
	conn, err := openConn("file:" + path + "?mode=ro&immutable=1")
	if err != nil {
		return fmt.Errorf("open the copy %s to check it: %w", path, err)
	}
	defer conn.Close()
	rows, err := queryStrings(conn, "PRAGMA quick_check")
	if err != nil {
		return fmt.Errorf("check the copy %s: %w", path, err)
	}
	if len(rows) != 1 || rows[0] != "ok" {
		return fmt.Errorf("the copy fails PRAGMA quick_check, so the database itself is damaged (run PRAGMA integrity_check on it): %v", rows)
	}
	return nil
}

// openConn opens one connection of Mailroom's driver.
func openConn(dsn string) (*sqlite3.SQLiteConn, error) {
	c, err := sqliteDriver.Open(dsn)
	if err != nil {
		return nil, err
	}
	return c.(*sqlite3.SQLiteConn), nil
}

// queryStrings runs query on conn and returns the first column of every row, as
// text.
func queryStrings(conn *sqlite3.SQLiteConn, query string) ([]string, error) {
	rows, err := conn.Query(query, nil)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	row := make([]driver.Value, len(rows.Columns()))
	for {
		if err := rows.Next(row); errors.Is(err, io.EOF) {
			return out, nil
		} else if err != nil {
			return out, err
		}
		out = append(out, fmt.Sprint(textOf(row[0])))
	}
}

// textOf turns a driver value into what fmt prints as SQLite's text of it.
func textOf(v driver.Value) any {
	if b, ok := v.([]byte); ok {
		return string(b)
	}
	return v
}
