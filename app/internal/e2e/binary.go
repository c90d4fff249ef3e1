// Package e2e helps app's black-box tests run Mailroom as a subprocess: it builds the
// binary once per test run, starts and kills it, and talks to it over HTTP without
// calling t.Fatal, so load goroutines can use it.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"
)

// MainPackage is the import path of the mailroom command.
const MainPackage = "github.com/mailroom/mailroom"

var build struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// Build builds the mailroom binary once per test process (with -race when the tests
// run with it) into a temp dir that RemoveBuilds deletes, and returns its path.
func Build(tb testing.TB) string {
	tb.Helper()
	build.once.Do(func() {
		build.dir, build.err = os.MkdirTemp("", "mailroom-e2e-")
		if build.err != nil {
			return
		}
		build.path = filepath.Join(build.dir, "tmp", "mailroom")
		args := []string{"build", "-o", build.path}
		if raceEnabled {
			args = append(args, "-race")
		}
		args = append(args, MainPackage)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, GoTool(), args...)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		start := time.Now()
		if err := cmd.Run(); err != nil {
			build.err = fmt.Errorf("go %v: %v\n%s", args, err, out.Bytes())
			return
		}
		tb.Logf("built %s in %s (race=%v)", build.path, time.Since(start).Round(time.Millisecond), raceEnabled)
	})
	if build.err != nil {
		tb.Fatalf("build mailroom: %v", build.err)
	}
	return build.path
}

// RemoveBuilds deletes what Build made; call it from TestMain after m.Run.
func RemoveBuilds() {
	if build.dir != "" {
		_ = os.RemoveAll(build.dir)
	}
}

// GoTool is the go command to build and list with: the one on PATH, else the one
// of the toolchain that built this test.
func GoTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}
