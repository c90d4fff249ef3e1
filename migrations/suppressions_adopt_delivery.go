package migrations

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/pressly/goose/v3"
)

// adoptDeliverySuppressions returns suppressions migration 00002. Before the
// suppression list lived on topics.suppressions, the delivery module kept it, in
// delivery_suppressions. Where that table is in the database (an instance that ran
// delivery before the upgrade: `all`, or an old database now serving as an api
// instance) this copies its rows into suppressions_list, with their reasons,
// sources and times, in their order, and marks each for the module to publish to
// the topic once (suppressions_unannounced), so that the workers of a split
// deployment learn them too. The suppressions module migrates after delivery
// (app.ModuleNames), so a database migrated for both has the table by then; one
// without it (an api instance's own database) has nothing to adopt. Going down
// keeps the copies: they are this module's from here on.
func adoptDeliverySuppressions() *goose.Migration {
	return goose.NewGoMigration(2, &goose.GoFunc{RunTx: copyDeliverySuppressions},
		&goose.GoFunc{RunTx: func(context.Context, *sql.Tx) error { return nil }})
}

// copyDeliverySuppressions copies delivery_suppressions into suppressions_list, if
// the database has it.
func copyDeliverySuppressions(ctx context.Context, tx *sql.Tx) error {
	var n int
	if err := tx.QueryRowContext(ctx,
		`SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'delivery_suppressions'`).Scan(&n); err != nil {
		return fmt.Errorf("look for delivery_suppressions: %w", err)
	}
	if n == 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx,
		`INSERT OR IGNORE INTO suppressions_list (address, reason, detail, email_id, source, created_at)
		   SELECT address, reason, detail, email_id, source, created_at FROM delivery_suppressions ORDER BY id`); err != nil {
		return fmt.Errorf("copy delivery_suppressions into suppressions_list: %w", err)
	}
	if _, err := tx.ExecContext(ctx,
		`INSERT OR IGNORE INTO suppressions_unannounced (address) SELECT address FROM delivery_suppressions`); err != nil {
		return fmt.Errorf("mark the adopted suppressions for publishing: %w", err)
	}
	return nil
}
