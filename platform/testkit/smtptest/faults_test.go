package smtptest_test

import (
	"crypto/tls"
	"fmt"
	"net/smtp"
	"slices"
	"strings"
	"testing"

	"github.com/mailroom/mailroom/platform/testkit/smtptest"
)

// session runs a whole session on a new plain connection (greeting, EHLO, one
// transaction to b@example.com, QUIT) and returns the first error, naming its step.
func session(srv *smtptest.Server) error {
	c, err := smtp.Dial(srv.Addr())
	if err != nil {
		return fmt.Errorf("greeting: %w", err)
	}
	defer c.Close()
	if err := c.Hello("client.test"); err != nil {
		return fmt.Errorf("hello: %w", err)
	}
	if err := transact(c, "a@example.com", []string{"b@example.com"}, body); err != nil {
		return err
	}
	return c.Quit()
}

func TestFailAtRepliesWithTheScriptedCodeAtEachStepUntilRemoved(t *testing.T) {
	cases := []struct {
		step smtptest.Step
		code int
	}{
		{smtptest.StepGreeting, 421},
		{smtptest.StepGreeting, 554},
		{smtptest.StepHello, 550},
		{smtptest.StepMail, 451},
		{smtptest.StepMail, 553},
		{smtptest.StepRcpt, 421},
		{smtptest.StepData, 451},
		{smtptest.StepData, 554},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%d at %s", tc.code, tc.step), func(t *testing.T) {
			srv := smtptest.Start(t)
			srv.FailAt(tc.step, tc.code, -1)

			for range 2 {
				if err := session(srv); replyCode(err) != tc.code {
					t.Fatalf("session: %v, want reply %d", err, tc.code)
				}
			}
			if srv.Count() != 0 {
				t.Errorf("Count = %d, want 0 while the step fails", srv.Count())
			}
			srv.FailAt(tc.step, 0, 0)
			if err := session(srv); err != nil {
				t.Fatalf("session after removing the script: %v", err)
			}
		})
	}
}

func TestFailAtAuthRepliesToAUTH(t *testing.T) {
	srv := smtptest.Start(t, smtptest.WithAuth("user", "secret"))
	srv.FailAt(smtptest.StepAuth, 454, 1)
	if err := dial(t, srv).Auth(smtp.PlainAuth("", "user", "secret", srv.Host())); replyCode(err) != 454 {
		t.Fatalf("AUTH: %v, want 454", err)
	}
	if err := dial(t, srv).Auth(smtp.PlainAuth("", "user", "secret", srv.Host())); err != nil {
		t.Fatalf("AUTH once the script ran out: %v", err)
	}
}

func TestFailAtWithReplyRepliesWithTheTestsText(t *testing.T) {
	srv := smtptest.Start(t)
	srv.FailAtWithReply(smtptest.StepMail, 530, 1, "Must issue a STARTTLS command first")
	err := dial(t, srv).Mail("a@example.com")
	if replyCode(err) != 530 || !strings.Contains(err.Error(), "5.7.0 Must issue a STARTTLS command first") {
		t.Fatalf("MAIL: %v, want 530 5.7.0 with the scripted text", err)
	}
}

func TestFailAtCountsItsTimes(t *testing.T) {
	srv := smtptest.Start(t)
	srv.FailAt(smtptest.StepRcpt, 451, 1)

	c := dial(t, srv)
	if err := c.Mail("a@example.com"); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("b@example.com"); replyCode(err) != 451 {
		t.Fatalf("first RCPT: %v, want 451", err)
	}
	if err := c.Rcpt("c@example.com"); err != nil {
		t.Fatalf("second RCPT: %v, want it accepted once the script ran out", err)
	}
	if srv.Attempts("b@example.com") != 1 || srv.Attempts("c@example.com") != 1 {
		t.Errorf("attempts b=%d c=%d, want 1 each", srv.Attempts("b@example.com"), srv.Attempts("c@example.com"))
	}
}

func TestAFailRecipientScriptTakesPrecedenceOverFailAtRcpt(t *testing.T) {
	srv := smtptest.Start(t)
	srv.FailAt(smtptest.StepRcpt, 451, -1)
	srv.FailRecipient("b@example.com", 550, -1)

	c := dial(t, srv)
	if err := c.Mail("a@example.com"); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("b@example.com"); replyCode(err) != 550 {
		t.Fatalf("RCPT b: %v, want FailRecipient's 550", err)
	}
	if err := c.Rcpt("c@example.com"); replyCode(err) != 451 {
		t.Fatalf("RCPT c: %v, want FailAt's 451", err)
	}
}

