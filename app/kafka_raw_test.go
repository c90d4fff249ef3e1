//go:build kafka

package app_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/mail"
	"path/filepath"
	"testing"

	"github.com/IBM/sarama"

	"github.com/mailroom/mailroom/app/apptest"
	"github.com/mailroom/mailroom/platform/sqlite"
	"github.com/mailroom/mailroom/platform/testkit/smtptest"
)

// TestKafkaRawMessageIsAnsweredByTheInstanceThatAcceptedTheEmail runs two Mailrooms
// in one delivery group on the shared Kafka node, each with its own database, and
// posts every email to A. Whichever instance holds an email's partition sends it;
// the rendered message comes back in the try's event, so A answers /raw for every
// one, byte for byte what the SMTP server received, B's sends included, and B,
// which did not accept them, has none of them.
func TestKafkaRawMessageIsAnsweredByTheInstanceThatAcceptedTheEmail(t *testing.T) {
	srv := smtptest.Start(t)
	cfgA := kafkaConfig(t)
	apptest.UseSMTP(cfgA, srv)
	cfgB := *cfgA
	cfgB.DB.Path = filepath.Join(t.TempDir(), "b.db")
	instA, instB := apptest.Start(t, cfgA), apptest.Start(t, &cfgB)

	admin, err := sarama.NewClusterAdmin(cfgA.Kafka.Brokers, sarama.NewConfig())
	if err != nil {
		t.Fatalf("kafka admin: %v", err)
	}
	defer admin.Close()
	waitForTwoMembersSharing(t, admin, cfgA)

	ids := postEmails(t, instA.URL, "raw", 24)
	waitStatus(t, "A", instA.URL, ids, "sent")

	received := map[string][]byte{}
	for _, m := range srv.Messages() {
		if msg, err := mail.ReadMessage(bytes.NewReader(m.Data)); err == nil {
			received[msg.Header.Get("X-Mailroom-Email-ID")] = m.Data
		}
	}
	for _, id := range ids {
		r := instA.Do(t, http.MethodGet, "/api/emails/"+id+"/raw", nil)
		if r.Status != http.StatusOK || !bytes.Equal(r.Body, received[id]) {
			t.Errorf("GET A/api/emails/%s/raw: %d, %d bytes; want 200 and the %d bytes the SMTP server received",
				id, r.Status, len(r.Body), len(received[id]))
		}
		if r := instB.Do(t, http.MethodGet, "/api/emails/"+id+"/raw", nil); r.Status != http.StatusNotFound {
			t.Errorf("GET B/api/emails/%s/raw: %d, want 404: B did not accept it", id, r.Status)
		}
	}
	if sentByB := sentBy(t, cfgB.DB.Path, ids); sentByB == 0 || sentByB == len(ids) {
		t.Errorf("B sent %d of A's %d emails; want some but not all, or the test proves nothing", sentByB, len(ids))
	} else {
		t.Logf("B sent %d of A's %d emails; A answered /raw for all of them", sentByB, len(ids))
	}
}

// sentBy counts the emails of ids whose delivery the database at path recorded:
// those its instance sent.
func sentBy(tb testing.TB, path string, ids []string) int {
	tb.Helper()
	db, err := sqlite.Open(path)
	if err != nil {
		tb.Fatalf("open %s: %v", path, err)
	}
	defer db.Close()
	n := 0
	for _, id := range ids {
		var c int
		if err := db.Read.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM delivery_state WHERE email_id = ?`, id).Scan(&c); err != nil {
			tb.Fatal(fmt.Errorf("read delivery state of %s: %w", id, err))
		}
		n += c
	}
	return n
}
