package httpserver_test

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mailroom/mailroom/platform/httpserver"
)

// serveLimited serves e on a Listener of maxConns on loopback until the test ends.
func serveLimited(t *testing.T, e *echo.Echo, maxConns int) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httpserver.NewServer(e, httpserver.Limits{ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second, IdleTimeout: 10 * time.Second})
	go func() { _ = srv.Serve(httpserver.Listener(l, maxConns)) }()
	t.Cleanup(func() { _ = srv.Close() })
	return l.Addr().String()
}

func dialT(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// get sends GET /ok on c and reads the answer within d, returning its status or 0.
func get(t *testing.T, c net.Conn, d time.Duration) int {
	t.Helper()
	if _, err := io.WriteString(c, "GET /ok HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(d))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestAListenerTakesNoConnectionOverItsCapUntilOneCloses(t *testing.T) {
	e := httpserver.New(httpserver.Config{MaxBodyBytes: 1 << 20}, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	e.GET("/ok", func(c echo.Context) error { return c.String(http.StatusOK, "ok") })
	addr := serveLimited(t, e, 2)
	a, b := dialT(t, addr), dialT(t, addr)
	if get(t, a, 5*time.Second) != http.StatusOK || get(t, b, 5*time.Second) != http.StatusOK {
		t.Fatal("the first two connections were not answered")
	}
	third := dialT(t, addr)
	if st := get(t, third, 300*time.Millisecond); st != 0 {
		t.Fatalf("a third connection over a cap of 2 was answered %d", st)
	}
	a.Close()
	_ = third.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(third), nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("the third connection once a slot freed: %v %v", resp, err)
	}
}

func TestABodyUnderTheMinimumRateIsCutAndOneAboveItIsRead(t *testing.T) {
	e := httpserver.New(httpserver.Config{MaxBodyBytes: 1 << 20, MinBodyRate: 1000, MinBodyRateGrace: 200 * time.Millisecond},
		slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	e.POST("/echo", func(c echo.Context) error {
		var v map[string]string
		if err := httpserver.DecodeJSON(c, &v); err != nil {
			return err
		}
		return c.JSON(http.StatusOK, v)
	})
	addr := serveLimited(t, e, 10)

	// Whole and at once: read, answered, the connection kept.
	fast := dialT(t, addr)
	body := `{"a":"b"}`
	io.WriteString(fast, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 9\r\n\r\n"+body)
	_ = fast.SetReadDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(fast)
	resp, err := http.ReadResponse(r, nil)
	if err != nil || resp.StatusCode != http.StatusOK || resp.Close {
		t.Fatalf("a whole body: %v %v", resp, err)
	}
	resp.Body.Close()

	// One byte and then nothing: cut after the grace, 400, connection closed.
	slow := dialT(t, addr)
	start := time.Now()
	io.WriteString(slow, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 9\r\n\r\n{")
	_ = slow.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(slow)
	if err != nil {
		t.Fatalf("a stalled body was not cut within 5s: %v", err)
	}
	if !strings.HasPrefix(string(got), "HTTP/1.1 400") || !strings.Contains(string(got), "too slowly") {
		t.Fatalf("a stalled body was answered %q", got)
	}
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Fatalf("a stalled body was cut after %s, before its grace", d)
	}
}
