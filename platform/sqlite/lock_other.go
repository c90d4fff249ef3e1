//go:build !(darwin || dragonfly || freebsd || linux || netbsd || openbsd)

package sqlite

import (
	"errors"
	"fmt"
	"os"
	"runtime"
)

// errLockHeld is flockExclusive's error when another open file holds the lock.
var errLockHeld = errors.New("the lock is held")

// flockExclusive fails where there is no flock: serving a database without the
// guarantee that no other server uses it would risk sending mail twice.
func flockExclusive(*os.File) error {
	return fmt.Errorf("locking a database file is not supported on %s", runtime.GOOS)
}

func funlock(*os.File) error { return nil }
