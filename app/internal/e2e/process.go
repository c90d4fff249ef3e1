package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mailroom/mailroom/app/internal/apispec"
)

// Process is one `mailroom serve` subprocess.
type Process struct {
	// tb is the test that started the process; WaitReady's requests fail it when the
	// OpenAPI document does not describe them.
	tb      testing.TB
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed when Wait returned
	waitErr error
	mu      sync.Mutex
	stopped bool
}

// FreeAddr returns a 127.0.0.1 address with a port nobody listens on right now.
func FreeAddr(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("pick a free port: %v", err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		tb.Fatalf("pick a free port: %v", err)
	}
	return addr
}

// Env builds a subprocess environment from the test's, without any MAILROOM_*
// variable of the caller's (an unknown one would be a startup error), plus the test
// admin key (APIKey) and a rate limit no test reaches, plus vars given as KEY=VALUE,
// which win over those (the last of two equal names counts).
func Env(vars ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MAILROOM_") {
			env = append(env, kv)
		}
	}
	env = append(env, "MAILROOM_AUTH_API_KEYS="+APIKey,
		"MAILROOM_AUTH_RATE_LIMIT="+TestRateLimit, "MAILROOM_AUTH_RATE_BURST="+TestRateLimit)
	return append(env, vars...)
}

// SMTPEnv is Env for a binary that serves on addr with its database at dbPath and
// sends to the SMTP server at host:port without TLS, with the short timeouts and poll
// interval the tests want. vars come last, so they override any of these.
func SMTPEnv(dbPath, addr, host string, port int, vars ...string) []string {
	return Env(append([]string{
		"MAILROOM_DB_PATH=" + dbPath,
		"MAILROOM_HTTP_ADDR=" + addr,
		"MAILROOM_DELIVERY_TRANSPORT=smtp",
		"MAILROOM_SMTP_HOST=" + host,
		"MAILROOM_SMTP_PORT=" + strconv.Itoa(port),
		"MAILROOM_SMTP_TLS=none",
		"MAILROOM_SMTP_TIMEOUT=5s",
		"MAILROOM_OUTBOX_POLL_INTERVAL=100ms",
		"MAILROOM_HTTP_SHUTDOWN_TIMEOUT=10s",
		"MAILROOM_LOG_LEVEL=warn",
	}, vars...)...)
}

// Start runs `bin args...` with env, its stdout and stderr appended to logPath, and
// registers a cleanup that SIGKILLs it if it still runs when the test ends.
func Start(tb testing.TB, bin string, env []string, logPath string, args ...string) *Process {
	tb.Helper()
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		tb.Fatalf("open process log: %v", err)
	}
	fmt.Fprintf(logf, "=== %s %s\n", filepath.Base(bin), strings.Join(args, " "))
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logf, logf
	// Own process group, so a Ctrl-C on `go test` is not also a SIGINT here and the
	// test decides how the process ends.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		tb.Fatalf("start %s: %v", bin, err)
	}
	p := &Process{tb: tb, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	tb.Cleanup(func() { p.Kill() })
	return p
}

// Serve starts `bin serve` as Start does and waits until it answers /readyz at
// baseURL, failing the test (with the end of the log) if it is not ready within a
// minute.
func Serve(tb testing.TB, ctx context.Context, bin string, env []string, logPath, baseURL string) *Process {
	tb.Helper()
	p := Start(tb, bin, env, logPath, "serve")
	if err := p.WaitReady(ctx, baseURL, 60*time.Second); err != nil {
		tb.Fatalf("mailroom serve: %v; log:\n%s", err, LogTail(p.Log(), 4000))
	}
	return p
}

// Pid is the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Kill sends SIGKILL (kill -9) and waits until the process is gone. Calling it on an
// ended process is fine.
func (p *Process) Kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// Terminate sends SIGTERM and waits up to timeout for the process to exit, returning
// its exit code (-1 if a signal ended it). After the timeout it kills it and fails.
func (p *Process) Terminate(timeout time.Duration) (int, error) {
	select {
	case <-p.done:
	default:
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(timeout):
			p.Kill()
			return -1, fmt.Errorf("no exit %s after SIGTERM; killed", timeout)
		}
	}
	var ee *exec.ExitError
	if p.waitErr == nil {
		return 0, nil
	}
	if errors.As(p.waitErr, &ee) {
		return ee.ExitCode(), nil
	}
	return -1, p.waitErr
}

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Log returns what the process (and every earlier one sharing its log) wrote.
func (p *Process) Log() string {
	b, _ := os.ReadFile(p.logPath)
	return string(b)
}

// LogTail is the last n bytes of Log, for failure messages.
func LogTail(log string, n int) string {
	if len(log) <= n {
		return log
	}
	return "..." + log[len(log)-n:]
}

// HasDataRace reports whether a race-enabled binary reported a race in log.
func HasDataRace(log string) bool { return strings.Contains(log, "WARNING: DATA RACE") }

// WaitReady polls baseURL/readyz until it answers 200, the process exits, or timeout
// passes.
func (p *Process) WaitReady(ctx context.Context, baseURL string, timeout time.Duration) error {
	// No keep-alive: a connection left idle here would hold one of the server's
	// http.max_connections slots that a test may count on.
	client := apispec.Client(p.tb, &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}})
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	last := "no answer"
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+"/readyz", nil)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = "status " + strconv.Itoa(resp.StatusCode)
		} else {
			last = err.Error()
		}
		if p.Exited() {
			return fmt.Errorf("process exited before ready (%v); log:\n%s", p.waitErr, LogTail(p.Log(), 4000))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %s: %s; log:\n%s", timeout, last, LogTail(p.Log(), 4000))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}
