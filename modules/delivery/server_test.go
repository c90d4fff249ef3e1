package delivery_test

// What an outage or a misconfiguration of the mail server does: nothing to the mail.
// Delivery pauses every lane, probes the server, and resumes when it answers; no
// email loses an attempt meanwhile, however long it lasts.

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mailroom/mailroom/app"
	"github.com/mailroom/mailroom/app/apptest"
	"github.com/mailroom/mailroom/platform/config"
	"github.com/mailroom/mailroom/platform/testkit/smtptest"
)

// readyz GETs /readyz and returns its status and body.
func readyz(t *testing.T, in *apptest.Instance) (int, map[string]string) {
	t.Helper()
	r := in.Do(t, http.MethodGet, "/readyz", nil)
	var body map[string]string
	r.JSON(t, &body)
	return r.Status, body
}

// metric returns the text of the /metrics line starting with series, or "".
func metric(t *testing.T, in *apptest.Instance, series string) string {
	t.Helper()
	r := in.Do(t, http.MethodGet, "/metrics", nil)
	for _, line := range strings.Split(string(r.Body), "\n") {
		if strings.HasPrefix(line, series+" ") {
			return line
		}
	}
	return ""
}

func TestAnSMTPOutageLongerThanTheRetryScheduleUnderLoadKillsNoMail(t *testing.T) {
	const maxAttempts = 3 // tries 50 ms and 100 ms apart: the whole schedule is 150 ms
	in, srv := start(t, func(c *config.Config) {
		c.Retry.MaxAttempts = maxAttempts
		c.Retry.InitialInterval = 50 * time.Millisecond
		c.Retry.MaxInterval = 100 * time.Millisecond
	})
	var sent []string
	send := func(to string) { sent = append(sent, in.Send(t, apptest.NewEmail(to))) }
	for i := range 10 {
		send(fmt.Sprintf("before%d@example.com", i))
	}
	srv.WaitForCount(t, 10, wait)

	// Down: new connections refused, open ones cut at their next MAIL FROM.
	if err := srv.RefuseConnections(true); err != nil {
		t.Fatal(err)
	}
	srv.DropAt(smtptest.StepMail, -1)
	down := time.Now()
	const outage = 3 * time.Second // twenty times the retry schedule
	apptest.Eventually(t, wait, func() bool {
		send(fmt.Sprintf("during%d@example.com", len(sent)))
		return time.Since(down) > outage
	}, func() string { return "the outage to last" })
	status, body := readyz(t, in)
	if status != http.StatusOK || !strings.Contains(body["smtp"], "paused since") || !strings.Contains(body["smtp"], "outage") {
		t.Errorf("/readyz during the outage: %d %v; want 200 with smtp paused by an outage", status, body)
	}
	if up := metric(t, in, "mailroom_smtp_up"); up != "mailroom_smtp_up 0" {
		t.Errorf("metrics during the outage: %q, want mailroom_smtp_up 0", up)
	}
	if paused := metric(t, in, `mailroom_smtp_paused{key="",kind="outage"}`); paused == "" {
		t.Errorf("metrics during the outage name no paused kind")
	}
	delivered := srv.Count()

	// Up again: everything accepted is delivered once, nothing is dead.
	srv.DropAt(smtptest.StepMail, 0)
	if err := srv.RefuseConnections(false); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		send(fmt.Sprintf("after%d@example.com", i))
	}
	srv.WaitForCount(t, len(sent), 60*time.Second)
	t.Logf("%d emails; %d accepted during an outage of %v, %d delivered by then", len(sent), len(sent)-20, outage, delivered)
	for _, id := range sent {
		e := waitFor(t, in, id, "sent", func(e email) bool { return e.Status == "sent" || e.Status == "dead" })
		if e.Status != "sent" || e.Attempts != 1 {
			t.Errorf("email %s: %s after %d attempts, want sent on its first attempt: an outage burns none", id, e.Status, e.Attempts)
		}
	}
	if l := deadLetters(t, in); len(l) != 0 {
		t.Errorf("%d dead letters after an outage, want 0: %+v", len(l), l[0])
	}
	for _, m := range srv.Messages() {
		if n := len(srv.MessagesTo(m.To[0])); n != 1 {
			t.Errorf("%s got %d copies", m.To[0], n)
		}
	}
	status, body = readyz(t, in)
	if status != http.StatusOK || body["smtp"] != "ok" || metric(t, in, "mailroom_smtp_up") != "mailroom_smtp_up 1" {
		t.Errorf("after the outage: /readyz %d %v, %q; want smtp ok and up", status, body, metric(t, in, "mailroom_smtp_up"))
	}
}

