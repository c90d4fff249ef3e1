package sqlite_test

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailroom/mailroom/platform/sqlite"
)

// fakeDisk is a file system whose free space a test sets, counting the looks.
type fakeDisk struct {
	free  atomic.Uint64
	looks atomic.Int64
	err   atomic.Pointer[error]
}

func (d *fakeDisk) freeSpace(string) (uint64, error) {
	d.looks.Add(1)
	if e := d.err.Load(); e != nil {
		return 0, *e
	}
	return d.free.Load(), nil
}

// clock is a time a test moves by hand.
type clock struct{ t atomic.Int64 }

func (c *clock) now() time.Time          { return time.Unix(0, c.t.Load()) }
func (c *clock) advance(d time.Duration) { c.t.Add(int64(d)) }

func TestTheDiskReserveRefusesUnderItsFloorAndRecoversOnceSpaceReturns(t *testing.T) {
	disk, clk := &fakeDisk{}, &clock{}
	clk.t.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	disk.free.Store(1 << 30)
	r := sqlite.NewDiskReserve("/data/mailroom.db", 256<<20, disk.freeSpace, clk.now)

	if err := r.Check(); err != nil {
		t.Fatalf("1 GiB free over a 256 MiB reserve: Check = %v, want nil", err)
	}
	disk.free.Store(100 << 20)
	if err := r.Check(); err != nil {
		t.Fatalf("within the same second Check must answer from its last look, got %v", err)
	}
	clk.advance(sqlite.DefaultReserveInterval)
	var low *sqlite.LowDiskError
	if err := r.Check(); !errors.As(err, &low) || low.Free != 100<<20 || low.MinFree != 256<<20 {
		t.Fatalf("100 MiB free under a 256 MiB reserve: Check = %v, want a *LowDiskError with both numbers", err)
	}
	disk.free.Store(256 << 20)
	clk.advance(sqlite.DefaultReserveInterval)
	if err := r.Check(); err != nil {
		t.Fatalf("space freed to exactly the reserve: Check = %v, want nil (recovered)", err)
	}
	if got := disk.looks.Load(); got != 3 {
		t.Errorf("the file system was asked %d times for 4 checks over 3 intervals, want 3", got)
	}
}

func TestADiskReserveOfZeroNeverAsksTheFileSystem(t *testing.T) {
	disk := &fakeDisk{}
	r := sqlite.NewDiskReserve("/data/mailroom.db", 0, disk.freeSpace, nil)
	if err := r.Check(); err != nil {
		t.Fatalf("reserve off: Check = %v, want nil", err)
	}
	if disk.looks.Load() != 0 {
		t.Error("reserve off, yet the file system was asked")
	}
}

func TestAFreeSpaceThatCannotBeReadIsReportedAsSuchNotAsALowDisk(t *testing.T) {
	disk := &fakeDisk{}
	boom := errors.New("statfs: input/output error")
	disk.err.Store(&boom)
	r := sqlite.NewDiskReserve("/data/mailroom.db", 1, disk.freeSpace, nil)
	err := r.Check()
	var low *sqlite.LowDiskError
	if !errors.Is(err, boom) || errors.As(err, &low) {
		t.Fatalf("Check = %v, want the statfs error and no *LowDiskError", err)
	}
}

func TestStatfsFreeReadsTheRealFileSystem(t *testing.T) {
	free, err := sqlite.StatfsFree(t.TempDir())
	if err != nil {
		t.Fatalf("StatfsFree: %v", err)
	}
	if free == 0 {
		t.Error("StatfsFree says a writable temp dir has 0 bytes free")
	}
}
