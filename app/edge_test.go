package app_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mailroom/mailroom/app/internal/e2e"
)

// TestMadeUpMethodsAndRequestIDsLeaveMetricsMemoryAndLogsFlat is the edge's first
// attack, against the real binary and without a key: 5,000 requests with methods
// of the client's own making (some 20 KB long) and 200 refused requests carrying
// 20 KB request ids with a forged log field, in two rounds. Every made-up method is
// 501; /metrics does not grow by a series; the second round adds nothing to the
// process's memory; no id longer than 128 characters is echoed, and none reaches
// the log, where the refusals take a line a second at most.
func TestMadeUpMethodsAndRequestIDsLeaveMetricsMemoryAndLogsFlat(t *testing.T) {
	rig := e2e.NewRig(t, "")
	ctx := context.Background()
	proc := rig.Serve(t, ctx)
	client := e2e.NewHTTPClient(t)
	do := func(method, path string, header http.Header) (int, http.Header) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, method, rig.Base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range header {
			req.Header[k] = v
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%.20s %s: %v", method, path, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, resp.Header
	}
	for range 200 { // the series the requests below may touch exist before the measure
		do(http.MethodGet, "/healthz", nil)
		do(http.MethodGet, "/api/emails", http.Header{"Authorization": {"Bearer not-a-key"}})
	}
	metrics0 := metricsSize(t, client, rig.Base)
	log0 := len(proc.Log())

	forged := "x level=ERROR msg=forged " + strings.Repeat("a", 20<<10)
	var refusedFor time.Duration
	round := func() {
		for i := range 2500 {
			method := fmt.Sprintf("M%05d", i)
			if i%250 == 0 {
				method = strings.Repeat("M", 20<<10)
			}
			if status, _ := do(method, "/healthz", nil); status != http.StatusNotImplemented {
				t.Fatalf("method %.20s: status %d, want 501", method, status)
			}
		}
		refusing := time.Now()
		for range 100 {
			status, h := do(http.MethodGet, "/api/emails", http.Header{"X-Request-Id": {forged}, "Authorization": {"Bearer not-a-key"}})
			if status != http.StatusUnauthorized {
				t.Fatalf("a bad key: status %d, want 401", status)
			}
			if id := h.Get("X-Request-Id"); len(id) > 128 || strings.Contains(id, "forged") {
				t.Fatalf("the answer echoes the request id %.40q", id)
			}
		}
		refusedFor += time.Since(refusing)
	}
	// Two rounds: whatever the first leaves in memory (Go keeps freed memory a
	// while, and the race detector more), the second must not add to: nothing is
	// kept per request.
	round()
	rss1 := rssKB(t, proc.Pid())
	round()
	if rss2 := rssKB(t, proc.Pid()); rss2 > rss1+16<<10 {
		t.Errorf("RSS grew from %d to %d KB in the second round", rss1, rss2)
	}
	if metrics1 := metricsSize(t, client, rig.Base); metrics1 > metrics0+2048 {
		t.Errorf("/metrics grew from %d to %d bytes", metrics0, metrics1)
	}
	grown := proc.Log()[log0:]
	if strings.Contains(grown, "forged") || len(grown) > 256<<10 {
		t.Errorf("the log grew by %d bytes, or holds the forged id: %.300s", len(grown), grown)
	}
	// Refusals are logged a line a second at most, each saying how many it stands for.
	if lines, most := strings.Count(grown, "API key refused"), int(refusedFor/time.Second)+4; lines > most {
		t.Errorf("%d \"API key refused\" lines for 200 refusals in %s, want at most %d", lines, refusedFor.Round(time.Millisecond), most)
	}
}

// metricsSize is the size of base's /metrics answer.
func metricsSize(t *testing.T, client *http.Client, base string) int {
	t.Helper()
	resp, err := client.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return len(b)
}

// rssKB is process pid's resident set size in KB (VmRSS in /proc/<pid>/status).
func rssKB(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no VmRSS")
	return 0
}
