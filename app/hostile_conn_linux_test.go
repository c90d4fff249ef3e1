package app_test

// Hostile clients against the built binary on loopback, at the connection level:
// they open connections and hold them (idle, sending a header or a body a byte at a
// time, not reading the answer), or open more than the server takes. Each must be
// closed within its timeout, the connection cap must hold without starving the
// database or delivery, and SIGTERM must end the process, exit 0, in time.
// Linux only: it reads /proc/net/tcp and /proc/<pid>/fd.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailroom/mailroom/app/apptest"
	"github.com/mailroom/mailroom/app/internal/apispec"
	"github.com/mailroom/mailroom/app/internal/e2e"
)

// slack is how much later than its timeout a connection may be closed: the server's
// deadlines fire on time, but a race-enabled binary on two cores busy with the rest
// of the suite answers late. A connection still open after it is held for good:
// without the timeouts it would stay open until the test ends. (3 s was too little:
// "answers never read", whose write deadline restarts with each pipelined request
// until the socket buffers fill, took over 5 s in a clean-clone run under load.)
const slack = 8 * time.Second

func TestHostileConnectionsAreClosedWithinTheirTimeouts(t *testing.T) {
	t.Parallel()
	const (
		headerTimeout = time.Second
		readTimeout   = 4 * time.Second
		writeTimeout  = 2 * time.Second
		idleTimeout   = time.Second
		rateGrace     = time.Second
	)
	rig := e2e.NewRig(t, "",
		"MAILROOM_HTTP_READ_HEADER_TIMEOUT="+headerTimeout.String(),
		"MAILROOM_HTTP_READ_TIMEOUT="+readTimeout.String(),
		"MAILROOM_HTTP_WRITE_TIMEOUT="+writeTimeout.String(),
		"MAILROOM_HTTP_IDLE_TIMEOUT="+idleTimeout.String(),
		"MAILROOM_HTTP_MIN_BODY_RATE=1024",
		"MAILROOM_HTTP_MIN_BODY_RATE_GRACE="+rateGrace.String())
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	rig.Serve(t, ctx)
	addr := strings.TrimPrefix(rig.Base, "http://")

	cases := []struct {
		name   string
		within time.Duration
		// hold opens a connection, does its hostile thing, and returns once the
		// server has closed it, with what it saw; it fails the test if the server
		// has not closed it by deadline.
		hold func(t *testing.T, c net.Conn, deadline time.Time) string
	}{
		{"an idle keep-alive connection", idleTimeout, func(t *testing.T, c net.Conn, deadline time.Time) string {
			writeRaw(t, c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
			return readUntilClosed(t, c, deadline)
		}},
		{"a header that never ends", headerTimeout, func(t *testing.T, c net.Conn, deadline time.Time) string {
			writeRaw(t, c, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
			return readUntilClosed(t, c, deadline)
		}},
		{"a body trickled a byte at a time after its key was refused", rateGrace, func(t *testing.T, c net.Conn, deadline time.Time) string {
			writeRaw(t, c, "POST /api/emails HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n")
			return trickleUntilClosed(t, c, deadline, 1, 200*time.Millisecond)
		}},
		{"a body trickled a byte at a time with a valid key", rateGrace, func(t *testing.T, c net.Conn, deadline time.Time) string {
			writeRaw(t, c, "POST /api/emails HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+e2e.APIKey+
				"\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n")
			return trickleUntilClosed(t, c, deadline, 1, 200*time.Millisecond)
		}},
		{"a body faster than the minimum rate that takes longer than the read timeout", readTimeout, func(t *testing.T, c net.Conn, deadline time.Time) string {
			writeRaw(t, c, "POST /api/emails HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+e2e.APIKey+
				"\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n")
			return trickleUntilClosed(t, c, deadline, 4096, 250*time.Millisecond)
		}},
		{"answers never read", writeTimeout, func(t *testing.T, c net.Conn, deadline time.Time) string {
			// Pipelined requests for /metrics (tens of KB each) fill both socket
			// buffers; the server then blocks writing until its write timeout.
			writeRaw(t, c, strings.Repeat("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 400))
			waitServerSideClosed(t, c, deadline)
			return "closed while unread"
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := dialSmallBuffer(t, addr)
			defer c.Close()
			start := time.Now()
			deadline := start.Add(tc.within + slack)
			saw := tc.hold(t, c, deadline)
			t.Logf("closed by the server after %s (timeout %s): %s", time.Since(start).Round(time.Millisecond), tc.within, saw)
		})
	}
}

func TestTheConnectionCapHoldsWhileEmailsDeliverAndSIGTERMWithStuckClientsExitsZeroInTime(t *testing.T) {
	t.Parallel()
	const (
		maxConns        = 16
		backlogged      = 300 // with the cap off, enough to exhaust the file limit below
		fileLimit       = 256
		shutdownTimeout = 4 * time.Second
	)
	rig := e2e.NewRig(t, "",
		"MAILROOM_HTTP_MAX_CONNECTIONS="+strconv.Itoa(maxConns),
		"MAILROOM_HTTP_READ_HEADER_TIMEOUT=30s", "MAILROOM_HTTP_READ_TIMEOUT=30s",
		"MAILROOM_HTTP_IDLE_TIMEOUT=30s",
		"MAILROOM_HTTP_SHUTDOWN_TIMEOUT="+shutdownTimeout.String())
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	// A low open-file limit, as in the issue, so that connections past the cap
	// would exhaust it if they reached the process.
	p := e2e.Start(t, "/bin/sh", rig.Env, rig.LogPath, "-c", fmt.Sprintf(`ulimit -n %d && exec "$0" serve`, fileLimit), rig.Bin)
	if err := p.WaitReady(ctx, rig.Base, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	addr := strings.TrimPrefix(rig.Base, "http://")

	// One keep-alive client holds a slot to send through; the rest are taken by
	// connections that never send a byte.
	client := apispec.Client(t, &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1}})
	if st, _, err := e2e.Post(ctx, client, rig.Base, []byte(`{"to":["first@example.com"],"subject":"s","text":"t"}`)); err != nil || st != http.StatusAccepted {
		t.Fatalf("first POST: %d %v", st, err)
	}
	// The raw GET /healthz below, as apispec.CheckRaw holds its answers to the
	// OpenAPI document.
	healthz := httptest.NewRequest(http.MethodGet, "/healthz", nil)
	var held []net.Conn
	for range maxConns - 1 {
		c := dial(t, addr)
		// Answered, so accepted; then idle, keeping its slot.
		writeRaw(t, c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("/healthz below the cap: %v %v", resp, err)
		}
		apispec.CheckRaw(t, healthz, nil, resp)
		resp.Body.Close()
		held = append(held, c)
	}

	// A client past the cap connects (the kernel's backlog takes it) but gets no
	// answer while every slot is taken.
	probe := dial(t, addr)
	writeRaw(t, probe, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	_ = probe.SetReadDeadline(time.Now().Add(time.Second))
	if n, err := probe.Read(make([]byte, 1)); n > 0 || !isTimeout(err) {
		t.Fatalf("a connection past the cap was answered (%d bytes, %v)", n, err)
	}
	// Many more wait behind it, taking none of the server's descriptors.
	for range backlogged {
		held = append(held, dial(t, addr))
	}

	// Meanwhile the database and delivery work: emails are accepted over the
	// client's slot and delivered over SMTP.
	const emails = 20
	for i := range emails {
		body := fmt.Sprintf(`{"to":["r%d@example.com"],"subject":"at the cap","text":"t"}`, i)
		if st, raw, err := e2e.Post(ctx, client, rig.Base, []byte(body)); err != nil || st != http.StatusAccepted {
			t.Fatalf("POST %d at the cap: %d %s %v", i, st, raw, err)
		}
	}
	apptest.Eventually(t, 20*time.Second, func() bool { return rig.SMTP.Count() == emails+1 },
		func() string { return fmt.Sprintf("%d of %d emails delivered at the cap", rig.SMTP.Count(), emails+1) })
	if fds := openFiles(t, p.Pid()); fds > fileLimit/2 {
		t.Errorf("the server holds %d files at the cap of %d connections", fds, maxConns)
	}

	// A slot frees: the waiting client is answered.
	held[0].Close()
	_ = probe.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(probe), nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz once a slot freed: %v %v", resp, err)
	}
	apispec.CheckRaw(t, healthz, nil, resp)
	resp.Body.Close()
	probe.Close()

	// SIGTERM with every slot held by a stuck client (and one trickling a body)
	// ends the process within http.shutdown_timeout, exit code 0.
	trickler := dial(t, addr)
	writeRaw(t, trickler, "POST /api/emails HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{")
	start := time.Now()
	code, err := p.Terminate(shutdownTimeout + slack)
	if err != nil || code != 0 {
		t.Fatalf("SIGTERM with stuck clients: exit %d (%v) after %s; log:\n%s", code, err, time.Since(start), e2e.LogTail(p.Log(), 3000))
	}
	t.Logf("SIGTERM with %d stuck clients: exit 0 after %s (http.shutdown_timeout %s)", maxConns, time.Since(start).Round(time.Millisecond), shutdownTimeout)
	if log := p.Log(); strings.Contains(log, "too many open files") || e2e.HasDataRace(log) {
		t.Fatalf("the log reports file exhaustion or a race:\n%s", e2e.LogTail(log, 3000))
	}
	for _, c := range held {
		c.Close()
	}
	trickler.Close()
}

// dial opens a TCP connection to addr, closed when the test ends. What a test
// writes on it is not held to the OpenAPI document by apispec.Transport, no client
// being involved: the tests here are about connections (slots, timeouts, bodies
// that never end), and net/http's server cuts most of them before any route
// answers. An answer a route gives on one is checked with apispec.CheckRaw.
func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// dialSmallBuffer is dial with a 4 KB receive buffer, so that answers not read back
// up to the server quickly.
func dialSmallBuffer(t *testing.T, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	_ = c.(*net.TCPConn).SetReadBuffer(4096)
	t.Cleanup(func() { c.Close() })
	return c
}

func writeRaw(t *testing.T, c net.Conn, s string) {
	t.Helper()
	_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, s); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// readUntilClosed reads c until the server closes it, failing the test if it has
// not by deadline, and returns the first line it answered ("" for none).
func readUntilClosed(t *testing.T, c net.Conn, deadline time.Time) string {
	t.Helper()
	_ = c.SetReadDeadline(deadline)
	got, err := io.ReadAll(c)
	if isTimeout(err) {
		t.Fatalf("still open at the deadline; it answered %q", firstLine(got))
	}
	return firstLine(got)
}

// trickleUntilClosed writes chunk bytes of a body every interval until the server
// closes c, failing the test if it has not by deadline, and returns the first line
// of its answer.
func trickleUntilClosed(t *testing.T, c net.Conn, deadline time.Time, chunk int, interval time.Duration) string {
	t.Helper()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(interval)
		defer tick.Stop()
		data := []byte(strings.Repeat(" ", chunk))
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				_ = c.SetWriteDeadline(time.Now().Add(time.Second))
				if _, err := c.Write(data); err != nil {
					return
				}
			}
		}
	}()
	defer func() { close(stop); wg.Wait() }()
	return readUntilClosed(t, c, deadline)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func firstLine(b []byte) string {
	line, _, _ := strings.Cut(string(b), "\r\n")
	return line
}

// tcpStates reads the TCP sockets of /proc/net/tcp as "local remote" (hex, as the
// kernel writes them) to state (hex).
func tcpStates(t *testing.T) map[string]string {
	t.Helper()
	raw, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Fatalf("read /proc/net/tcp: %v", err)
	}
	states := map[string]string{}
	for _, line := range strings.Split(string(raw), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) > 3 {
			states[f[1]+" "+f[2]] = f[3]
		}
	}
	return states
}

// procAddr writes a 127.0.0.1 address as /proc/net/tcp does.
func procAddr(t *testing.T, addr string) string {
	t.Helper()
	ap, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	ip := ap.IP.To4()
	return fmt.Sprintf("%02X%02X%02X%02X:%04X", ip[3], ip[2], ip[1], ip[0], ap.Port)
}

// waitServerSideClosed waits until the server has closed its end of c (its socket is
// gone or no longer ESTABLISHED or CLOSE_WAIT), failing the test at deadline.
func waitServerSideClosed(t *testing.T, c net.Conn, deadline time.Time) {
	t.Helper()
	key := procAddr(t, c.RemoteAddr().String()) + " " + procAddr(t, c.LocalAddr().String())
	open := func() bool { s := tcpStates(t)[key]; return s == "01" || s == "08" }
	apptest.Eventually(t, time.Until(deadline), func() bool { return !open() },
		func() string { return "the server still holds the connection open" })
}

// openFiles counts the descriptors process pid holds.
func openFiles(t *testing.T, pid int) int {
	t.Helper()
	fds, err := os.ReadDir(filepath.Join("/proc", strconv.Itoa(pid), "fd"))
	if err != nil {
		t.Fatalf("list the server's files: %v", err)
	}
	return len(fds)
}
