package sqlite

import (
	"context"
	"fmt"
)

// InstanceID returns the id the platform migrations made for this database (table
// platform_instance): random, made once, so it is stable across restarts and tells
// apart instances that each have a database of their own. Kafka consumer groups that
// every instance needs a copy of are named after it.
func (db *DB) InstanceID(ctx context.Context) (string, error) {
	var id string
	if err := db.Read.QueryRowContext(ctx, `SELECT id FROM platform_instance WHERE slot = 1`).Scan(&id); err != nil {
		return "", fmt.Errorf("read the instance id of %s: %w", db.path, err)
	}
	return id, nil
}
