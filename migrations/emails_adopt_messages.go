package migrations

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/pressly/goose/v3"
)

// adoptDeliveryMessages returns emails migration 00011. Before the emails module kept
// each email's rendered message (emails_messages, 00010), the delivery module did,
// in delivery_messages, which its migration 00004 drops. Where both modules share a
// database (the `all` role upgraded from such a version) this copies those messages
// into emails_messages first, so GET /api/emails/{id}/raw keeps answering for mail
// rendered before the upgrade. The emails module migrates before delivery
// (app.ModuleNames), so the table is still there to read; where it is not (an api
// instance's own database, a database made after it was dropped) there is nothing
// to adopt and the migration does nothing. Going down keeps the copies: they are
// the emails module's from here on.
func adoptDeliveryMessages() *goose.Migration {
	return goose.NewGoMigration(11, &goose.GoFunc{RunTx: copyDeliveryMessages},
		&goose.GoFunc{RunTx: func(context.Context, *sql.Tx) error { return nil }})
}

// copyDeliveryMessages copies delivery_messages into emails_messages, if the
// database has it.
func copyDeliveryMessages(ctx context.Context, tx *sql.Tx) error {
	var n int
	if err := tx.QueryRowContext(ctx,
		`SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'delivery_messages'`).Scan(&n); err != nil {
		return fmt.Errorf("look for delivery_messages: %w", err)
	}
	if n == 0 {
		return nil
	}
	// A message already in emails_messages came from a later try's event and wins.
	if _, err := tx.ExecContext(ctx,
		`INSERT OR IGNORE INTO emails_messages (email_id, message_id, raw, rendered_at)
			 SELECT d.email_id, d.message_id, d.raw, d.rendered_at
			   FROM delivery_messages d JOIN emails_emails e ON e.id = d.email_id`); err != nil {
		return fmt.Errorf("copy delivery_messages into emails_messages: %w", err)
	}
	return nil
}

// goMigrations makes the migrations written in Go, by owner, numbered in the same
// sequence as the owner's SQL files.
var goMigrations = map[string]func() []*goose.Migration{
	"emails":       func() []*goose.Migration { return []*goose.Migration{adoptDeliveryMessages()} },
	"suppressions": func() []*goose.Migration { return []*goose.Migration{adoptDeliverySuppressions()} },
}

// GoFor returns the migrations of one owner that are written in Go (none for most),
// to apply with its SQL files (sqlite.MigrationSet.Go). Each call makes them anew,
// since goose's providers fill in fields of the migrations they are given.
func GoFor(owner string) []*goose.Migration {
	if build, ok := goMigrations[owner]; ok {
		return build()
	}
	return nil
}
