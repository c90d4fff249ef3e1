package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"slices"
	"strings"
	"testing"

	"github.com/mailroom/mailroom/app/apptest"
	"github.com/mailroom/mailroom/platform/testkit/smtptest"
)

// mailroom runs the command in-process as the binary would, and returns its exit
// code, stdout and stderr.
func mailroom(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errs bytes.Buffer
	code = run(args, &out, &errs)
	return code, out.String(), errs.String()
}

var keyLine = regexp.MustCompile(`^mr_[A-Za-z0-9_-]{43}\n$`)

type listedKey struct {
	ID        string  `json:"id"`
	Name      string  `json:"name"`
	Scope     string  `json:"scope"`
	Prefix    string  `json:"prefix"`
	RevokedAt *string `json:"revoked_at"`
}

func TestKeysCreateListAndRevoke(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "mailroom.db")
	if code, _, errs := mailroom(t, "migrate", "--db", db); code != 0 {
		t.Fatalf("migrate: exit %d, %s", code, errs)
	}

	code, out, errs := mailroom(t, "keys", "create", "--name", "ci deploys", "--scope", "send", "--db", db)
	if code != 0 || !keyLine.MatchString(out) {
		t.Fatalf("keys create: exit %d, stdout %q, stderr %q; want 0 and the key alone on stdout", code, out, errs)
	}
	key := strings.TrimSpace(out)
	if !strings.Contains(errs, "Keep the key") || strings.Contains(errs, key) {
		t.Errorf("keys create stderr %q: want advice to keep the key, and not the key again", errs)
	}
	if !strings.HasPrefix(errs, "mailroom: database "+db+"\n") {
		t.Errorf("keys create stderr %q: want it to start with the database it used", errs)
	}

	code, out, errs = mailroom(t, "keys", "list", "--db", db)
	if code != 0 {
		t.Fatalf("keys list: exit %d, %s", code, errs)
	}
	if strings.Contains(out, key[len("mr_")+8:]) {
		t.Errorf("keys list shows the secret part of the key:\n%s", out)
	}
	var keys []listedKey
	if err := json.Unmarshal([]byte(out), &keys); err != nil {
		t.Fatalf("keys list is not JSON: %v\n%s", err, out)
	}
	if len(keys) != 1 || keys[0].Name != "ci deploys" || keys[0].Scope != "send" || keys[0].Prefix != key[:11] || keys[0].RevokedAt != nil {
		t.Fatalf("keys list = %+v, want the one send key with prefix %s", keys, key[:11])
	}

	code, out, errs = mailroom(t, "keys", "revoke", "--db", db, keys[0].ID)
	if code != 0 || !strings.Contains(out, "revoked "+keys[0].ID) {
		t.Fatalf("keys revoke: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	_, out, _ = mailroom(t, "keys", "list", "--db", db)
	keys = nil
	if err := json.Unmarshal([]byte(out), &keys); err != nil || len(keys) != 1 || keys[0].RevokedAt == nil {
		t.Errorf("keys list after revoke = %s, want the key with revoked_at", out)
	}

	refused := []struct {
		name string
		args []string
		want string
	}{
		{"create without a scope", []string{"keys", "create", "--name", "x", "--db", db}, "scope"},
		{"create with an unknown scope", []string{"keys", "create", "--name", "x", "--scope", "root", "--db", db}, "scope"},
		{"create without a name", []string{"keys", "create", "--scope", "admin", "--db", db}, "name"},
		{"revoke of an unknown key", []string{"keys", "revoke", "--db", db, "no-such-key"}, "not found"},
		{"revoke without an id", []string{"keys", "revoke", "--db", db}, "usage"},
		{"an unknown subcommand", []string{"keys", "rotate", "--db", db}, "usage"},
		{"no subcommand", []string{"keys"}, "usage"},
	}
	for _, tt := range refused {
		t.Run(tt.name+" fails with a reason", func(t *testing.T) {
			code, out, errs := mailroom(t, tt.args...)
			if code != 1 || out != "" || !strings.Contains(errs, tt.want) {
				t.Errorf("exit %d, stdout %q, stderr %q; want 1, nothing on stdout, and %q on stderr", code, out, errs, tt.want)
			}
		})
	}
}

// TestKeysCreateFromDomainRestrictsTheKeysSenders: --from-domain and --from-address
// (each repeatable) make a key that a running server on the same database lets send
// only from those senders, and keys list shows them.
func TestKeysCreateFromDomainRestrictsTheKeysSenders(t *testing.T) {
	t.Parallel()
	in := apptest.Start(t, apptest.Config(t))
	db := in.Config.DB.Path

	code, out, errs := mailroom(t, "keys", "create", "--name", "billing", "--scope", "send",
		"--from-domain", "Example.com", "--from-domain", "billing.example", "--from-address", "alerts@ops.example", "--db", db)
	if code != 0 || !keyLine.MatchString(out) {
		t.Fatalf("keys create --from-domain: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	if !strings.Contains(errs, "sends only from example.com, billing.example, alerts@ops.example") {
		t.Errorf("keys create stderr %q: want the senders the key may use", errs)
	}
	key := strings.TrimSpace(out)

	_, out, _ = mailroom(t, "keys", "list", "--db", db)
	var keys []struct {
		Name        string   `json:"name"`
		AllowedFrom []string `json:"allowed_from"`
	}
	if err := json.Unmarshal([]byte(out), &keys); err != nil || len(keys) != 1 ||
		!slices.Equal(keys[0].AllowedFrom, []string{"example.com", "billing.example", "alerts@ops.example"}) {
		t.Fatalf("keys list = %s (%v), want the key with its three senders", out, err)
	}

	for from, want := range map[string]int{
		"Team <team@example.com>": http.StatusAccepted,
		"alerts@ops.example":      http.StatusAccepted,
		"team@billing.example":    http.StatusAccepted,
		"team@mail.example.com":   http.StatusForbidden,
		"Boss <boss@ops.example>": http.StatusForbidden,
		"team@elsewhere.example":  http.StatusForbidden,
	} {
		email := apptest.NewEmail("a@example.net")
		email["from"] = from
		r := in.Do(t, http.MethodPost, "/api/emails", email, apptest.Bearer(key)...)
		if r.Status != want || (want == http.StatusForbidden && !strings.Contains(string(r.Body), `"field":"from"`)) {
			t.Errorf("from %q with the CLI's key: %d %s, want %d (403 naming from)", from, r.Status, r.Body, want)
		}
	}

	refused := []struct {
		name string
		args []string
		want string
	}{
		{"an address given to --from-domain", []string{"--from-domain", "team@example.com"}, "--from-address"},
		{"a domain given to --from-address", []string{"--from-address", "example.com"}, "--from-domain"},
		{"a wildcard domain", []string{"--from-domain", "*.example.com"}, "allowed_from[0]"},
	}
	for _, tt := range refused {
		t.Run(tt.name+" fails with a reason", func(t *testing.T) {
			args := append([]string{"keys", "create", "--name", "x", "--scope", "send", "--db", db}, tt.args...)
			code, out, errs := mailroom(t, args...)
			if code == 0 || out != "" || !strings.Contains(errs, tt.want) {
				t.Errorf("exit %d, stdout %q, stderr %q; want non-zero, nothing on stdout, and %q on stderr", code, out, errs, tt.want)
			}
		})
	}
}

// TestKeysCommandsActOnARunningServer: a key made by the CLI works on the next
// request to a server on the same database, and stops working on the next request
// after the CLI revokes it.
func TestKeysCommandsActOnARunningServer(t *testing.T) {
	t.Parallel()
	in := apptest.Start(t, apptest.Config(t))
	db := in.Config.DB.Path

	code, out, errs := mailroom(t, "keys", "create", "--name", "ops", "--scope", "admin", "--db", db)
	if code != 0 {
		t.Fatalf("keys create: exit %d, %s", code, errs)
	}
	key := strings.TrimSpace(out)
	if r := in.Do(t, http.MethodGet, "/api/dead-letters", nil, apptest.Bearer(key)...); r.Status != http.StatusOK {
		t.Fatalf("the new admin key: %d %s", r.Status, r.Body)
	}
	var keys []listedKey
	_, out, _ = mailroom(t, "keys", "list", "--db", db)
	if err := json.Unmarshal([]byte(out), &keys); err != nil || len(keys) != 1 {
		t.Fatalf("keys list = %s, want one key", out)
	}
	if code, _, errs := mailroom(t, "keys", "revoke", "--db", db, keys[0].ID); code != 0 {
		t.Fatalf("keys revoke: exit %d, %s", code, errs)
	}
	if r := in.Do(t, http.MethodGet, "/api/dead-letters", nil, apptest.Bearer(key)...); r.Status != http.StatusUnauthorized {
		t.Errorf("the revoked key: %d %s, want 401", r.Status, r.Body)
	}
}

// TestAdminCommandsRefuseADatabaseThatDoesNotExist: keys and dlt act on a server's
// database, so with none at db.path they say where they looked and make nothing
// there (they used to make an empty database, on which a new key works nowhere).
func TestAdminCommandsRefuseADatabaseThatDoesNotExist(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir) // for the default db.path, ./data/mailroom.db
	missing := filepath.Join(dir, "elsewhere", "mailroom.db")
	commands := [][]string{
		{"keys", "create", "--name", "ops", "--scope", "admin"},
		{"keys", "list"},
		{"keys", "revoke", "key-1"},
		{"dlt", "list"},
		{"dlt", "replay", "letter-1"},
		{"dlt", "replay", "--all"},
		{"dlt", "discard", "letter-1"},
		{"suppressions", "list"},
		{"suppressions", "add", "bob@example.com"},
		{"suppressions", "remove", "bob@example.com"},
	}
	for _, args := range commands {
		for _, where := range []struct{ flag, path string }{
			{"", filepath.Join(dir, "data", "mailroom.db")},
			{missing, missing},
		} {
			args := slices.Clone(args)
			if where.flag != "" {
				// Flags go before the one positional argument some commands take.
				args = slices.Insert(args, 2, "--db", where.flag)
			}
			t.Run(strings.Join(args, " "), func(t *testing.T) {
				code, out, errs := mailroom(t, args...)
				want := "mailroom " + args[0] + ": no database at " + where.path +
					" (db.path); start mailroom serve there first, or pass --db\n"
				if code != 1 || out != "" || errs != want {
					t.Errorf("exit %d, stdout %q, stderr %q; want 1, nothing on stdout and\n%q", code, out, errs, want)
				}
				for _, made := range []string{where.path, filepath.Dir(where.path)} {
					if _, err := os.Stat(made); err == nil {
						t.Errorf("%s was made", made)
					}
				}
			})
		}
	}
}

// TestAdminCommandsSayWhichDatabaseTheyUse: the path is printed absolute, so an
// operator who ran the command from the wrong folder sees it.
func TestAdminCommandsSayWhichDatabaseTheyUse(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	if code, _, errs := mailroom(t, "migrate", "--db", filepath.Join("state", "mr.db")); code != 0 {
		t.Fatalf("migrate: exit %d, %s", code, errs)
	}
	for _, args := range [][]string{{"keys", "list"}, {"dlt", "list"}, {"suppressions", "list"}} {
		code, out, errs := mailroom(t, append(args, "--db", filepath.Join("state", "mr.db"))...)
		want := "mailroom: database " + filepath.Join(dir, "state", "mr.db") + "\n"
		if code != 0 || strings.TrimSpace(out) != "[]" || errs != want {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want 0, [] and %q", args, code, out, errs, want)
		}
	}
}

func TestSuppressionsAddListAndRemove(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "mailroom.db")
	if code, _, errs := mailroom(t, "migrate", "--db", db); code != 0 {
		t.Fatalf("migrate: exit %d, %s", code, errs)
	}
	if code, out, errs := mailroom(t, "suppressions", "add", "--db", db, "--reason", "asked us to stop", "Bob@Example.com"); code != 0 || out != "suppressed bob@example.com\n" {
		t.Fatalf("suppressions add: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	if code, out, _ := mailroom(t, "suppressions", "add", "--db", db, "bob@example.com"); code != 0 || !strings.Contains(out, "suppressed already (asked us to stop") {
		t.Errorf("adding it again: exit %d, %q; want it kept as it was", code, out)
	}
	if code, out, errs := mailroom(t, "suppressions", "add", "--db", db, "not an address"); code != 1 || out != "" || !strings.Contains(errs, "address") {
		t.Errorf("adding a non-address: exit %d, stdout %q, stderr %q; want 1 naming the address", code, out, errs)
	}
	code, out, errs := mailroom(t, "suppressions", "list", "--db", db, "--address", "example.com")
	var listed []struct{ Address, Reason, Source string }
	if err := json.Unmarshal([]byte(out), &listed); code != 0 || err != nil || len(listed) != 1 ||
		listed[0].Address != "bob@example.com" || listed[0].Reason != "asked us to stop" || listed[0].Source != "operator" {
		t.Fatalf("suppressions list: exit %d, %q %v, stderr %q", code, out, err, errs)
	}
	if code, out, errs := mailroom(t, "suppressions", "remove", "--db", db, "bob@example.com"); code != 0 || !strings.Contains(out, "removed bob@example.com") {
		t.Errorf("suppressions remove: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	if code, _, errs := mailroom(t, "suppressions", "remove", "--db", db, "bob@example.com"); code != 1 || !strings.Contains(errs, "not found") {
		t.Errorf("removing it again: exit %d, stderr %q; want 1, not found", code, errs)
	}
}

func TestSMTPCheckSaysInOneLineWhatWorksOrWhatToFix(t *testing.T) {
	plain := smtptest.Start(t)
	tls := smtptest.Start(t, smtptest.WithTLS())
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, downPort, _ := net.SplitHostPort(l.Addr().String())
	l.Close() // nobody listens there now
	auth := smtptest.Start(t, smtptest.WithAuth("mailroom", "right"))
	tests := []struct {
		name string
		env  []string
		code int
		line string
	}{
		{"a plain server, smtp.tls none", []string{"MAILROOM_SMTP_TLS=none", fmt.Sprintf("MAILROOM_SMTP_PORT=%d", plain.Port())},
			0, fmt.Sprintf("mailroom smtp-check: ok: 127.0.0.1:%d answers, as configured; delivery.transport is capture, so serve sends it nothing\n", plain.Port())},
		{"STARTTLS required and not offered", []string{"MAILROOM_SMTP_TLS=starttls", fmt.Sprintf("MAILROOM_SMTP_PORT=%d", plain.Port())},
			1, fmt.Sprintf("mailroom smtp-check: smtp.tls: 127.0.0.1:%d does not offer STARTTLS", plain.Port())},
		{"a certificate this machine does not trust", []string{"MAILROOM_SMTP_TLS=starttls", fmt.Sprintf("MAILROOM_SMTP_PORT=%d", tls.Port())},
			1, "mailroom smtp-check: smtp.tls: "},
		{"wrong credentials", []string{"MAILROOM_SMTP_TLS=none", fmt.Sprintf("MAILROOM_SMTP_PORT=%d", auth.Port()),
			"MAILROOM_SMTP_USERNAME=mailroom", "MAILROOM_SMTP_PASSWORD=wrong"}, 1, "mailroom smtp-check: smtp.password: "},
		{"nobody listening", []string{"MAILROOM_SMTP_TLS=none", "MAILROOM_SMTP_PORT=" + downPort}, 1, "mailroom smtp-check: outage: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, kv := range tt.env {
				k, v, _ := strings.Cut(kv, "=")
				t.Setenv(k, v)
			}
			code, out, errs := mailroom(t, "smtp-check")
			got := out + errs
			if code != tt.code || !strings.HasPrefix(got, tt.line) || strings.Count(got, "\n") != 1 {
				t.Errorf("exit %d, output %q; want exit %d and one line starting %q", code, got, tt.code, tt.line)
			}
		})
	}
}

// TestKafkaGrowPartitionsSaysWhichBrokersItCannotReach: with no Kafka at
// kafka.brokers the command fails in one line naming every broker, and prints no
// topic. (It runs without Kafka; the Kafka suite grows real topics.)
func TestKafkaGrowPartitionsSaysWhichBrokersItCannotReach(t *testing.T) {
	var down []string
	for range 2 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		down = append(down, l.Addr().String())
		l.Close() // nobody listens there now
	}
	t.Setenv("MAILROOM_KAFKA_BROKERS", strings.Join(down, ","))
	code, out, errs := mailroom(t, "kafka", "grow-partitions")
	if code != 1 || out != "" || strings.Count(errs, "\n") != 1 {
		t.Fatalf("exit %d, stdout %q, stderr %q; want 1, nothing on stdout and one line", code, out, errs)
	}
	want := "mailroom kafka grow-partitions: cannot reach Kafka at " + strings.Join(down, ", ") + ": "
	if !strings.HasPrefix(errs, want) {
		t.Errorf("stderr %q, want it to start %q", errs, want)
	}
}