func TestFailAtTheGreetingAnswersOverImplicitTLS(t *testing.T) {
	srv := smtptest.Start(t, smtptest.WithImplicitTLS())
	srv.FailAt(smtptest.StepGreeting, 421, 1)

	conn, err := tls.Dial("tcp", srv.Addr(), srv.ClientTLSConfig())
	if err != nil {
		t.Fatalf("TLS dial: %v", err)
	}
	if _, err := smtp.NewClient(conn, srv.Host()); replyCode(err) != 421 {
		t.Fatalf("greeting: %v, want 421 over TLS", err)
	}
	_ = conn.Close()
	if srv.Connections() != 1 {
		t.Errorf("Connections = %d, want the refused one counted", srv.Connections())
	}
}

func TestDropAtClosesWithoutAReplyAtEachStepForItsTimes(t *testing.T) {
	for _, step := range []smtptest.Step{smtptest.StepGreeting, smtptest.StepHello, smtptest.StepMail, smtptest.StepRcpt, smtptest.StepData} {
		t.Run(string(step), func(t *testing.T) {
			srv := smtptest.Start(t)
			srv.DropAt(step, 1)

			err := session(srv)
			if err == nil || replyCode(err) != 0 {
				t.Fatalf("session: %v, want a network error without a reply", err)
			}
			if srv.Count() != 0 {
				t.Errorf("Count = %d after a drop, want 0", srv.Count())
			}
			if err := session(srv); err != nil {
				t.Fatalf("session after the one drop: %v", err)
			}
		})
	}
}

func TestARcptDroppedStillCountsAsAnAttempt(t *testing.T) {
	srv := smtptest.Start(t)
	srv.DropAt(smtptest.StepRcpt, 1)
	if err := session(srv); err == nil {
		t.Fatal("session succeeded although RCPT dropped the connection")
	}
	if n := srv.Attempts("b@example.com"); n != 1 {
		t.Errorf("Attempts = %d, want 1", n)
	}
}

func TestDropAtRecipientDropsOnlyAtThatRecipient(t *testing.T) {
	srv := smtptest.Start(t)
	srv.DropAtRecipient("c@example.com", 1)

	c := dial(t, srv)
	if err := c.Mail("a@example.com"); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("b@example.com"); err != nil {
		t.Fatalf("RCPT b: %v, want it accepted", err)
	}
	if err := c.Rcpt("c@example.com"); err == nil || replyCode(err) != 0 {
		t.Fatalf("RCPT c: %v, want a network error without a reply", err)
	}
	if n := srv.Attempts("c@example.com"); n != 1 {
		t.Errorf("Attempts(c) = %d, want 1", n)
	}
	if err := send(t, srv, "a@example.com", []string{"c@example.com"}, body); err != nil {
		t.Fatalf("send after the one drop: %v", err)
	}
}

func TestClearFaultsRemovesStepScripts(t *testing.T) {
	srv := smtptest.Start(t)
	srv.FailAt(smtptest.StepMail, 451, -1)
	srv.DropAt(smtptest.StepGreeting, -1)
	srv.ClearFaults()
	if err := session(srv); err != nil {
		t.Fatalf("session after ClearFaults: %v", err)
	}
}

func TestHellosRecordsTheNameOfEverySessionOpened(t *testing.T) {
	srv := smtptest.Start(t, smtptest.WithTLS())
	// EHLO client.test, then STARTTLS and EHLO again over TLS.
	c := dial(t, srv)
	if err := c.StartTLS(srv.ClientTLSConfig()); err != nil {
		t.Fatal(err)
	}
	if got := srv.Hellos(); !slices.Equal(got, []string{"client.test", "client.test"}) {
		t.Fatalf("Hellos = %q, want client.test twice (before and after STARTTLS)", got)
	}
}

func TestEachMessageRecordsTheNameItsSenderGaveInEHLO(t *testing.T) {
	srv := smtptest.Start(t)
	for _, name := range []string{"worker-1.test", "worker-2.test"} {
		c, err := smtp.Dial(srv.Addr())
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Hello(name); err != nil {
			t.Fatal(err)
		}
		if err := transact(c, "a@example.com", []string{"b@example.com"}, body); err != nil {
			t.Fatal(err)
		}
		_ = c.Quit()
	}
	var got []string
	for _, m := range srv.Messages() {
		got = append(got, m.Hello)
	}
	if !slices.Equal(got, []string{"worker-1.test", "worker-2.test"}) {
		t.Fatalf("Hello of the messages = %q, want worker-1.test then worker-2.test", got)
	}
}
