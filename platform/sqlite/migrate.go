package sqlite

import (
	"context"
	"fmt"
	"io/fs"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/database"
)

// MigrationSet is one owner's migrations. Each module keeps its own version table
// (goose_<name>), so modules add migrations without renumbering each other's.
type MigrationSet struct {
	Name string
	// FS holds the owner's SQL migrations (NNNNN_name.sql).
	FS fs.FS
	// Go holds the owner's migrations that plain SQL cannot state (one that
	// depends on whether a table exists, say), numbered in the same sequence as
	// the SQL files and applied in version order with them.
	Go []*goose.Migration
}

// Migrate applies every pending migration of each set in order.
func Migrate(ctx context.Context, db *DB, sets ...MigrationSet) error {
	for _, set := range sets {
		store, err := database.NewStore(database.DialectSQLite3, "goose_"+set.Name)
		if err != nil {
			return fmt.Errorf("migrations %s: %w", set.Name, err)
		}
		p, err := goose.NewProvider("", db.Write, set.FS, goose.WithStore(store), goose.WithDisableGlobalRegistry(true),
			goose.WithGoMigrations(set.Go...))
		if err != nil {
			return fmt.Errorf("migrations %s: %w", set.Name, err)
		}
		if _, err := p.Up(ctx); err != nil {
			return fmt.Errorf("migrations %s: %w", set.Name, err)
		}
	}
	return nil
}
