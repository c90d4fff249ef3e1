package deadletters_test

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/mailroom/mailroom/app"
	"github.com/mailroom/mailroom/app/apptest"
	"github.com/mailroom/mailroom/modules/deadletters"
	"github.com/mailroom/mailroom/platform/logging"
	"github.com/mailroom/mailroom/platform/outbox"
)

// TestRetentionDeletesOldLettersAndNothingElse is the table of what the
// deadletters module's retention deletes: a letter replayed or discarded longer
// than retention.emails ago, or parked longer than retention.dead_letters; younger
// ones stay.
func TestRetentionDeletesOldLettersAndNothingElse(t *testing.T) {
	const day = 24 * time.Hour
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		status  string
		age     time.Duration
		deleted bool
	}{
		{"parked", 89 * day, false},
		{"parked", 91 * day, true},
		{"replayed", 29 * day, false},
		{"replayed", 31 * day, true},
		{"discarded", 29 * day, false},
		{"discarded", 31 * day, true},
	} {
		t.Run(fmt.Sprintf("%s %v ago", tc.status, tc.age), func(t *testing.T) {
			cfg := apptest.Config(t)
			db := apptest.Database(t, cfg)
			dc := app.DeadLettersConfig(cfg, "instance")
			dc.Retention.Emails, dc.Retention.DeadLetters, dc.Retention.BatchSize = 30*day, 90*day, 500
			m := deadletters.New(dc, db, outbox.New(), logging.Discard())
			at := now.Add(-tc.age).UnixMilli()
			var resolved any
			if tc.status != "parked" {
				resolved = at
			}
			if err := db.Tx(context.Background(), func(tx *sql.Tx) error {
				_, err := tx.Exec(`INSERT INTO deadletters_letters (dedupe_key, email_id, replay, status, reason, error_class,
					attempts, smtp_reply, original_topic, consumer_group, handler, payload, metadata, created_at, resolved_at)
					VALUES ('k', 'e', 0, ?, 'r', 'c', 1, '', 't', 'g', 'h', x'', '{}', ?, ?)`, tc.status, at, resolved)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			if _, err := m.Sweeper(func() time.Time { return now }).Sweep(context.Background()); err != nil {
				t.Fatalf("Sweep: %v", err)
			}
			var n int
			if err := db.Read.QueryRow(`SELECT COUNT(*) FROM deadletters_letters`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if want := map[bool]int{true: 0, false: 1}[tc.deleted]; n != want {
				t.Errorf("letters left: %d, want %d", n, want)
			}
		})
	}
}
