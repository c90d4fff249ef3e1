package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mailroom/mailroom/platform/testkit/wait"
)

// made is the binary `make build` made for this test process, once, in a directory
// TestMain removes.
var made struct {
	once      sync.Once
	dir, path string
	err       error
	// git is what git said of the checkout just before make ran (see stampOf), so
	// that a commit made while the tests run does not change what is expected.
	git stamp
}

// stamp is what mailroom version should say of a make build of this checkout.
type stamp struct {
	inGit            bool
	version, rev, at string
}

func TestMain(m *testing.M) {
	code := m.Run()
	if made.dir != "" {
		_ = os.RemoveAll(made.dir)
	}
	os.Exit(code)
}

// buildWithMake runs `make build` as a user would, with BIN in a temporary
// directory, and returns the binary's path. It adds -buildvcs=false to GOFLAGS, so
// that what the binary says of its commit and date comes from the Makefile's
// -ldflags alone, and the test's -race, so that the packages this test binary
// compiled are linked rather than compiled again.
func buildWithMake(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("make"); err != nil {
		t.Fatal("make is not installed: the repository's README and CI run everything through make")
	}
	made.once.Do(func() {
		if made.dir, made.err = os.MkdirTemp("", "mailroom-make-"); made.err != nil {
			return
		}
		made.path = filepath.Join(made.dir, "bin", "mailroom")
		made.git = stampOf(t)
		goflags := strings.TrimSpace(os.Getenv("GOFLAGS") + " -buildvcs=false")
		if raceEnabled {
			goflags += " -race"
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "make", "--no-print-directory", "build", "BIN="+made.path, "GO="+goTool())
		cmd.Env = append(os.Environ(), "GOFLAGS="+goflags)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			made.err = fmt.Errorf("make build: %v\n%s", err, out.Bytes())
		}
	})
	if made.err != nil {
		t.Fatal(made.err)
	}
	return made.path
}

// goTool is the go command on PATH, else the one of the toolchain that built this
// test.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

// gitOutput is what git prints for args in this checkout, trimmed, and whether
// git answered (false outside a git checkout, as in a source archive).
func gitOutput(t *testing.T, env []string, args ...string) (string, bool) {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.Output()
	return strings.TrimSpace(string(out)), err == nil
}

// TestMakeBuildStampsTheVersionCommitAndDateWithoutVCSStamping: the binary of make
// build says its version, commit and commit time although the toolchain recorded
// none of them (-buildvcs=false): the Makefile's -ldflags did.
func TestMakeBuildStampsTheVersionCommitAndDateWithoutVCSStamping(t *testing.T) {
	t.Parallel()
	bin := buildWithMake(t)
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatalf("%s version: %v", bin, err)
	}
	line := string(out)
	want := made.git
	if !want.inGit {
		// A source archive: no commit to know, the build's own time.
		if !regexp.MustCompile(`^mailroom \S+ \(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\)\n$`).MatchString(line) {
			t.Errorf("version outside git = %q, want the version and the build's time", line)
		}
		return
	}
	if w := fmt.Sprintf("mailroom %s (%s %s)\n", want.version, want.rev, want.at); line != w {
		t.Errorf("version = %q, want %q", line, w)
	}
}

// stampOf is what the Makefile's rules make of this checkout: git describe --tags
// --dirty, else the first line of VERSION, else dev; the commit; its time in UTC.
func stampOf(t *testing.T) stamp {
	rev, inGit := gitOutput(t, nil, "rev-parse", "--short=7", "HEAD")
	if !inGit {
		return stamp{}
	}
	at, _ := gitOutput(t, []string{"TZ=UTC"}, "log", "-1", "--format=%cd", "--date=format-local:%Y-%m-%dT%H:%M:%SZ")
	v, tagged := gitOutput(t, nil, "describe", "--tags", "--dirty")
	if !tagged {
		v = "dev"
		if b, err := os.ReadFile("VERSION"); err == nil {
			v, _, _ = strings.Cut(strings.TrimSpace(string(b)), "\n")
		}
	}
	return stamp{inGit: true, version: v, rev: rev, at: at}
}

