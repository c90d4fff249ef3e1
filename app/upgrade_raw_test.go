package app_test

import (
	"bytes"
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/mailroom/mailroom/app/apptest"
	"github.com/mailroom/mailroom/platform/sqlite"
	"github.com/mailroom/mailroom/platform/testkit/smtptest"
)

// Before the emails module kept each email's rendered message, the delivery module
// did (delivery_messages). An instance upgraded from such a version must keep
// answering /raw for the mail it rendered before the upgrade.
func TestAnUpgradedInstanceStillAnswersRawForMailRenderedBeforeTheUpgrade(t *testing.T) {
	srv := smtptest.Start(t)
	cfg := apptest.Config(t)
	apptest.UseSMTP(cfg, srv)

	in := apptest.Start(t, cfg)
	id := in.Send(t, apptest.NewEmail("old@example.com"))
	in.WaitForStatus(t, id, "sent", 10*time.Second)
	want := in.Do(t, http.MethodGet, "/api/emails/"+id+"/raw", nil)
	if want.Status != http.StatusOK || len(want.Body) == 0 {
		t.Fatalf("GET /raw before the rewind: %d, %d bytes; want 200 and the message", want.Status, len(want.Body))
	}
	in.Stop(t)

	rewindToMessagesKeptByDelivery(t, cfg.DB.Path)

	in = apptest.Start(t, cfg)
	got := in.Do(t, http.MethodGet, "/api/emails/"+id+"/raw", nil)
	if got.Status != http.StatusOK || !bytes.Equal(got.Body, want.Body) {
		t.Errorf("GET /raw after the upgrade: %d, %d bytes; want 200 and the %d bytes rendered before it",
			got.Status, len(got.Body), len(want.Body))
	}
	db := apptest.Database(t, cfg)
	var left int
	if err := db.Read.QueryRow(`SELECT COUNT(*) FROM sqlite_master WHERE name = 'delivery_messages'`).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Error("delivery_messages is still there after the upgrade; delivery's migration 00004 drops it")
	}
}

// rewindToMessagesKeptByDelivery makes the database at path look as a version
// before emails migration 00010 left it: the rendered messages in delivery's table
// (as delivery migration 00002 shaped it), none in the emails module's, and neither
// module's later migrations applied (emails 00010-00012, delivery 00004).
func rewindToMessagesKeptByDelivery(tb testing.TB, path string) {
	tb.Helper()
	db, err := sqlite.Open(path)
	if err != nil {
		tb.Fatalf("open %s: %v", path, err)
	}
	defer db.Close()
	for _, stmt := range []string{
		`CREATE TABLE delivery_messages (
		     email_id TEXT PRIMARY KEY, message_id TEXT NOT NULL, raw BLOB NOT NULL,
		     rendered_at INTEGER NOT NULL, owner_key_id TEXT NOT NULL DEFAULT '')`,
		`INSERT INTO delivery_messages (email_id, message_id, raw, rendered_at)
		     SELECT email_id, message_id, raw, rendered_at FROM emails_messages`,
		`DROP TABLE emails_messages`,
		`ALTER TABLE emails_recipients DROP COLUMN try_attempt`, // emails 00012
		`ALTER TABLE emails_recipients DROP COLUMN try_replay`,
		`ALTER TABLE emails_emails DROP COLUMN replay`,
		`DELETE FROM goose_emails WHERE version_id >= 10`,
		`DELETE FROM goose_delivery WHERE version_id >= 4`,
	} {
		if _, err := db.Write.ExecContext(context.Background(), stmt); err != nil {
			tb.Fatalf("rewind %s: %s: %v", path, stmt, err)
		}
	}
}
