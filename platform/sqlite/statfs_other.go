//go:build !(linux || darwin || freebsd || netbsd || openbsd)

package sqlite

import "errors"

// StatfsFree cannot ask this operating system for free space; DiskReserve.Check
// then returns this error and the caller lets writes through.
func StatfsFree(string) (uint64, error) {
	return 0, errors.New("free space is not known on this operating system")
}