func TestServeRefusesAnAddressReachableFromOtherHostsWithNoKey(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "mailroom.db")
	code, out, errs := mailroom(t, "serve", "--db", db, "--http-addr", "0.0.0.0:0")
	if code != 1 || !strings.Contains(errs, "http.addr 0.0.0.0:0") || !strings.Contains(errs, "mailroom keys create") {
		t.Errorf("serve: exit %d, stdout %q, stderr %q; want 1 and a reason naming http.addr and the way out", code, out, errs)
	}
	if regexp.MustCompile(`mr_[A-Za-z0-9_-]{43}`).MatchString(errs + out) {
		t.Errorf("a refused serve printed a key:\n%s%s", out, errs)
	}
}

// TestAnUnknownFlagIsOneLineNamingIt: a mistyped flag is refused in one line naming
// it and where to look, not with the flag list of every command.
func TestAnUnknownFlagIsOneLineNamingIt(t *testing.T) {
	t.Chdir(t.TempDir()) // nothing here may run, but if it did, not in the repository
	cases := []struct {
		args []string
		want []string
	}{
		{[]string{"serve", "--brokr", "kafka"}, []string{"-brokr", "see mailroom serve -h"}},
		{[]string{"migrate", "--dbb", "x.db"}, []string{"-dbb", "see mailroom migrate -h"}},
		{[]string{"dlt", "list", "--all"}, []string{"-all", "see mailroom dlt list -h"}},
		{[]string{"keys", "list", "--scope", "admin"}, []string{"-scope", "see mailroom keys list -h"}},
		{[]string{"version", "--db", "x.db"}, []string{"-db", "see mailroom version -h"}},
		{[]string{"serve", "--db"}, []string{"-db", "argument"}},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			code, out, errs := mailroom(t, c.args...)
			if code == 0 || out != "" {
				t.Errorf("exit %d, stdout %q; want a non-zero exit and nothing on stdout", code, out)
			}
			if strings.Count(errs, "\n") != 1 || !strings.HasSuffix(errs, "\n") {
				t.Errorf("stderr %q: want one line", errs)
			}
			for _, w := range c.want {
				if !strings.Contains(errs, w) {
					t.Errorf("stderr %q does not say %q", errs, w)
				}
			}
		})
	}
}

