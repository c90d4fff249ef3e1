//go:build linux || darwin || freebsd || netbsd || openbsd

package sqlite

import "syscall"

// StatfsFree is the FreeSpace of the operating system: the blocks available to an
// unprivileged user (not the root-reserved ones) times the block size.
func StatfsFree(dir string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return uint64(st.Bavail) * uint64(st.Bsize), nil //nolint:unconvert // types differ by platform
}
