package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// ProbeWrite commits a one-row write (table platform_health, from the platform
// migrations) through Tx and returns its error: what /readyz needs to know, since a
// full disk, a read-only file or an I/O error leave reads, and so Ping, working.
// It costs one small durable commit, shared with whatever else commits then.
func (db *DB) ProbeWrite(ctx context.Context) error {
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		// Not ctx: a statement interrupted mid-way would fail the whole group.
		_, err := tx.ExecContext(context.WithoutCancel(ctx),
			`INSERT INTO platform_health (id, checked_at) VALUES (1, ?)
			 ON CONFLICT (id) DO UPDATE SET checked_at = excluded.checked_at`, time.Now().UnixMilli())
		return err
	})
	if err != nil {
		return fmt.Errorf("write to the database: %w", err)
	}
	return nil
}
