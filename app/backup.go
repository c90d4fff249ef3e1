package app

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/mailroom/mailroom/platform/config"
	"github.com/mailroom/mailroom/platform/sqlite"
)

// Backup copies the database of cfg (db.path) to path as one consistent snapshot,
// through SQLite's online backup API (see sqlite.Backup): every email, outbox row,
// key and setting the instance had committed when the copy began, in one file that
// a stopped serve can be started on. It takes no lock and never writes to the
// database, so it runs beside a running serve, whose writes go on during the copy.
// force lets it replace a file at path. With no database at db.path it returns an
// error that errors.Is matches with fs.ErrNotExist, saying where it looked.
func Backup(ctx context.Context, cfg *config.Config, path string, force bool) (sqlite.BackupResult, error) {
	res, err := sqlite.Backup(ctx, cfg.DB.Path, path, sqlite.BackupOptions{Force: force})
	var missing *sqlite.NoDatabaseError
	if errors.As(err, &missing) {
		return res, fmt.Errorf("%w (db.path); pass --db or --config naming the instance's database", err)
	}
	return res, err
}

// MigrationReport is the state of the migrations of a database: what `mailroom
// migrate --status` shows.
type MigrationReport struct {
	// Database is db.path, absolute; Exists says whether there is a file there
	// (without one every migration is pending).
	Database string
	Exists   bool
	// Sets lists the platform's migrations, then those of each module of the
	// role (cfg.Modules), in the order they are applied.
	Sets []sqlite.SetStatus
}

// MigrationStatus reports which migrations of the platform and of the modules of
// the role cfg.Modules the database at db.path has applied and which are pending,
// without applying any nor making anything: it opens the database read-only, and
// with no database there it reports every migration pending.
func MigrationStatus(ctx context.Context, cfg *config.Config) (MigrationReport, error) {
	names, err := RoleModules(cfg)
	if err != nil {
		return MigrationReport{}, fmt.Errorf("modules: %w", err)
	}
	abs, err := filepath.Abs(cfg.DB.Path)
	if err != nil {
		return MigrationReport{}, fmt.Errorf("db.path: %w", err)
	}
	report := MigrationReport{Database: abs}
	db, err := sqlite.OpenReadOnly(abs)
	var missing *sqlite.NoDatabaseError
	switch {
	case errors.As(err, &missing):
		db = nil
	case err != nil:
		return report, fmt.Errorf("db.path: %w", err)
	default:
		report.Exists = true
		defer db.Close()
	}
	if report.Sets, err = sqlite.MigrationStatus(ctx, db, migrationSets(names)...); err != nil {
		return report, fmt.Errorf("migration status of %s: %w", abs, err)
	}
	return report, nil
}
