package app_test

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailroom/mailroom/app"
	"github.com/mailroom/mailroom/app/apptest"
)

// TestTheDiskReserveRefusesWritesAndRecovers holds db.min_free_bytes: while the
// database's file system (injected) has less free, a POST is 507
// insufficient_storage in the error shape with Retry-After and a message saying
// why, reads still answer and /readyz is 503 naming the disk; once space returns,
// POSTs are accepted again with nothing done by anyone.
func TestTheDiskReserveRefusesWritesAndRecovers(t *testing.T) {
	t.Parallel()
	var free atomic.Uint64
	free.Store(10 << 30)
	cfg := apptest.Config(t)
	cfg.DB.MinFreeBytes = 256 << 20
	in := apptest.Start(t, cfg, app.WithFreeSpace(func(string) (uint64, error) { return free.Load(), nil }))
	auth := apptest.Bearer(apptest.AdminKey)

	id := in.Send(t, apptest.NewEmail("before@example.com"))

	free.Store(1 << 20)
	var r apptest.Response
	apptest.Eventually(t, 10*time.Second, func() bool {
		r = in.Do(t, http.MethodPost, "/api/emails", apptest.NewEmail("during@example.com"), auth...)
		return r.Status != http.StatusAccepted
	}, func() string { return "POSTs are still accepted with 1 MiB free under a 256 MiB reserve" })
	if r.Status != http.StatusInsufficientStorage || !strings.Contains(string(r.Body), `"code":"insufficient_storage"`) ||
		!strings.Contains(string(r.Body), "nearly full") {
		t.Fatalf("POST under the reserve = %d %s, want 507 insufficient_storage saying the disk is nearly full", r.Status, r.Body)
	}
	if got := r.Header.Get("Retry-After"); got != "60" {
		t.Errorf("Retry-After = %q, want 60", got)
	}
	if strings.Contains(string(r.Body), cfg.DB.Path) {
		t.Errorf("the refusal %s shows the database path", r.Body)
	}
	if g := in.Do(t, http.MethodGet, "/api/emails/"+id, nil, auth...); g.Status != http.StatusOK {
		t.Errorf("GET under the reserve = %d %s, want 200: reads add no data", g.Status, g.Body)
	}
	ready := in.Do(t, http.MethodGet, "/readyz", nil)
	if ready.Status != http.StatusServiceUnavailable || !strings.Contains(string(ready.Body), "nearly full") {
		t.Errorf("/readyz under the reserve = %d %s, want 503 saying the disk is nearly full", ready.Status, ready.Body)
	}

	free.Store(300 << 20)
	apptest.Eventually(t, 10*time.Second, func() bool {
		r = in.Do(t, http.MethodPost, "/api/emails", apptest.NewEmail("after@example.com"), auth...)
		return r.Status == http.StatusAccepted
	}, func() string { return "POSTs still refused after space returned: " + string(r.Body) })
	if ready := in.Do(t, http.MethodGet, "/readyz", nil); ready.Status != http.StatusOK {
		t.Errorf("/readyz after space returned = %d %s, want 200", ready.Status, ready.Body)
	}
}