// TestUnderSystemdServeWritesTheFirstAdminKeyToAFileNotTheJournal runs the binary
// as the systemd unit does: only MAILROOM_CONFIG names its config (the file's
// http.addr and db.path are the ones used), and INVOCATION_ID says systemd started
// it, so the first admin key goes to first-admin-key beside the database, mode
// 0600, and stderr (the journal) names the file but never holds the key.
func TestUnderSystemdServeWritesTheFirstAdminKeyToAFileNotTheJournal(t *testing.T) {
	t.Parallel()
	bin := buildWithMake(t)
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	addr := freeAddr(t)
	cfgPath := filepath.Join(dir, "config.yaml")
	cfgBody := fmt.Sprintf("http:\n  addr: %s\ndb:\n  path: %s\n", addr, filepath.Join(state, "mailroom.db"))
	if err := os.WriteFile(cfgPath, []byte(cfgBody), 0o600); err != nil {
		t.Fatal(err)
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MAILROOM_") && !strings.HasPrefix(kv, "INVOCATION_ID=") && !strings.HasPrefix(kv, "JOURNAL_STREAM=") {
			env = append(env, kv)
		}
	}
	env = append(env, "MAILROOM_CONFIG="+cfgPath, "INVOCATION_ID=5c1b2e0f6a7d4c3b9e8f0a1b2c3d4e5f")
	journal, err := os.Create(filepath.Join(dir, "journal"))
	if err != nil {
		t.Fatal(err)
	}
	defer journal.Close()
	cmd := exec.Command(bin, "serve")
	cmd.Env, cmd.Stdout, cmd.Stderr = env, journal, journal
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	readJournal := func() string { b, _ := os.ReadFile(journal.Name()); return string(b) }

	healthy := func() bool {
		r, err := http.Get("http://" + addr + "/healthz")
		if err != nil {
			return false
		}
		r.Body.Close()
		return r.StatusCode == http.StatusOK
	}
	wait.Until(t, 90*time.Second, 100*time.Millisecond, healthy, func() string { return "serve is not healthy; journal:\n" + readJournal() })

	file := filepath.Join(state, firstKeyFileName)
	info, err := os.Stat(file)
	if err != nil {
		t.Fatalf("the first admin key's file: %v; journal:\n%s", err, readJournal())
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("%s has mode %#o, want 0600", file, perm)
	}
	body, _ := os.ReadFile(file)
	if !keyLine.Match(body) {
		t.Fatalf("%s holds %q, want one key on one line", file, body)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/api/keys", nil)
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(body)))
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusOK {
		t.Errorf("the key from the file on GET /api/keys: %d, want 200", r.StatusCode)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		exited <- err // for the cleanup
		if err != nil {
			t.Errorf("serve after SIGTERM: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("serve did not stop within 60s of SIGTERM")
	}
	logged := readJournal()
	if regexp.MustCompile(`mr_[A-Za-z0-9_-]{43}`).MatchString(logged) {
		t.Errorf("the journal holds a key:\n%s", logged)
	}
	if !strings.Contains(logged, file) || !strings.Contains(logged, "0600") {
		t.Errorf("the journal does not name %s and its mode:\n%s", file, logged)
	}
}

// TestServeUnderSystemdRefusesToOverwriteAFirstKeyFile: with no key and a
// first-admin-key file already beside the database, serve under systemd stops and
// names the file rather than replace whatever it holds.
func TestServeUnderSystemdRefusesToOverwriteAFirstKeyFile(t *testing.T) {
	t.Setenv("INVOCATION_ID", "5c1b2e0f6a7d4c3b9e8f0a1b2c3d4e5f")
	dir := t.TempDir()
	file := filepath.Join(dir, firstKeyFileName)
	if err := os.WriteFile(file, []byte("kept\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errs := mailroom(t, "serve", "--db", filepath.Join(dir, "mailroom.db"), "--http-addr", "127.0.0.1:0")
	if code != 1 || !strings.Contains(errs, file) || !strings.Contains(errs, "never overwritten") {
		t.Errorf("serve: exit %d, stderr %q; want 1 and an error naming %s", code, errs, file)
	}
	if b, _ := os.ReadFile(file); string(b) != "kept\n" {
		t.Errorf("%s now holds %q", file, b)
	}
}

func TestTheFirstKeyFileIsBesideTheDatabaseOnlyUnderSystemd(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	env := func(kv ...string) func(string) string {
		return func(name string) string {
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i] == name {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	cases := []struct {
		name   string
		db     string
		getenv func(string) string
		want   string
	}{
		{"on a terminal, none: the key is printed", "/var/lib/mailroom/mailroom.db", env(), ""},
		{"a unit (INVOCATION_ID)", "/var/lib/mailroom/mailroom.db", env("INVOCATION_ID", "abc"), "/var/lib/mailroom/first-admin-key"},
		{"stderr to the journal (JOURNAL_STREAM)", "/var/lib/mailroom/data/mailroom.db", env("JOURNAL_STREAM", "8:12345"), "/var/lib/mailroom/data/first-admin-key"},
		{"a relative db.path, made absolute", "data/mailroom.db", env("INVOCATION_ID", "abc"), filepath.Join(wd, "data", "first-admin-key")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := firstKeyFile(c.db, c.getenv)
			if err != nil || got != c.want {
				t.Errorf("firstKeyFile(%q) = %q, %v; want %q", c.db, got, err, c.want)
			}
		})
	}
}

// freeAddr is a 127.0.0.1 address with a port nobody listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
