package app_test

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailroom/mailroom/app"
	"github.com/mailroom/mailroom/app/apptest"
	"github.com/mailroom/mailroom/platform/config"
	"github.com/mailroom/mailroom/platform/logging"
	"github.com/mailroom/mailroom/platform/testkit/smtptest"
)

// watermillAtDebug are the only lines Watermill may write at debug level: the
// router's own start and stop, once a process. Anything else it says (a handler
// added or started, a message received or acknowledged) is trace.
var watermillAtDebug = []string{"Running router handlers", "Closing router", "Router closed",
	"Waiting for messages", "All messages processed", "Pub/Sub closed"}

// TestOneEmailsSMTPConversationReadsStepByStepAtDebugWithoutWatermillsChatter sends
// one email to a recipient the server takes, one it refuses and one it defers, and
// reads the debug lines of its first try: one per step, each naming the email.
func TestOneEmailsSMTPConversationReadsStepByStepAtDebugWithoutWatermillsChatter(t *testing.T) {
	t.Parallel()
	srv := smtptest.Start(t)
	srv.FailRecipient("refused@example.com", 550, -1)
	srv.FailRecipient("later@example.com", 451, -1)
	cfg := apptest.Config(t)
	apptest.UseSMTP(cfg, srv)
	log, logs := apptest.NewLogs()
	in := apptest.Start(t, cfg, app.WithLogger(log))

	email := apptest.NewEmail("ok@example.com")
	email["to"] = []string{"ok@example.com", "refused@example.com", "later@example.com"}
	id := in.Send(t, email)
	tried := func() bool {
		return slices.ContainsFunc(logs.With("email tried; deferred recipients are tried again later"), func(l apptest.LogLine) bool {
			return l.Attrs[logging.KeyEmailID] == id
		})
	}
	apptest.Eventually(t, 10*time.Second, tried, func() string { return "the first try of " + id + " was never logged" })
	in.Stop(t)

	var steps []string
	for _, l := range logs.Lines() {
		if l.Attrs["component"] != "smtp" || l.Attrs[logging.KeyEmailID] != id || l.Attrs["attempt"] != "1" {
			continue
		}
		if l.Level != slog.LevelDebug || l.Attrs[logging.KeyCorrelationID] == "" {
			t.Errorf("%q is at %v with correlation id %q, want debug with one", l.Message, l.Level, l.Attrs[logging.KeyCorrelationID])
		}
		step := l.Message
		if r := l.Attrs["rcpt"]; r != "" {
			step += " " + r + " " + l.Attrs["code"] + " " + l.Attrs["enhanced"] + " " + l.Attrs["verdict"]
		}
		if l.Message == "smtp data" {
			step += " " + l.Attrs["code"] + " " + l.Attrs["verdict"]
		}
		steps = append(steps, step)
	}
	want := []string{
		"smtp connected",
		"smtp tls",
		"smtp mail from",
		"smtp rcpt ok@example.com 250 2.0.0 accepted",
		"smtp rcpt refused@example.com 550 5.1.1 bounced",
		"smtp rcpt later@example.com 451 4.3.0 deferred",
		"smtp data 250 delivered",
		"smtp connection kept",
	}
	if !slices.Equal(steps, want) {
		t.Errorf("the first try's SMTP lines:\n  %s\nwant:\n  %s", strings.Join(steps, "\n  "), strings.Join(want, "\n  "))
	}

	var chatter, trace []string
	for _, l := range logs.Lines() {
		switch {
		case l.Attrs["component"] != "watermill":
		case l.Level < slog.LevelDebug:
			trace = append(trace, l.Message)
		case !slices.Contains(watermillAtDebug, l.Message):
			chatter = append(chatter, fmt.Sprintf("%v %s", l.Level, l.Message))
		}
	}
	if len(chatter) > 0 {
		t.Errorf("Watermill wrote %d lines at debug or above that are its internals:\n  %s", len(chatter), strings.Join(chatter, "\n  "))
	}
	// They are there, a level down: the check above looked at the right lines.
	for _, msg := range []string{"Adding handler", "Starting handler", "Message acked"} {
		if !slices.Contains(trace, msg) {
			t.Errorf("no %q from Watermill at trace level", msg)
		}
	}
}

// TestTheServingLineNamesTheConsoleAndWhereMailGoes reads the line each role logs
// once it serves: the console's URL where the role serves the API, where mail
// goes where it delivers.
func TestTheServingLineNamesTheConsoleAndWhereMailGoes(t *testing.T) {
	t.Parallel()
	srv := smtptest.Start(t)
	cases := []struct {
		name    string
		cfg     func(t *testing.T) *config.Config
		console bool
		mail    func(cfg *config.Config) string
	}{
		{"all modules, sending through SMTP", func(t *testing.T) *config.Config {
			cfg := apptest.Config(t)
			apptest.UseSMTP(cfg, srv)
			return cfg
		}, true, func(*config.Config) string { return fmt.Sprintf("smtp %s:%d none", srv.Host(), srv.Port()) }},
		{"all modules, capturing", func(t *testing.T) *config.Config { return apptest.Config(t) }, true,
			func(*config.Config) string {
				return "capture: rendered, not sent (set delivery.transport: smtp to send)"
			}},
		{"the api role", func(t *testing.T) *config.Config { return roleOnAbsentKafka(t, config.ModulesAPI) }, true, nil},
		{"the delivery role", func(t *testing.T) *config.Config {
			cfg := roleOnAbsentKafka(t, config.ModulesDelivery)
			apptest.UseSMTP(cfg, srv)
			return cfg
		}, false, func(*config.Config) string { return fmt.Sprintf("smtp %s:%d none", srv.Host(), srv.Port()) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := tc.cfg(t)
			log, logs := apptest.NewLogs()
			in := apptest.Start(t, cfg, app.WithLogger(log))
			apptest.Eventually(t, 10*time.Second, func() bool { return len(logs.With("mailroom serving")) > 0 },
				func() string { return "no serving line" })
			line := logs.With("mailroom serving")[0]
			if line.Level != slog.LevelInfo || line.Attrs["addr"] != in.App.Addr() || line.Attrs["modules"] != cfg.Modules {
				t.Errorf("serving line %v %v, want info with addr %s and modules %s", line.Level, line.Attrs, in.App.Addr(), cfg.Modules)
			}
			console, hasConsole := line.Attrs["console"]
			switch {
			case tc.console && console != "http://"+in.App.Addr()+"/":
				t.Errorf("console=%q, want http://%s/", console, in.App.Addr())
			case !tc.console && hasConsole:
				t.Errorf("console=%q on a role that serves no console", console)
			}
			mail, hasMail := line.Attrs["mail"]
			switch {
			case tc.mail != nil && mail != tc.mail(cfg):
				t.Errorf("mail=%q, want %q", mail, tc.mail(cfg))
			case tc.mail == nil && hasMail:
				t.Errorf("mail=%q on a role that sends no mail", mail)
			}
		})
	}
}
