package emails_test

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/mailroom/mailroom/app/apptest"
	"github.com/mailroom/mailroom/modules/emails"
	"github.com/mailroom/mailroom/platform/logging"
	"github.com/mailroom/mailroom/platform/outbox"
	"github.com/mailroom/mailroom/platform/retention"
	"github.com/mailroom/mailroom/platform/sqlite"
)

const day = 24 * time.Hour

// TestRetentionDeletesFinishedEmailsPastTheirPeriodAndNothingElse is the table of
// what the emails module's retention deletes: sent and cancelled emails past
// retention.emails and dead ones past retention.dead_letters go, with their tags, recipients,
// timeline and rendered message; younger ones stay, and emails not final stay whatever their age.
func TestRetentionDeletesFinishedEmailsPastTheirPeriodAndNothingElse(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		status  string
		age     time.Duration
		deleted bool
	}{
		{"sent", 31 * day, true},
		{"sent", 29 * day, false},
		{"cancelled", 31 * day, true}, // final, kept as long as a sent one
		{"cancelled", 29 * day, false},
		{"dead", 31 * day, false}, // a dead email lives as long as its letter
		{"dead", 91 * day, true},
		{"queued", 400 * day, false},
		{"scheduled", 400 * day, false},
		{"retrying", 400 * day, false},
	} {
		t.Run(fmt.Sprintf("%s %v ago", tc.status, tc.age), func(t *testing.T) {
			db, m := retentionModule(t, retention.Policy{Emails: 30 * day, DeadLetters: 90 * day, Interval: time.Hour, BatchSize: 500})
			insertEmail(t, db, "old", tc.status, now.Add(-tc.age))
			insertEmail(t, db, "fresh", "sent", now)
			if _, err := m.Sweeper(func() time.Time { return now }).Sweep(context.Background()); err != nil {
				t.Fatalf("Sweep: %v", err)
			}
			for _, table := range []string{"emails_emails", "emails_tags", "emails_recipients", "emails_events", "emails_messages"} {
				want := 1
				if tc.deleted {
					want = 0
				}
				if got := countRows(t, db, table, "old"); got != want {
					t.Errorf("%s rows of the %s email: %d, want %d", table, tc.status, got, want)
				}
				if got := countRows(t, db, table, "fresh"); got != 1 {
					t.Errorf("%s rows of an email sent now: %d, want 1", table, got)
				}
			}
		})
	}
}

// TestRetentionDeletesInBatchesUntilNoneIsLeft: with a batch of 2, five old emails
// are deleted in three transactions of one sweep.
func TestRetentionDeletesInBatchesUntilNoneIsLeft(t *testing.T) {
	now := time.Now()
	db, m := retentionModule(t, retention.Policy{Emails: day, DeadLetters: day, Interval: time.Hour, BatchSize: 2})
	for i := range 5 {
		insertEmail(t, db, fmt.Sprintf("old-%d", i), "sent", now.Add(-2*day))
	}
	deleted, err := m.Sweeper(func() time.Time { return now }).Sweep(context.Background())
	if err != nil || deleted["emails"] != 5 {
		t.Fatalf("Sweep = %v, %v; want 5 emails deleted", deleted, err)
	}
	var left int
	if err := db.Read.QueryRow(`SELECT COUNT(*) FROM emails_emails`).Scan(&left); err != nil || left != 0 {
		t.Errorf("%d emails left (%v), want 0", left, err)
	}
}

// TestARetentionOfZeroKeepsEmailsForEver: retention.emails and
// retention.dead_letters at 0 delete nothing.
func TestARetentionOfZeroKeepsEmailsForEver(t *testing.T) {
	now := time.Now()
	db, m := retentionModule(t, retention.Policy{Interval: time.Hour, BatchSize: 500})
	insertEmail(t, db, "sent", "sent", now.Add(-1000*day))
	insertEmail(t, db, "dead", "dead", now.Add(-1000*day))
	if _, err := m.Sweeper(func() time.Time { return now }).Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := countRows(t, db, "emails_emails", "sent") + countRows(t, db, "emails_emails", "dead"); got != 2 {
		t.Errorf("%d of 2 emails kept, want both", got)
	}
}

// TestRetentionDeletesIdempotencyKeysNoRequestCanUse: keys past their 24 hours go;
// the rest stay.
func TestRetentionDeletesIdempotencyKeysNoRequestCanUse(t *testing.T) {
	now := time.Date(2026, 6, 10, 12, 0, 0, 0, time.UTC)
	db, m := retentionModule(t, retention.Policy{Interval: time.Hour, BatchSize: 500})
	exec(t, db, `INSERT INTO emails_idempotency (key, request_hash, email_id, status, created_at) VALUES
		('old', 'h', 'e1', 'queued', ?), ('new', 'h', 'e2', 'queued', ?)`,
		now.Add(-25*time.Hour).UnixMilli(), now.Add(-23*time.Hour).UnixMilli())
	if _, err := m.Sweeper(func() time.Time { return now }).Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
	if keys := column(t, db, `SELECT key FROM emails_idempotency ORDER BY key`); fmt.Sprint(keys) != "[new]" {
		t.Errorf("left idempotency keys %v, want [new]", keys)
	}
}

func retentionModule(t *testing.T, r retention.Policy) (*sqlite.DB, *emails.Module) {
	t.Helper()
	db := apptest.Database(t, apptest.Config(t))
	return db, emails.New(emails.Config{SendTopic: "send", EventsTopic: "events", Retention: r}, db, outbox.New(), logging.Discard(), nil)
}

// insertEmail stores an email as the module would, with one tag, recipient,
// timeline entry and rendered message, last changed at updated.
func insertEmail(t *testing.T, db *sqlite.DB, id, status string, updated time.Time) {
	t.Helper()
	at := updated.UnixMilli()
	exec(t, db, `INSERT INTO emails_emails (id, status, from_addr, to_addrs, cc_addrs, bcc_addrs, reply_to, subject,
		text_body, html_body, tags, metadata, correlation_id, created_at, updated_at)
		VALUES (?, ?, 'a@example.com', '["b@example.com"]', '[]', '[]', '', 's', 't', '', '["x"]', '{}', 'c', ?, ?)`,
		id, status, at, at)
	exec(t, db, `INSERT INTO emails_tags (email_id, tag) VALUES (?, 'x')`, id)
	exec(t, db, `INSERT INTO emails_recipients (email_id, position, address, type, status, updated_at)
		VALUES (?, 0, 'b@example.com', 'to', 'delivered', ?)`, id, at)
	exec(t, db, `INSERT INTO emails_events (email_id, type, at, detail) VALUES (?, 'sent', ?, '')`, id, at)
	exec(t, db, `INSERT INTO emails_messages (email_id, message_id, raw, rendered_at) VALUES (?, '<m@x>', 'raw', ?)`, id, at)
}

func exec(t *testing.T, db *sqlite.DB, q string, args ...any) {
	t.Helper()
	if err := db.Tx(context.Background(), func(tx *sql.Tx) error {
		_, err := tx.Exec(q, args...)
		return err
	}); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func countRows(t *testing.T, db *sqlite.DB, table, emailID string) int {
	t.Helper()
	col := "email_id"
	if table == "emails_emails" {
		col = "id"
	}
	var n int
	if err := db.Read.QueryRow(`SELECT COUNT(*) FROM `+table+` WHERE `+col+` = ?`, emailID).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func column(t *testing.T, db *sqlite.DB, q string) []string {
	t.Helper()
	rows, err := db.Read.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}
