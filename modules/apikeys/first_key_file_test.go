package apikeys_test

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/mailroom/mailroom/app"
	"github.com/mailroom/mailroom/app/apptest"
	"github.com/mailroom/mailroom/platform/logging"
)

// TestWithAFirstKeyFileTheKeyGoesToAFileOfMode0600ThatTheMessagesName: under
// systemd (main passes app.WithFirstKeyFile) the first admin key is written to a
// new file only its owner can read, and stderr (the journal) and the log say where
// it is without holding it.
func TestWithAFirstKeyFileTheKeyGoesToAFileOfMode0600ThatTheMessagesName(t *testing.T) {
	t.Parallel()
	cfg := firstStart(t)
	file := filepath.Join(filepath.Dir(cfg.DB.Path), "first-admin-key")
	log, logs := apptest.NewLogs()
	var notices bytes.Buffer
	in := apptest.Start(t, cfg, app.WithLogger(log), app.WithNotices(&notices), app.WithFirstKeyFile(file))

	info, err := os.Stat(file)
	if err != nil {
		t.Fatalf("the key file: %v; notices:\n%s", err, notices.String())
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("the key file's mode is %#o, want 0600", perm)
	}
	body, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	written := string(body)
	if !keyLineShape.MatchString(written) {
		t.Fatalf("the key file holds %q, want one key on one line", written)
	}
	written = strings.TrimSpace(written)
	if r := in.Do(t, http.MethodGet, "/api/keys", nil, apptest.Bearer(written)...); r.Status != http.StatusOK {
		t.Fatalf("the written key on an admin route: %d %s", r.Status, r.Body)
	}

	if !strings.Contains(notices.String(), file) || !strings.Contains(notices.String(), "0600") {
		t.Errorf("the notice does not name the file %s and its mode:\n%s", file, notices.String())
	}
	if keyShape.MatchString(notices.String()) {
		t.Errorf("the notice holds a key:\n%s", notices.String())
	}
	var named bool
	for _, line := range logs.Lines() {
		for _, v := range line.Attrs {
			if keyShape.MatchString(v) {
				t.Errorf("the log holds a key: %+v", line)
			}
		}
		if keyShape.MatchString(line.Message) {
			t.Errorf("the log holds a key: %+v", line)
		}
		if line.Attrs["file"] == file {
			named = true
		}
	}
	if !named {
		t.Errorf("no log line names the file %s: %+v", file, logs.Lines())
	}

	// A restart with the key stored leaves the file as it is and says nothing.
	in.Stop(t)
	notices.Reset()
	in = apptest.Start(t, cfg, app.WithNotices(&notices), app.WithFirstKeyFile(file))
	if notices.Len() != 0 {
		t.Errorf("a second start said:\n%s", notices.String())
	}
	if again, _ := os.ReadFile(file); string(again) != string(body) {
		t.Errorf("a second start changed the key file to %q", again)
	}

	// With the key revoked, the file is still there: it is not overwritten, and the
	// server does not start (nor make a key nobody can read) until it is removed.
	var page struct{ Items []key }
	in.Do(t, http.MethodGet, "/api/keys", nil, apptest.Bearer(written)...).JSON(t, &page)
	if len(page.Items) != 1 {
		t.Fatalf("stored keys %+v, want the one admin key", page.Items)
	}
	if r := in.Do(t, http.MethodDelete, "/api/keys/"+page.Items[0].ID, nil, apptest.Bearer(written)...); r.Status != http.StatusOK {
		t.Fatalf("revoke: %d %s", r.Status, r.Body)
	}
	in.Stop(t)
	notices.Reset()
	a, err := app.New(cfg, app.WithLogger(logging.Discard()), app.WithNotices(&notices), app.WithFirstKeyFile(file))
	if err == nil {
		a.Close()
		t.Fatalf("started with no usable key and the old key file in place; notices:\n%s", notices.String())
	}
	if !strings.Contains(err.Error(), file) || !strings.Contains(err.Error(), "never overwritten") || !strings.Contains(err.Error(), "mailroom keys create") {
		t.Errorf("the refusal %q does not name the file, say it is kept and give the way out", err)
	}
	if again, _ := os.ReadFile(file); string(again) != string(body) {
		t.Errorf("a refused start changed the key file to %q", again)
	}
	if keyShape.MatchString(notices.String()) {
		t.Errorf("a refused start printed a key:\n%s", notices.String())
	}

	// Once the file is removed, the next start writes a new key to a new file.
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	in = apptest.Start(t, cfg, app.WithNotices(&notices), app.WithFirstKeyFile(file))
	fresh, err := os.ReadFile(file)
	if err != nil || !keyLineShape.Match(fresh) || string(fresh) == string(body) {
		t.Fatalf("after removing the file: %q, %v; want a new key", fresh, err)
	}
	if r := in.Do(t, http.MethodGet, "/api/keys", nil, apptest.Bearer(strings.TrimSpace(string(fresh)))...); r.Status != http.StatusOK {
		t.Errorf("the new key: %d %s", r.Status, r.Body)
	}
}

// keyLineShape is a key file's content: one key and a newline.
var keyLineShape = regexp.MustCompile(`^mr_[A-Za-z0-9_-]{43}\n$`)