// TestHelpListsOnlyTheFlagsOfTheCommand: -h of a command shows the flags it takes and
// none of another command's.
func TestHelpListsOnlyTheFlagsOfTheCommand(t *testing.T) {
	cases := []struct {
		args      []string
		want, not []string
	}{
		{[]string{"serve", "-h"}, []string{"usage: mailroom serve", "-config", "-broker", "-http-addr", "-db"}, []string{"-all", "-name", "-scope", "-limit", "-reason"}},
		{[]string{"migrate", "--help"}, []string{"usage: mailroom migrate", "-db"}, []string{"-all", "-name"}},
		{[]string{"dlt", "list", "-h"}, []string{"-limit", "-reason", "-since", "-until", "-db"}, []string{"-all", "-name"}},
		{[]string{"dlt", "replay", "-h"}, []string{"-all", "-reason", "ID"}, []string{"-limit", "-name"}},
		{[]string{"keys", "create", "-h"}, []string{"-name", "-scope", "-db"}, []string{"-all", "-limit"}},
		{[]string{"keys", "revoke", "-h"}, []string{"KEY_ID", "-db"}, []string{"-name", "-all"}},
		{[]string{"version", "-h"}, []string{"usage: mailroom version"}, []string{"-db", "-config"}},
		{[]string{"keys", "-h"}, []string{"create", "list", "revoke"}, []string{"-all"}},
		{[]string{"kafka", "-h"}, []string{"grow-partitions"}, []string{"-all"}},
		{[]string{"kafka", "grow-partitions", "-h"}, []string{"usage: mailroom kafka grow-partitions", "-config"}, []string{"-all", "-name"}},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			code, out, errs := mailroom(t, c.args...)
			if code != 0 || errs != "" {
				t.Errorf("exit %d, stderr %q; want 0 and the help on stdout", code, errs)
			}
			for _, w := range c.want {
				if !strings.Contains(out, w) {
					t.Errorf("help does not show %q:\n%s", w, out)
				}
			}
			for _, n := range c.not {
				if strings.Contains(out, n+" ") || strings.Contains(out, n+"\n") {
					t.Errorf("help shows %q, a flag the command does not take:\n%s", n, out)
				}
			}
		})
	}
}