func TestStartTLSNotOfferedBurnsNoAttemptSaysWhatToFixAndARestartWithTheRightSettingDeliversEverything(t *testing.T) {
	srv := smtptest.Start(t) // no TLS: STARTTLS is not offered
	cfg := apptest.Config(t)
	apptest.UseSMTP(cfg, srv)
	cfg.SMTP.TLS = "starttls"
	cfg.Retry.MaxAttempts = 1 // one burned attempt would dead-letter the email
	log, logs := apptest.NewLogs()
	in := apptest.Start(t, cfg, app.WithLogger(log))

	var ids []string
	for i := range 5 {
		ids = append(ids, in.Send(t, apptest.NewEmail(fmt.Sprintf("tls%d@example.com", i))))
	}
	var body map[string]string
	var status int
	apptest.Eventually(t, wait, func() bool {
		status, body = readyz(t, in)
		return strings.Contains(body["smtp"], "smtp.tls")
	}, func() string { return fmt.Sprintf("/readyz %d %v: want smtp naming smtp.tls", status, body) })
	if status != http.StatusOK || !strings.Contains(body["smtp"], "STARTTLS") {
		t.Errorf("/readyz %d %v: want 200, smtp saying STARTTLS is not offered", status, body)
	}
	if paused := metric(t, in, `mailroom_smtp_paused{key="smtp.tls",kind="configuration"}`); paused == "" {
		t.Errorf("metrics do not name the configuration key")
	}
	for _, id := range ids {
		if e := getEmail(t, in, id); e.Status != "queued" || e.Attempts != 0 {
			t.Errorf("email %s: %s after %d attempts, timeline %+v; want queued, untried", id, e.Status, e.Attempts, e.Events)
		}
	}
	var errorLines []apptest.LogLine
	for _, l := range logs.Lines() {
		if l.Level >= slog.LevelError {
			errorLines = append(errorLines, l)
		}
	}
	if len(errorLines) != 1 || errorLines[0].Attrs["key"] != "smtp.tls" {
		t.Errorf("logged %d errors %+v; want one, naming smtp.tls", len(errorLines), errorLines)
	}
	in.Stop(t)
	rcpts := 0
	for i := range ids {
		rcpts += srv.Attempts(fmt.Sprintf("tls%d@example.com", i))
	}
	if srv.Count() != 0 || rcpts != 0 || len(srv.Hellos()) == 0 {
		t.Fatalf("%d messages, %d RCPTs and %d sessions with STARTTLS required and not offered; want nothing tried, the server probed",
			srv.Count(), rcpts, len(srv.Hellos()))
	}

	// max_attempts is 1: had a try been burned, the email would be dead now.
	cfg.SMTP.TLS = "none"
	in = apptest.Start(t, cfg)
	for _, id := range ids {
		if e := in.WaitForStatus(t, id, "sent", wait); e.Attempts != 1 {
			t.Errorf("email %s sent after %d attempts, want 1", id, e.Attempts)
		}
	}
	if srv.Count() != len(ids) {
		t.Errorf("%d messages after the restart, want %d", srv.Count(), len(ids))
	}
}

func TestWrongCredentialsPauseDeliveryUntilTheServerAcceptsThem(t *testing.T) {
	srv := smtptest.Start(t, smtptest.WithAuth("mailroom", "right"))
	cfg := apptest.Config(t)
	apptest.UseSMTP(cfg, srv)
	cfg.SMTP.Username = "mailroom"
	cfg.SMTP.Password = "wrong"
	in := apptest.Start(t, cfg)
	id := in.Send(t, apptest.NewEmail("creds@example.com"))
	var body map[string]string
	apptest.Eventually(t, wait, func() bool {
		_, body = readyz(t, in)
		return strings.Contains(body["smtp"], "smtp.password")
	}, func() string { return fmt.Sprintf("/readyz %v: want smtp naming smtp.password", body) })
	if e := getEmail(t, in, id); e.Status != "queued" || e.Attempts != 0 {
		t.Errorf("email %s after %d attempts, want queued and untried", e.Status, e.Attempts)
	}
}

func TestTheEHLONameIsSMTPHeloName(t *testing.T) {
	in, srv := start(t, func(c *config.Config) { c.SMTP.HeloName = "mail.example.org" })
	id := in.Send(t, apptest.NewEmail("helo@example.com"))
	in.WaitForStatus(t, id, "sent", wait)
	for _, h := range srv.Hellos() {
		if h != "mail.example.org" {
			t.Errorf("EHLO %q, want smtp.helo_name", h)
		}
	}
}
