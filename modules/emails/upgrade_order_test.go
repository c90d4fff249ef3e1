package emails_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/mailroom/mailroom/app"
	"github.com/mailroom/mailroom/app/apptest"
	"github.com/mailroom/mailroom/platform/sqlite"
)

// Emails stored before the order rule (emails migration 00012) get the replay each
// is in from its timeline (one "replayed" entry per replay), and each recipient the
// try that last reported it (its attempts, in that replay), so that a late report
// of an earlier try is refused for them as for new ones.
func TestTheUpgradeGivesEmailsStoredBeforeTheOrderRuleTheirReplayAndEachRecipientItsTry(t *testing.T) {
	cfg := apptest.Config(t)
	ctx := context.Background()
	db, err := app.OpenDatabase(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`ALTER TABLE emails_recipients DROP COLUMN try_attempt`,
		`ALTER TABLE emails_recipients DROP COLUMN try_replay`,
		`ALTER TABLE emails_emails DROP COLUMN replay`,
		`DELETE FROM goose_emails WHERE version_id >= 12`,
	} {
		exec(t, db, q)
	}
	at := time.Now().Add(-time.Hour)
	insertEmail(t, db, "replayed-twice", "retrying", at)
	insertEmail(t, db, "never-replayed", "retrying", at)
	exec(t, db, `UPDATE emails_recipients SET status = 'deferred', attempts = 3`)
	exec(t, db, `INSERT INTO emails_recipients (email_id, position, address, type, status, attempts, updated_at)
		VALUES ('replayed-twice', 1, 'c@example.com', 'cc', 'delivered', 0, ?)`, at.UnixMilli())
	for i := range 2 {
		exec(t, db, `INSERT INTO emails_events (email_id, type, at, detail) VALUES ('replayed-twice', 'replayed', ?, ?)`,
			at.UnixMilli(), fmt.Sprintf("replay %d", i+1))
	}
	db.Close()

	db, err = app.OpenDatabase(ctx, cfg) // migrates again: 00012 and what follows
	if err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	for _, tc := range []struct {
		email            string
		replay           int
		recipient        string
		tryReplay, tryAt int
	}{
		{"replayed-twice", 2, "b@example.com", 2, 3},
		{"replayed-twice", 2, "c@example.com", 2, 0},
		{"never-replayed", 0, "b@example.com", 0, 3},
	} {
		if got := queryInt(t, db, `SELECT replay FROM emails_emails WHERE id = ?`, tc.email); got != tc.replay {
			t.Errorf("%s: replay %d, want %d", tc.email, got, tc.replay)
		}
		r := queryInt(t, db, `SELECT try_replay FROM emails_recipients WHERE email_id = ? AND address = ?`, tc.email, tc.recipient)
		a := queryInt(t, db, `SELECT try_attempt FROM emails_recipients WHERE email_id = ? AND address = ?`, tc.email, tc.recipient)
		if r != tc.tryReplay || a != tc.tryAt {
			t.Errorf("%s, %s: try (%d, %d), want (%d, %d)", tc.email, tc.recipient, r, a, tc.tryReplay, tc.tryAt)
		}
	}
}

func queryInt(t *testing.T, db *sqlite.DB, q string, args ...any) int {
	t.Helper()
	var n int
	if err := db.Read.QueryRow(q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}
