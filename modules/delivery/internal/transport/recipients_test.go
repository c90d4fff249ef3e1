package transport_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailroom/mailroom/modules/delivery/internal/transport"
	"github.com/mailroom/mailroom/platform/testkit/smtptest"
)

// outcome is what a test expects of one RecipientResult; Detail is matched by
// prefix.
type outcome struct {
	verdict  transport.Verdict
	stage    string
	code     int
	enhanced string
	detail   string
}

// wantOutcomes fails unless res holds the outcomes want, in order.
func wantOutcomes(t *testing.T, res transport.Result, want ...outcome) {
	t.Helper()
	if len(res.Recipients) != len(want) {
		t.Fatalf("%d outcomes, want %d: %+v", len(res.Recipients), len(want), res.Recipients)
	}
	for i, w := range want {
		r := res.Recipients[i]
		if r.Verdict != w.verdict || r.Stage != w.stage || r.Code != w.code || r.Enhanced != w.enhanced || !strings.HasPrefix(r.Detail, w.detail) {
			t.Errorf("%s: %+v (%v), want %v at %s with %d %q and a detail starting %q",
				r.Address, r, r.Verdict, w.verdict, w.stage, w.code, w.enhanced, w.detail)
		}
	}
}

func TestATransactionGivesEachRecipientItsOwnFateAndSendsTheMessageOnceToTheAccepted(t *testing.T) {
	srv := smtptest.Start(t)
	srv.FailRecipient("b@example.com", 550, -1)
	srv.FailRecipient("c@example.com", 451, -1)
	tr := newSMTP(t, config(srv))
	msg := message(t, "mixed-1", []string{"a@example.com", "b@example.com", "c@example.com"})

	wantOutcomes(t, send(t, tr, msg),
		outcome{transport.Delivered, transport.StageData, 250, "2.0.0", "250 2.0.0 OK: queued"},
		outcome{transport.Bounced, transport.StageRcpt, 550, "5.1.1", "550 5.1.1 Mailbox unavailable: no such user (smtptest)"},
		outcome{transport.Deferred, transport.StageRcpt, 451, "4.3.0", "451 4.3.0 Temporary local problem, try again later (smtptest)"},
	)
	for _, addr := range msg.Recipients {
		if n := srv.Attempts(addr); n != 1 {
			t.Errorf("RCPT TO %s sent %d times, want 1", addr, n)
		}
	}
	got := srv.Messages()
	if len(got) != 1 || !slices.Equal(got[0].To, []string{"a@example.com"}) || !bytes.Equal(got[0].Data, msg.Raw) {
		t.Fatalf("server received %+v, want the exact message once, to a@example.com only", got)
	}
}

func TestARecipientRefusalDecidesThatRecipientByItsReplyClass(t *testing.T) {
	cases := []struct {
		code     int
		verdict  transport.Verdict
		enhanced string
	}{
		{450, transport.Deferred, "4.2.1"},
		{451, transport.Deferred, "4.3.0"},
		{452, transport.Deferred, "4.2.2"},
		{550, transport.Bounced, "5.1.1"},
		{551, transport.Bounced, "5.1.6"},
		{552, transport.Bounced, "5.2.2"},
		{553, transport.Bounced, "5.1.3"},
		{554, transport.Bounced, "5.7.1"},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%d %s makes the recipient %v", tc.code, tc.enhanced, tc.verdict), func(t *testing.T) {
			srv := smtptest.Start(t)
			srv.FailRecipient("b@example.com", tc.code, -1)
			tr := newSMTP(t, config(srv))

			res := send(t, tr, message(t, "class-1", []string{"a@example.com", "b@example.com"}))
			wantOutcomes(t, res,
				outcome{transport.Delivered, transport.StageData, 250, "2.0.0", "250 "},
				outcome{tc.verdict, transport.StageRcpt, tc.code, tc.enhanced, fmt.Sprintf("%d %s ", tc.code, tc.enhanced)},
			)
		})
	}
}

