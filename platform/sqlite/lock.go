package sqlite

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// ExclusiveLock is one process's claim to be the only server of a database file: an
// exclusive flock on the sidecar file "<database>.lock", held until Release or until
// the process ends. The kernel drops a flock when its holder dies, however it dies
// (kill -9 included), so a crashed server never blocks the next one; and it is not
// the database file itself, on which SQLite takes POSIX locks of its own that a
// flock must not be confused with.
//
// The holder writes its pid into the lock file, so a refused process can say who
// holds the database. The file is never deleted: deleting it while another process
// opens it would let two processes lock two different files of one name.
type ExclusiveLock struct {
	file *os.File
	path string
}

// InUseError is LockExclusive's answer when another process holds the database.
type InUseError struct {
	// Database is the absolute path of the database file.
	Database string
	// PID is the holder's process id, as it wrote it in the lock file; 0 when it
	// could not be read.
	PID int
}

// Error says which database is held, by which pid, and the ways out, in one line.
func (e *InUseError) Error() string {
	holder := "pid unknown"
	if e.PID > 0 {
		holder = "pid " + strconv.Itoa(e.PID)
	}
	return fmt.Sprintf("database %s is in use by another mailroom serve (%s); stop that one first or give this one another db.path",
		e.Database, holder)
}

// LockExclusive takes the exclusive lock of the database file at dbPath (creating
// its directory and the lock file if needed) without waiting: if another process
// holds it, it returns an *InUseError naming that process. The lock guards against
// other processes and against a second LockExclusive of the same database in this
// process alike.
func LockExclusive(dbPath string) (*ExclusiveLock, error) {
	abs, err := filepath.Abs(dbPath)
	if err != nil {
		return nil, fmt.Errorf("db.path %s: %w", dbPath, err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o750); err != nil {
		return nil, fmt.Errorf("create database directory %s: %w", filepath.Dir(abs), err)
	}
	path := abs + ".lock"
	// Neither O_TRUNC nor a write before the lock is held: that would erase the
	// holder's pid.
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open the lock file %s: %w", path, err)
	}
	if err := flockExclusive(f); err != nil {
		defer f.Close()
		if errors.Is(err, errLockHeld) {
			return nil, &InUseError{Database: abs, PID: holderPID(f)}
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := writePID(f); err != nil {
		_ = funlock(f)
		f.Close()
		return nil, fmt.Errorf("write the pid into %s: %w", path, err)
	}
	return &ExclusiveLock{file: f, path: path}, nil
}

// Path is the lock file.
func (l *ExclusiveLock) Path() string { return l.path }

// Release empties the lock file and gives the lock up, so another process may take
// it. It may be called again.
func (l *ExclusiveLock) Release() error {
	if l == nil || l.file == nil {
		return nil
	}
	f := l.file
	l.file = nil
	truncErr := f.Truncate(0)
	return errors.Join(truncErr, funlock(f), f.Close())
}

func writePID(f *os.File) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	if _, err := f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0); err != nil {
		return err
	}
	return nil
}

// holderPID reads the pid the holder wrote. The holder writes it right after it
// took the lock, so a file found empty is read again for a moment.
func holderPID(f *os.File) int {
	deadline := time.Now().Add(200 * time.Millisecond)
	for {
		buf := make([]byte, 32)
		n, _ := f.ReadAt(buf, 0)
		if pid, err := strconv.Atoi(strings.TrimSpace(string(buf[:n]))); err == nil && pid > 0 {
			return pid
		}
		if time.Now().After(deadline) {
			return 0
		}
		time.Sleep(10 * time.Millisecond)
	}
}
