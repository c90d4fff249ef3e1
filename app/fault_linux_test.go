package app_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mailroom/mailroom/app/apptest"
	"github.com/mailroom/mailroom/app/internal/e2e"
)

// diskSize is the size of the tmpfs the database lives on in TestDiskFullUnderLoad.
const diskSize = 64 << 20

// diskFullFor is how long the disk stays full in TestDiskFullUnderLoad.
const diskFullFor = 10 * time.Second

// TestDiskFullUnderLoad is the database becoming unwritable while the real binary
// is under load. Making the directory read-only does not work here: the tests run as
// root, which ignores permission bits, and SQLite keeps its files open anyway. So
// the database lives on a tmpfs of its own (mounted by the test: it needs
// CAP_SYS_ADMIN, which root has here), and the fault is the realistic one: the disk
// fills up (a filler file takes every free byte) and is freed again.
//
// While the disk is full a POST must be answered 503 in the contract's error shape
// (not 500, not a hang), /readyz must say 503, and the log must say why. Once the
// filler is deleted, the service must recover by itself, and every email answered
// 202, before, during or after the fault, must reach the SMTP server and be `sent`.
func TestDiskFullUnderLoad(t *testing.T) {
	t.Parallel()
	disk := mountTmpfs(t, filepath.Join(t.TempDir(), "disk"), diskSize)
	rig := e2e.NewRig(t, filepath.Join(disk, "mailroom.db"), // the log stays off the full disk
		// The reserve off: this is the last line of defence, a disk truly full
		// (TestTheDiskReserveRefusesWritesAndRecovers holds the reserve).
		"MAILROOM_DB_MIN_FREE_BYTES=0",
		"MAILROOM_RETRY_INITIAL_INTERVAL=200ms",
		"MAILROOM_RETRY_MAX_INTERVAL=2s",
		"MAILROOM_DELIVERY_CONCURRENCY="+strconv.Itoa(faultLanes),
	)
	srv, base := rig.SMTP, rig.Base
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	began := time.Now()
	proc := rig.Serve(t, ctx)
	ld := e2e.StartLoad(t, ctx, base, e2e.LoadConfig{Workers: 2, Timeout: 30 * time.Second, Subject: "disk full test"})
	defer ld.Stop()
	target := int64(300)
	apptest.Eventually(t, 60*time.Second, func() bool { return ld.Accepted.Load() >= target },
		func() string {
			return fmt.Sprintf("load: %d accepted, want %d; %s", ld.Accepted.Load(), target, ld.Summary())
		})

	// The fault: fill the disk.
	filler := filepath.Join(disk, "filler")
	fillStart := time.Now()
	fillDisk(t, filler)
	acceptedAtFault := ld.Accepted.Load()
	t.Logf("disk full after %d accepted (%d delivered)", acceptedAtFault, srv.Count())

	// Writes fail once SQLite must grow a file; under load that is soon. Then every
	// POST is a 503 in the error shape, and /readyz says so.
	refusedAtFault := ld.Refused.Load()
	apptest.Eventually(t, 60*time.Second, func() bool { return ld.Refused.Load() >= refusedAtFault+50 },
		func() string { return fmt.Sprintf("no 503s while the disk is full: %s", ld.Summary()) })
	var r apptest.Response
	apptest.Eventually(t, 30*time.Second, func() bool {
		r = apptest.Do(t, base, http.MethodPost, "/api/emails", apptest.NewEmail("probe@example.com"))
		return r.Status != http.StatusAccepted
	}, func() string { return "every POST is still accepted while the disk is full" })
	checkUnavailable(t, r)
	var ready apptest.Response
	apptest.Eventually(t, 30*time.Second, func() bool {
		ready = apptest.Do(t, base, http.MethodGet, "/readyz", nil)
		return ready.Status == http.StatusServiceUnavailable
	}, func() string {
		return fmt.Sprintf("/readyz = %d %s while the disk is full, want 503", ready.Status, ready.Body)
	})
	if log := proc.Log(); !strings.Contains(log, "database or disk is full") {
		t.Errorf("the log does not say the disk is full:\n%s", e2e.LogTail(log, 3000))
	}
	t.Logf("full disk: first 503 %s after the fill; /readyz %s", time.Since(fillStart).Round(time.Millisecond), ready.Body)

	// The disk stays full for diskFullFor (a timer, as an outage lasts), with the
	// load and the deliveries of the accepted backlog going on.
	<-time.After(time.Until(fillStart.Add(diskFullFor)))
	refusedDuring := ld.Refused.Load() - refusedAtFault

	// The fault goes away.
	faultLasted := time.Since(fillStart)
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	freed := time.Now()
	apptest.Eventually(t, 60*time.Second, func() bool {
		return apptest.Do(t, base, http.MethodGet, "/readyz", nil).Status == http.StatusOK
	}, func() string { return "/readyz does not recover once the disk has room again" })
	readyAgain := time.Since(freed)
	target = ld.Accepted.Load() + 200
	apptest.Eventually(t, 60*time.Second, func() bool { return ld.Accepted.Load() >= target },
		func() string {
			return fmt.Sprintf("POST does not recover: %d accepted, want %d; %s", ld.Accepted.Load(), target, ld.Summary())
		})
	ids := ld.Stop()
	t.Logf("load stopped: %d answered 202; %s", len(ids), ld.Summary())
	if slowest := ld.Slowest(); slowest > 5*time.Second {
		t.Errorf("the slowest POST took %s: a full disk must be answered, not waited out", slowest)
	}
	for status := range ld.Statuses() {
		if status != http.StatusServiceUnavailable {
			t.Errorf("answers other than 202 and 503 while the disk was full: %s", ld.Summary())
		}
	}
	if n := ld.Failures.Load(); n > 0 {
		t.Errorf("%d POSTs got no answer while the disk was full: %s", n, ld.Summary())
	}

	rx := newReceivedIndex()
	rx.waitReceived(t, srv, ids, 120*time.Second, nil)
	checkAllSent(t, ctx, base, ids)
	dups := rx.duplicates()
	t.Logf("FIGURES disk full: %d emails answered 202 (%d before the fault) and %d answered 503 (%d while full) in %s; disk full for %s; /readyz 200 again %s after space was freed; all delivered %s after; %d received, %d duplicates, 0 lost, 0 dead",
		len(ids), acceptedAtFault, ld.Refused.Load(), refusedDuring, time.Since(began).Round(time.Second), faultLasted.Round(100*time.Millisecond),
		readyAgain.Round(time.Millisecond), time.Since(freed).Round(100*time.Millisecond), srv.Count(), dups)
	// A send whose record the full disk refused is remembered in memory and
	// recorded on redelivery, not sent again: no copy, as long as the process lives.
	if dups != 0 {
		t.Errorf("%d duplicate deliveries across a full disk, want none", dups)
	}
	terminate(t, proc)
}

