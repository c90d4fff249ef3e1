package delivery_test

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/mailroom/mailroom/app"
	"github.com/mailroom/mailroom/app/apptest"
	"github.com/mailroom/mailroom/modules/delivery"
	"github.com/mailroom/mailroom/platform/logging"
	"github.com/mailroom/mailroom/platform/outbox"
)

// TestRetentionDeletesFinalDeliveryRecordsPastTheirPeriodAndNothingElse is the
// table of what the delivery module's retention deletes: an email's state goes
// once its delivery is sent past retention.emails or dead past
// retention.dead_letters; younger ones, and retrying ones of any age, stay. (The
// rendered message is the emails module's, deleted with the email.)
func TestRetentionDeletesFinalDeliveryRecordsPastTheirPeriodAndNothingElse(t *testing.T) {
	const day = 24 * time.Hour
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		status  string
		age     time.Duration
		deleted bool
	}{
		{"sent", 31 * day, true},
		{"sent", 29 * day, false},
		{"dead", 31 * day, false},
		{"dead", 91 * day, true},
		{"retrying", 400 * day, false},
	} {
		t.Run(fmt.Sprintf("%s %v ago", tc.status, tc.age), func(t *testing.T) {
			cfg := apptest.Config(t)
			db := apptest.Database(t, cfg)
			dc := app.DeliveryConfig(cfg)
			dc.Retention.Emails, dc.Retention.DeadLetters, dc.Retention.BatchSize = 30*day, 90*day, 500
			m, err := delivery.New(dc, db, outbox.New(), logging.Discard(), nil)
			if err != nil {
				t.Fatal(err)
			}
			at := now.Add(-tc.age).UnixMilli()
			if err := db.Tx(context.Background(), func(tx *sql.Tx) error {
				_, err := tx.Exec(`INSERT INTO delivery_state (email_id, replay, attempts, status, updated_at) VALUES ('e', 0, 1, ?, ?)`, tc.status, at)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			if _, err := m.Sweeper(func() time.Time { return now }).Sweep(context.Background()); err != nil {
				t.Fatalf("Sweep: %v", err)
			}
			want := 1
			if tc.deleted {
				want = 0
			}
			for _, table := range []string{"delivery_state"} {
				var n int
				if err := db.Read.QueryRow(`SELECT COUNT(*) FROM ` + table).Scan(&n); err != nil {
					t.Fatal(err)
				}
				if n != want {
					t.Errorf("%s rows: %d, want %d", table, n, want)
				}
			}
		})
	}
}