// TestCommandsRefuseStrayArguments: a word where no argument belongs is refused before
// anything runs. It used to end flag parsing, so `migrate extra --db Y` migrated
// ./data/mailroom.db and ignored --db.
func TestCommandsRefuseStrayArguments(t *testing.T) {
	t.Chdir(t.TempDir()) // where ./data/mailroom.db would be made
	cases := []struct {
		args []string
		want string // the argument named in the error
	}{
		{[]string{"migrate", "extra", "--db", "DB"}, `"extra"`},
		{[]string{"serve", "extra", "--db", "DB", "--http-addr", "127.0.0.1:0"}, `"extra"`},
		{[]string{"version", "extra"}, `"extra"`},
		{[]string{"dlt", "list", "extra", "--db", "DB"}, `"extra"`},
		{[]string{"dlt", "discard", "--db", "DB", "id-1", "id-2"}, `"id-2"`},
		{[]string{"dlt", "discard", "id-1", "--db", "DB"}, `"--db"`},
		{[]string{"keys", "list", "extra", "--db", "DB"}, `"extra"`},
		{[]string{"keys", "create", "--name", "n", "--scope", "admin", "extra", "--db", "DB"}, `"extra"`},
		{[]string{"keys", "revoke", "--db", "DB", "key-1", "key-2"}, `"key-2"`},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			db := filepath.Join(t.TempDir(), "y.db")
			args := slices.Clone(c.args)
			for i := range args {
				if args[i] == "DB" {
					args[i] = db
				}
			}
			code, out, errs := mailroom(t, args...)
			if code == 0 || out != "" {
				t.Errorf("exit %d, stdout %q; want a non-zero exit and nothing on stdout", code, out)
			}
			if strings.Count(errs, "\n") != 1 || !strings.Contains(errs, "unexpected argument "+c.want) {
				t.Errorf("stderr %q: want one line naming the argument %s", errs, c.want)
			}
			for _, made := range []string{db, filepath.Join("data", "mailroom.db")} {
				if _, err := os.Stat(made); err == nil {
					t.Errorf("%s was made: the command ran", made)
				}
			}
		})
	}
}