func TestNoRecipientAcceptedSendsNoDataAndKeepsTheConnectionForTheNextSend(t *testing.T) {
	srv := smtptest.Start(t)
	srv.FailRecipient("bad@example.com", 550, -1)
	srv.FailRecipient("later@example.com", 451, -1)
	tr := newSMTP(t, config(srv))

	wantOutcomes(t, send(t, tr, message(t, "none-1", []string{"bad@example.com", "later@example.com"})),
		outcome{transport.Bounced, transport.StageRcpt, 550, "5.1.1", "550 "},
		outcome{transport.Deferred, transport.StageRcpt, 451, "4.3.0", "451 "},
	)
	if srv.Count() != 0 {
		t.Fatalf("server accepted %d messages with no recipient accepted", srv.Count())
	}
	good := message(t, "none-2", []string{"good@example.com"})
	wantDelivered(t, send(t, tr, good))
	if got := srv.MessagesTo("good@example.com"); len(got) != 1 || !slices.Equal(got[0].To, []string{"good@example.com"}) {
		t.Fatalf("server received %+v", got)
	}
	if n := srv.Connections(); n != 1 {
		t.Errorf("connections = %d, want the first one reused", n)
	}
}

func TestAMailFromRefusalDecidesEveryRecipientAndKeepsTheConnection(t *testing.T) {
	cases := []struct {
		name string
		code int
		want outcome
	}{
		{"a 451 defers every recipient", 451, outcome{transport.Deferred, transport.StageMail, 451, "4.3.0", "451 4.3.0 "}},
		{"a 553 bounces every recipient", 553, outcome{transport.Bounced, transport.StageMail, 553, "5.1.3", "553 5.1.3 "}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := smtptest.Start(t)
			srv.FailAt(smtptest.StepMail, tc.code, 1)
			tr := newSMTP(t, config(srv))

			wantOutcomes(t, send(t, tr, message(t, "mail-1", []string{"a@example.com", "b@example.com"})), tc.want, tc.want)
			if srv.Attempts("a@example.com") != 0 || srv.Count() != 0 {
				t.Errorf("RCPT TO or DATA sent after MAIL FROM was refused")
			}
			wantDelivered(t, send(t, tr, message(t, "mail-2", []string{"a@example.com"})))
			if n := srv.Connections(); n != 1 {
				t.Errorf("connections = %d, want the first one reused", n)
			}
		})
	}
}

func TestTheEndOfDataReplyDecidesTheAcceptedRecipientsOnly(t *testing.T) {
	cases := []struct {
		name string
		code int
		want outcome
	}{
		{"a 451 defers them", 451, outcome{transport.Deferred, transport.StageData, 451, "4.3.0", "451 4.3.0 "}},
		{"a 554 bounces them", 554, outcome{transport.Bounced, transport.StageData, 554, "5.7.1", "554 5.7.1 Rejected by policy"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := smtptest.Start(t)
			srv.FailRecipient("gone@example.com", 550, -1)
			srv.FailAt(smtptest.StepData, tc.code, 1)
			tr := newSMTP(t, config(srv))

			res := send(t, tr, message(t, "data-1", []string{"a@example.com", "gone@example.com", "b@example.com"}))
			wantOutcomes(t, res, tc.want,
				outcome{transport.Bounced, transport.StageRcpt, 550, "5.1.1", "550 "},
				tc.want)
			if srv.Count() != 0 {
				t.Errorf("server recorded %d messages it refused", srv.Count())
			}
			wantDelivered(t, send(t, tr, message(t, "data-2", []string{"a@example.com"})))
			if n := srv.Connections(); n != 1 {
				t.Errorf("connections = %d, want the first one reused", n)
			}
		})
	}
}

func TestAConnectionLostMidDataDefersTheAcceptedRecipientsWithoutACode(t *testing.T) {
	srv := smtptest.Start(t)
	srv.FailRecipient("gone@example.com", 550, -1)
	srv.DropDuringData(1)
	tr := newSMTP(t, config(srv))

	res := send(t, tr, message(t, "drop-1", []string{"a@example.com", "gone@example.com", "b@example.com"}))
	lost := outcome{transport.Deferred, transport.StageData, 0, "", "connection lost "}
	wantOutcomes(t, res, lost, outcome{transport.Bounced, transport.StageRcpt, 550, "5.1.1", "550 "}, lost)
	if srv.Count() != 0 {
		t.Fatalf("server recorded %d messages", srv.Count())
	}
	// The broken connection is not reused: the next send dials and succeeds.
	wantDelivered(t, send(t, tr, message(t, "drop-2", []string{"a@example.com"})))
	if n := srv.Connections(); n != 2 {
		t.Errorf("connections = %d, want 2", n)
	}
}

