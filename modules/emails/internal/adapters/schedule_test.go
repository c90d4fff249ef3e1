package adapters_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/mailroom/mailroom/migrations"
	"github.com/mailroom/mailroom/modules/emails/internal/adapters"
	"github.com/mailroom/mailroom/modules/emails/internal/app"
	"github.com/mailroom/mailroom/modules/emails/internal/domain"
	"github.com/mailroom/mailroom/platform/broker"
	"github.com/mailroom/mailroom/platform/outbox"
	"github.com/mailroom/mailroom/platform/sqlite"
)

const sendTopic = "email.send"

// newRepository is a repository on a fresh, migrated database.
func newRepository(t *testing.T) (*adapters.Repository, *sqlite.DB) {
	t.Helper()
	db, err := sqlite.Open(filepath.Join(t.TempDir(), "emails.db"))
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if err := sqlite.Migrate(context.Background(), db,
		sqlite.MigrationSet{Name: "platform", FS: migrations.For("platform")},
		sqlite.MigrationSet{Name: "emails", FS: migrations.For("emails")}); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return adapters.NewRepository(db, outbox.New(), sendTopic, "lifecycle", "test"), db
}

// acceptScheduled stores an email due at sendAt and returns its id.
func acceptScheduled(t *testing.T, repo *adapters.Repository, id string, sendAt time.Time) {
	t.Helper()
	now := time.Now()
	e := domain.Email{ID: id, Status: domain.StatusScheduled, From: "a@example.com", To: []string{"b@example.com"},
		Subject: "s", Text: "t", CreatedAt: now, UpdatedAt: now, SendAt: &sendAt}
	if _, err := repo.Accept(context.Background(), app.NewEmail{Email: e}); err != nil {
		t.Fatalf("Accept: %v", err)
	}
}

// TestAPublishedHookNeverBringsACancelledEmailBack: should a cancelled email's
// SendEmail leave the outbox after all (the relay had read it before the cancel
// committed, which the margin is there to prevent), its "published" is recorded on
// the timeline, and the email stays cancelled.
func TestAPublishedHookNeverBringsACancelledEmailBack(t *testing.T) {
	repo, db := newRepository(t)
	id := "0198a1b2-0000-7000-8000-000000000001"
	acceptScheduled(t, repo, id, time.Now().Add(time.Hour))
	found, changed, err := repo.ChangeSchedule(context.Background(), app.Change{EmailID: id, Cancelled: true,
		Entries: []app.Entry{{Type: domain.EventCancelled}}})
	if err != nil || !changed || found != domain.StatusScheduled {
		t.Fatalf("ChangeSchedule = %s, %v, %v; want scheduled, true, nil", found, changed, err)
	}

	msg := message.NewMessage(id+"/r0/a1", []byte("{}"))
	msg.Metadata.Set(broker.PartitionKeyKey, id)
	err = db.Tx(context.Background(), func(tx *sql.Tx) error {
		return repo.RecordPublished(context.Background(), tx, sendTopic, []*message.Message{msg}, time.Now())
	})
	if err != nil {
		t.Fatalf("RecordPublished: %v", err)
	}
	e, err := repo.Get(context.Background(), id)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if e.Status != domain.StatusCancelled {
		t.Fatalf("after a late publish the email is %s, want cancelled", e.Status)
	}
	if last := e.Events[len(e.Events)-1]; last.Type != domain.EventPublished {
		t.Errorf("the late publish is not on the timeline: last entry %+v", last)
	}
}

// TestTheWithdrawnRowIsTheEmailsSendEmail: cancel takes the email's own outbox row
// (the message uuid encodeEmail gives it) and leaves another email's alone.
func TestTheWithdrawnRowIsTheEmailsSendEmail(t *testing.T) {
	repo, db := newRepository(t)
	cancelled, kept := "0198a1b2-0000-7000-8000-000000000002", "0198a1b2-0000-7000-8000-000000000003"
	acceptScheduled(t, repo, cancelled, time.Now().Add(time.Hour))
	acceptScheduled(t, repo, kept, time.Now().Add(time.Hour))
	if _, changed, err := repo.ChangeSchedule(context.Background(), app.Change{EmailID: cancelled, Cancelled: true,
		Entries: []app.Entry{{Type: domain.EventCancelled}}}); err != nil || !changed {
		t.Fatalf("ChangeSchedule = %v, %v", changed, err)
	}
	var keys []string
	rows, err := db.Read.Query(`SELECT partition_key FROM outbox WHERE topic = ?`, sendTopic)
	if err != nil {
		t.Fatalf("read outbox: %v", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			t.Fatalf("scan: %v", err)
		}
		keys = append(keys, k)
	}
	if len(keys) != 1 || keys[0] != kept {
		t.Fatalf("outbox rows of %v, want only the kept email's (%s)", keys, kept)
	}
}
