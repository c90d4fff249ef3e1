package sqlite

import (
	"fmt"
	"path/filepath"
	"sync"
	"time"
)

// FreeSpace reports how many bytes the file system holding dir has free for an
// unprivileged writer. StatfsFree is the real one; tests inject their own.
type FreeSpace func(dir string) (uint64, error)

// DiskReserve keeps the free space of the database's file system above a floor, so
// that the API refuses new data while there is still room to commit what is in
// flight, record outcomes and delete old rows, instead of letting SQLite fill the
// disk (after which every write fails, for every key). Check is cheap: it asks the
// file system at most once per interval and answers from the last look in between.
// A DiskReserve is safe for concurrent use.
type DiskReserve struct {
	dir      string
	minFree  uint64
	free     FreeSpace
	now      func() time.Time
	interval time.Duration

	mu        sync.Mutex
	checked   time.Time
	lastFree  uint64
	lastError error
}

// DefaultReserveInterval is how long DiskReserve trusts one look at the free space:
// a second lets thousands of requests pass for one statfs, and notices a filling
// disk long before the megabytes of a default reserve are gone.
const DefaultReserveInterval = time.Second

// NewDiskReserve returns the reserve of minFree bytes on the file system holding the
// database file dbPath; minFree 0 turns it off (Check always passes). free and now
// may be nil for StatfsFree and time.Now.
func NewDiskReserve(dbPath string, minFree uint64, free FreeSpace, now func() time.Time) *DiskReserve {
	if free == nil {
		free = StatfsFree
	}
	if now == nil {
		now = time.Now
	}
	return &DiskReserve{dir: filepath.Dir(dbPath), minFree: minFree, free: free, now: now, interval: DefaultReserveInterval}
}

// LowDiskError says the free space fell under the reserve. Its message is fit for
// clients: it names no path.
type LowDiskError struct {
	// Free and MinFree are the bytes free and the reserve (db.min_free_bytes).
	Free, MinFree uint64
}

func (e *LowDiskError) Error() string {
	return fmt.Sprintf("the database's disk is nearly full (%d bytes free, reserve %d): new data is refused until space is freed",
		e.Free, e.MinFree)
}

// Check returns nil while the free space is at or above the reserve (or the reserve
// is off), a *LowDiskError under it, and the error of the last look when the file
// system could not be asked (the caller decides; app logs it and lets writes through,
// since a failed statfs says nothing about the disk being full).
func (r *DiskReserve) Check() error {
	if r == nil || r.minFree == 0 {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	if r.checked.IsZero() || now.Sub(r.checked) >= r.interval || now.Before(r.checked) {
		r.lastFree, r.lastError = r.free(r.dir)
		r.checked = now
	}
	if r.lastError != nil {
		return fmt.Errorf("free space of %s: %w", r.dir, r.lastError)
	}
	if r.lastFree < r.minFree {
		return &LowDiskError{Free: r.lastFree, MinFree: r.minFree}
	}
	return nil
}