// TestDLTReplayRefusesWhatItWouldIgnore: replay takes an ID or --all with a filter,
// not both, and never ignores the filter.
func TestDLTReplayRefusesWhatItWouldIgnore(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "mailroom.db")
	for _, args := range [][]string{
		{"dlt", "replay", "--all", "--db", db, "id-1"},
		{"dlt", "replay", "--reason", "550", "--db", db, "id-1"},
		{"dlt", "replay", "--db", db},
	} {
		code, out, errs := mailroom(t, args...)
		if code != 1 || out != "" || strings.Count(errs, "\n") != 1 {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want 1 and a one-line reason", args, code, out, errs)
		}
	}
}

func TestVersionLineSaysWhatTheBinaryWasBuiltFrom(t *testing.T) {
	vcs := func(kv ...string) []debug.BuildSetting {
		var out []debug.BuildSetting
		for i := 0; i+1 < len(kv); i += 2 {
			out = append(out, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return out
	}
	const rev = "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678"
	cases := []struct {
		name string
		set  buildStamp
		info *debug.BuildInfo
		want string
	}{
		{"no build information", buildStamp{version: "dev"}, nil, "mailroom dev"},
		{"a build outside version control", buildStamp{version: "dev"}, &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "mailroom dev"},
		{"a modified checkout", buildStamp{version: "dev"}, &debug.BuildInfo{Main: debug.Module{Version: "(devel)"},
			Settings: vcs("vcs", "git", "vcs.revision", rev, "vcs.time", "2026-11-25T14:00:00Z", "vcs.modified", "true")},
			"mailroom dev (a1b2c3d 2026-11-25T14:00:00Z, modified)"},
		{"a clean checkout with a pseudo-version", buildStamp{version: "dev"}, &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261125140000-a1b2c3d4e5f6"},
			Settings: vcs("vcs.revision", rev, "vcs.time", "2026-11-25T14:00:00Z", "vcs.modified", "false")},
			"mailroom dev (a1b2c3d 2026-11-25T14:00:00Z)"},
		{"a dirty pseudo-version", buildStamp{version: "dev"}, &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261125140000-a1b2c3d4e5f6+dirty"},
			Settings: vcs("vcs.revision", rev, "vcs.modified", "true")},
			"mailroom dev (a1b2c3d, modified)"},
		{"a release installed with go install", buildStamp{version: "dev"}, &debug.BuildInfo{Main: debug.Module{Version: "v1.4.0"}}, "mailroom v1.4.0"},
		{"a tagged checkout", buildStamp{version: "dev"}, &debug.BuildInfo{Main: debug.Module{Version: "v1.4.0"},
			Settings: vcs("vcs.revision", rev, "vcs.time", "2026-11-25T14:00:00Z")},
			"mailroom v1.4.0 (a1b2c3d 2026-11-25T14:00:00Z)"},
		{"a version set with -ldflags wins", buildStamp{version: "1.5.0-rc1"}, &debug.BuildInfo{Main: debug.Module{Version: "v1.4.0"},
			Settings: vcs("vcs.revision", rev)}, "mailroom 1.5.0-rc1 (a1b2c3d)"},
		{"a build by make without VCS stamping", buildStamp{version: "v1.6.0", commit: rev, date: "2026-11-25T14:00:00Z"},
			&debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "mailroom v1.6.0 (a1b2c3d 2026-11-25T14:00:00Z)"},
		{"a build by make without build information", buildStamp{version: "v1.6.0", commit: "a1b2c3d", date: "2026-11-25T14:00:00Z"},
			nil, "mailroom v1.6.0 (a1b2c3d 2026-11-25T14:00:00Z)"},
		{"a build by make from a tree without git", buildStamp{version: "dev", date: "2026-12-01T09:30:00Z"},
			&debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "mailroom dev (2026-12-01T09:30:00Z)"},
		{"what -ldflags set wins over what the toolchain recorded", buildStamp{version: "v1.6.0", commit: "0123456789ab", date: "2026-11-26T08:00:00Z"},
			&debug.BuildInfo{Main: debug.Module{Version: "(devel)"},
				Settings: vcs("vcs.revision", rev, "vcs.time", "2026-11-25T14:00:00Z", "vcs.modified", "true")},
			"mailroom v1.6.0 (0123456 2026-11-26T08:00:00Z, modified)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := versionLine(c.set, c.info, c.info != nil); got != c.want {
				t.Errorf("versionLine = %q, want %q", got, c.want)
			}
		})
	}
	code, out, _ := mailroom(t, "version")
	if code != 0 || !strings.HasPrefix(out, "mailroom ") || strings.Count(out, "\n") != 1 {
		t.Errorf("mailroom version: exit %d, stdout %q; want one line starting with mailroom", code, out)
	}
}
