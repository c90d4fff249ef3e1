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
	FS   fs.FS
}

// Migrate applies every pending migration of each set in order.
func Migrate(ctx context.Context, db *DB, sets ...MigrationSet) error {
	for _, set := range sets {
		store, err := database.NewStore(database.DialectSQLite3, "goose_"+set.Name)
		if err != nil {
			return fmt.Errorf("migrations %s: %w", set.Name, err)
		}
		p, err := goose.NewProvider("", db.Write, set.FS, goose.WithStore(store), goose.WithDisableGlobalRegistry(true))
		if err != nil {
			return fmt.Errorf("migrations %s: %w", set.Name, err)
		}
		if _, err := p.Up(ctx); err != nil {
			return fmt.Errorf("migrations %s: %w", set.Name, err)
		}
	}
	return nil
}