// mountTmpfs mounts a tmpfs of size bytes on dir (created) and unmounts it when the
// test ends. It fails the test where mounting is not allowed.
func mountTmpfs(t *testing.T, dir string, size int) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV,
		"size="+strconv.Itoa(size)+",mode=0700"); err != nil {
		t.Fatalf("mount a tmpfs for the disk-full fault (needs root or CAP_SYS_ADMIN): %v", err)
	}
	// Registered after the process's own cleanup (Start comes later), so it runs
	// after the process is gone; MNT_DETACH in case something still holds a file.
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// fillDisk writes path until the file system has no byte left.
func fillDisk(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 1<<20)
	for {
		if _, err := f.Write(chunk); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				return
			}
			t.Fatalf("fill the disk: %v", err)
		}
	}
}

// checkUnavailable asserts a 503 in the contract's error shape.
func checkUnavailable(t *testing.T, r apptest.Response) {
	t.Helper()
	if r.Status != http.StatusServiceUnavailable {
		t.Fatalf("POST while the disk is full: %d %s, want 503", r.Status, r.Body)
	}
	var b struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(r.Body, &b); err != nil || b.Error.Code != "unavailable" || b.Error.Message == "" {
		t.Fatalf("503 body %s, want the error shape with code unavailable (%v)", r.Body, err)
	}
	if strings.Contains(strings.ToLower(string(r.Body)), "sqlite") || strings.Contains(string(r.Body), "disk") {
		t.Errorf("503 body %s shows the cause; it belongs in the log", r.Body)
	}
}
