package emails_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/mail"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/mailroom/mailroom/app"
	"github.com/mailroom/mailroom/app/apptest"
	delivery "github.com/mailroom/mailroom/modules/delivery/contract"
	"github.com/mailroom/mailroom/modules/emails"
	"github.com/mailroom/mailroom/platform/logging"
	"github.com/mailroom/mailroom/platform/outbox"
	"github.com/mailroom/mailroom/platform/sqlite"
)

// The emails module answers GET /api/emails/{id}/raw from the message the try's
// event carried back: to the key that sent the email and to admins, as
// message/rfc822; to another key exactly as for an unknown id.
func TestTheRawMessageIsShownToItsSenderAndAdminsAndToNoOtherKey(t *testing.T) {
	in := start(t)
	alice, bob := sendKey(t, in, "alice"), sendKey(t, in, "bob")
	id := in.Send(t, body(nil), apptest.Bearer(alice)...)
	in.WaitForStatus(t, id, "sent", wait)

	own := in.Do(t, http.MethodGet, "/api/emails/"+id+"/raw", nil, apptest.Bearer(alice)...)
	if own.Status != http.StatusOK || own.Header.Get("Content-Type") != "message/rfc822" {
		t.Fatalf("GET raw as its sender: %d %q %s, want 200 message/rfc822", own.Status, own.Header.Get("Content-Type"), own.Body)
	}
	msg, err := mail.ReadMessage(bytes.NewReader(own.Body))
	if err != nil || msg.Header.Get("Subject") != "Hello" || msg.Header.Get("Message-Id") == "" {
		t.Fatalf("raw message %q reads as %v (%v), want Subject Hello and a Message-ID", own.Body, msg, err)
	}
	if admin := in.Do(t, http.MethodGet, "/api/emails/"+id+"/raw", nil); admin.Status != http.StatusOK || !bytes.Equal(admin.Body, own.Body) {
		t.Errorf("GET raw as admin: %d, same bytes %v; want 200 and the sender's bytes", admin.Status, bytes.Equal(admin.Body, own.Body))
	}
	other := in.Do(t, http.MethodGet, "/api/emails/"+id+"/raw", nil, apptest.Bearer(bob)...)
	if other.Status != http.StatusNotFound || decodeError(t, other).Error.Code != "not_found" {
		t.Errorf("GET raw as another send key: %d %s, want 404 not_found", other.Status, other.Body)
	}
}

// An email no try has rendered yet (here: scheduled an hour ahead) has no raw
// message: 404, even for its sender.
func TestTheRawMessageIsNotFoundUntilATryRendersIt(t *testing.T) {
	in := start(t)
	id := in.Send(t, body(map[string]any{"send_at": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}))
	r := in.Do(t, http.MethodGet, "/api/emails/"+id+"/raw", nil)
	if r.Status != http.StatusNotFound {
		t.Fatalf("GET raw of a scheduled email: %d %s, want 404", r.Status, r.Body)
	}
	if b := decodeError(t, r); b.Error.Code != "not_found" || !bytes.Contains([]byte(b.Error.Message), []byte("rendered message")) {
		t.Errorf("GET raw of a scheduled email: %s, want not_found naming the rendered message", r.Body)
	}
}

// The module keeps the message each EmailAttempted carries, a later try's
// replacing an earlier one's and never the reverse, and applies an event without
// one (from a version before events carried it, or a try that rendered nothing) as
// before, storing nothing.
func TestAnAttemptedEventStoresTheMessageItCarriesAndOneWithoutStoresNone(t *testing.T) {
	cfg := apptest.Config(t)
	db := apptest.Database(t, cfg)
	m := emails.New(app.EmailsConfig(cfg, "test"), db, outbox.New(), logging.Discard(), nil)
	pub := apptest.RunHandlers(t, cfg, m.RegisterHandlers)
	start := time.Now().Add(-time.Minute)
	insertEmail(t, db, "e1", "queued", start)
	exec(t, db, `UPDATE emails_recipients SET status = 'pending'`)
	exec(t, db, `DELETE FROM emails_messages`) // none rendered yet
	attempted := func(attempt int, status string, msg *delivery.RenderedMessage) {
		t.Helper()
		recipient := delivery.RecipientState{Recipient: delivery.Recipient{Address: "b@example.com", Type: delivery.TypeTo},
			Status: delivery.RecipientDeferred, Attempts: attempt, Detail: "451 later"}
		if status == delivery.StatusSent {
			recipient.Status, recipient.Detail = delivery.RecipientDelivered, "250 OK"
		}
		next := start.Add(time.Hour)
		ev := delivery.EmailAttempted{EmailID: "e1", Attempt: attempt, Status: status, NextAttemptAt: &next,
			Recipients: []delivery.RecipientState{recipient}, At: start.Add(time.Duration(attempt) * time.Second), Message: msg}
		payload, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		out := message.NewMessage(fmt.Sprintf("%s/r0/a%d/attempted", ev.EmailID, attempt), payload)
		out.Metadata.Set(delivery.EventTypeKey, delivery.EventEmailAttempted)
		apptest.Publish(t, pub, cfg.Topics.Events, out)
	}

	attempted(1, delivery.StatusRetrying, nil)
	if status := emailStatus(t, db, "e1"); status != "retrying" {
		t.Fatalf("after an event without a message the email is %s, want retrying: the event applies", status)
	}
	if n := countRows(t, db, "emails_messages", "e1"); n != 0 {
		t.Fatalf("%d stored messages after an event without one, want 0", n)
	}

	second := []byte("Message-ID: <e1@example.com>\r\nSubject: try 2\r\n\r\nbody\r\n")
	attempted(2, delivery.StatusRetrying, &delivery.RenderedMessage{MessageID: "<e1@example.com>", Raw: second})
	if raw := storedRaw(t, db, "e1"); !bytes.Equal(raw, second) {
		t.Fatalf("stored %q, want the second try's message %q", raw, second)
	}
	// A message rendered before the stored one (events of one email come in
	// order on one partition, but the store does not count on it) leaves the
	// stored one in place: here the stored one is made a minute younger.
	exec(t, db, `UPDATE emails_messages SET rendered_at = rendered_at + 60000`)
	attempted(3, delivery.StatusSent, &delivery.RenderedMessage{MessageID: "<e1@example.com>", Raw: []byte("older\r\n")})
	if raw := storedRaw(t, db, "e1"); !bytes.Equal(raw, second) {
		t.Errorf("stored %q after an event of an earlier rendering, want %q kept", raw, second)
	}
	if status := emailStatus(t, db, "e1"); status != "sent" {
		t.Errorf("email %s after the last try, want sent", status)
	}
}

func emailStatus(t *testing.T, db *sqlite.DB, id string) string {
	t.Helper()
	var s string
	if err := db.Read.QueryRow(`SELECT status FROM emails_emails WHERE id = ?`, id).Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

func storedRaw(t *testing.T, db *sqlite.DB, id string) []byte {
	t.Helper()
	var raw []byte
	if err := db.Read.QueryRow(`SELECT raw FROM emails_messages WHERE email_id = ?`, id).Scan(&raw); err != nil {
		t.Fatalf("read the stored message of %s: %v", id, err)
	}
	return raw
}