func TestNoVerdictAfterTheWholeMessageDefersTheRecipients(t *testing.T) {
	// The duplicate window: the server has the whole message and never answers.
	srv := startBlockingDataServer(t)
	tr := newSMTP(t, transport.SMTPConfig{Host: "127.0.0.1", Port: srv.port(), TLS: transport.TLSNone, CommandTimeout: 200 * time.Millisecond})

	res := send(t, tr, message(t, "window-1", []string{"a@example.com", "b@example.com"}))
	late := outcome{transport.Deferred, transport.StageData, 0, "", "timed out after the whole message was written, awaiting the server's reply: i/o timeout"}
	wantOutcomes(t, res, late, late)
}

func TestAConnectionLostAfterARcptReplyDefersEveryUndecidedRecipientAndKeepsTheRefusals(t *testing.T) {
	srv := smtptest.Start(t)
	srv.FailRecipient("gone@example.com", 550, -1)
	srv.DropAtRecipient("b@example.com", 1)
	tr := newSMTP(t, config(srv))

	// gone is refused, a accepted (no verdict yet), the connection drops at b, and c
	// is never given.
	res := send(t, tr, message(t, "lost-1", []string{"gone@example.com", "a@example.com", "b@example.com", "c@example.com"}))
	lost := outcome{transport.Deferred, transport.StageRcpt, 0, "", "connection lost at RCPT TO: "}
	wantOutcomes(t, res, outcome{transport.Bounced, transport.StageRcpt, 550, "5.1.1", "550 "}, lost, lost, lost)
	if srv.Attempts("c@example.com") != 0 || srv.Count() != 0 {
		t.Errorf("the transaction went on after the connection dropped")
	}
}

func TestCaptureDeliversEveryRecipientAndProbesFine(t *testing.T) {
	var tr transport.Transport = transport.Capture{}
	msg := message(t, "capture-1", []string{"a@example.com", "b@example.com"}, "hidden@example.com")
	res := send(t, tr, msg)
	for _, r := range res.Recipients {
		if r.Verdict != transport.Delivered || r.Detail != "250 captured" || r.Code != 250 {
			t.Errorf("%s: %+v, want delivered with 250 captured", r.Address, r)
		}
	}
	if err := tr.Probe(context.Background()); err != nil {
		t.Errorf("Probe = %v, want nil", err)
	}
}

func TestIsMailboxHardBounce(t *testing.T) {
	bounced := func(stage string, code int, enhanced string) transport.RecipientResult {
		return transport.RecipientResult{Address: "a@example.com", Verdict: transport.Bounced, Stage: stage, Code: code, Enhanced: enhanced}
	}
	cases := []struct {
		name string
		r    transport.RecipientResult
		want bool
	}{
		{"5.1.1 no such user at RCPT is a hard bounce", bounced(transport.StageRcpt, 550, "5.1.1"), true},
		{"5.1.2 bad domain at RCPT is a hard bounce", bounced(transport.StageRcpt, 550, "5.1.2"), true},
		{"5.1.10 null MX at RCPT is a hard bounce", bounced(transport.StageRcpt, 556, "5.1.10"), true},
		{"550 without an enhanced code at RCPT is a hard bounce", bounced(transport.StageRcpt, 550, ""), true},
		{"551 without an enhanced code at RCPT is a hard bounce", bounced(transport.StageRcpt, 551, ""), true},
		{"553 without an enhanced code at RCPT is a hard bounce", bounced(transport.StageRcpt, 553, ""), true},
		{"550 5.7.1 policy refusal at RCPT is not", bounced(transport.StageRcpt, 550, "5.7.1"), false},
		{"552 5.2.2 mailbox full at RCPT is not", bounced(transport.StageRcpt, 552, "5.2.2"), false},
		{"554 without an enhanced code at RCPT is not", bounced(transport.StageRcpt, 554, ""), false},
		{"5.1.1 at MAIL FROM is not (the sender was refused)", bounced(transport.StageMail, 550, "5.1.1"), false},
		{"5.1.1 at end of data is not", bounced(transport.StageData, 550, "5.1.1"), false},
		{"a deferral is not", transport.RecipientResult{Verdict: transport.Deferred, Stage: transport.StageRcpt, Code: 450, Enhanced: "4.1.1"}, false},
		{"a delivery is not", transport.RecipientResult{Verdict: transport.Delivered, Stage: transport.StageData, Code: 250}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := transport.IsMailboxHardBounce(tc.r); got != tc.want {
				t.Fatalf("IsMailboxHardBounce(%+v) = %v, want %v", tc.r, got, tc.want)
			}
		})
	}
}
