package config_test

import (
	"strings"
	"testing"

	"github.com/mailroom/mailroom/platform/config"
)

// TestMailroomConfigNamesTheFileWhenNoFlagDoes: the systemd unit and the container
// name the config file with MAILROOM_CONFIG; --config (Sources.File) wins over it,
// and the MAILROOM_* variables that set keys still win over the file it names.
func TestMailroomConfigNamesTheFileWhenNoFlagDoes(t *testing.T) {
	fromEnv := writeFile(t, "http:\n  addr: 127.0.0.1:1001\nsmtp:\n  host: env-file.example\n")
	fromFlag := writeFile(t, "http:\n  addr: 127.0.0.1:1003\n")
	cases := []struct {
		name     string
		file     string
		environ  []string
		wantAddr string
		wantHost string
	}{
		{name: "MAILROOM_CONFIG alone names the file", environ: []string{"MAILROOM_CONFIG=" + fromEnv},
			wantAddr: "127.0.0.1:1001", wantHost: "env-file.example"},
		{name: "the flag wins over MAILROOM_CONFIG", file: fromFlag, environ: []string{"MAILROOM_CONFIG=" + fromEnv},
			wantAddr: "127.0.0.1:1003", wantHost: "127.0.0.1"},
		{name: "a key's variable wins over the file MAILROOM_CONFIG names",
			environ:  []string{"MAILROOM_CONFIG=" + fromEnv, "MAILROOM_HTTP_ADDR=127.0.0.1:1002"},
			wantAddr: "127.0.0.1:1002", wantHost: "env-file.example"},
		{name: "an empty MAILROOM_CONFIG names no file", environ: []string{"MAILROOM_CONFIG="},
			wantAddr: "127.0.0.1:8080", wantHost: "127.0.0.1"},
		{name: "of two MAILROOM_CONFIG the last counts", environ: []string{"MAILROOM_CONFIG=/nonexistent/config.yaml", "MAILROOM_CONFIG=" + fromEnv},
			wantAddr: "127.0.0.1:1001", wantHost: "env-file.example"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := mustLoad(t, config.Sources{File: c.file, Environ: c.environ})
			if cfg.HTTP.Addr != c.wantAddr || cfg.SMTP.Host != c.wantHost {
				t.Errorf("http.addr %q, smtp.host %q; want %q, %q", cfg.HTTP.Addr, cfg.SMTP.Host, c.wantAddr, c.wantHost)
			}
		})
	}
}

// TestAFileNamedByMailroomConfigThatFailsSaysWhoNamedIt: an operator reading the
// journal of a unit that sets MAILROOM_CONFIG sees the path and where it came from.
func TestAFileNamedByMailroomConfigThatFailsSaysWhoNamedIt(t *testing.T) {
	bad := writeFile(t, "http:\n  adress: 127.0.0.1:1\n")
	cases := []struct {
		name string
		path string
		want []string
	}{
		{"a file that does not exist", "/nonexistent/mailroom/config.yaml", []string{"/nonexistent/mailroom/config.yaml", "MAILROOM_CONFIG"}},
		{"a file with an unknown key", bad, []string{bad, "http.adress", "MAILROOM_CONFIG"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := loadErr(t, config.Sources{Environ: []string{"MAILROOM_CONFIG=" + c.path}})
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
		})
	}
	// The same file given by the flag is the user's own word: no mention of the variable.
	if err := loadErr(t, config.Sources{File: bad}); strings.Contains(err.Error(), "MAILROOM_CONFIG") {
		t.Errorf("an error about the --config file names MAILROOM_CONFIG: %v", err)
	}
}

// TestNoKeyIsNamedLikeTheConfigFileVariable: MAILROOM_CONFIG names the file, so no
// key may be the one its variable would set (a top-level key "config").
func TestNoKeyIsNamedLikeTheConfigFileVariable(t *testing.T) {
	for key := range config.Defaults() {
		if config.EnvName(key) == config.ConfigFileEnv {
			t.Errorf("key %q is set by %s, which names the config file", key, config.ConfigFileEnv)
		}
	}
}
