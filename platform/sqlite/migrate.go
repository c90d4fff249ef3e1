package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

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

// versionTable is the table in which goose records which of set's migrations are
// applied.
func (set MigrationSet) versionTable() string { return "goose_" + set.Name }

// provider is goose's Provider of set's migrations on db, and its version store.
func (set MigrationSet) provider(db *sql.DB) (*goose.Provider, database.Store, error) {
	store, err := database.NewStore(database.DialectSQLite3, set.versionTable())
	if err != nil {
		return nil, nil, fmt.Errorf("migrations %s: %w", set.Name, err)
	}
	p, err := goose.NewProvider("", db, set.FS, goose.WithStore(store), goose.WithDisableGlobalRegistry(true),
		goose.WithGoMigrations(set.Go...))
	if err != nil {
		return nil, nil, fmt.Errorf("migrations %s: %w", set.Name, err)
	}
	return p, store, nil
}

// Migrate applies every pending migration of each set in order.
func Migrate(ctx context.Context, db *DB, sets ...MigrationSet) error {
	for _, set := range sets {
		p, _, err := set.provider(db.Write)
		if err != nil {
			return err
		}
		if _, err := p.Up(ctx); err != nil {
			return fmt.Errorf("migrations %s: %w", set.Name, err)
		}
	}
	return nil
}

// SetStatus is one MigrationSet as a database has it.
type SetStatus struct {
	// Name is the set's (MigrationSet.Name).
	Name string
	// Migrations lists the set's migrations in version order, each applied (with
	// the time goose recorded) or pending: goose's Provider.Status.
	Migrations []*goose.MigrationStatus
	// Unknown lists the versions the database records as applied that the set
	// does not hold, in order: a newer Mailroom migrated this database.
	Unknown []int64
}

// Pending counts the set's migrations not applied.
func (s SetStatus) Pending() int {
	n := 0
	for _, m := range s.Migrations {
		if m.State == goose.StatePending {
			n++
		}
	}
	return n
}

// MigrationStatus says, for each set, which of its migrations the database that db
// reads has applied and which are pending, and what it has applied that the set
// does not hold. It only reads, so db may be read-only (see OpenReadOnly): a set
// whose version table does not exist has every migration pending (goose's
// Provider.Status would create the table first). A nil db stands for a database
// that does not exist yet: everything is pending.
func MigrationStatus(ctx context.Context, db *sql.DB, sets ...MigrationSet) ([]SetStatus, error) {
	out := make([]SetStatus, 0, len(sets))
	for _, set := range sets {
		st, err := setStatus(ctx, db, set)
		if err != nil {
			return nil, fmt.Errorf("migrations %s: %w", set.Name, err)
		}
		out = append(out, st)
	}
	return out, nil
}

func setStatus(ctx context.Context, db *sql.DB, set MigrationSet) (SetStatus, error) {
	st := SetStatus{Name: set.Name}
	exists := false
	if db != nil {
		var n int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?`,
			set.versionTable()).Scan(&n); err != nil {
			return st, fmt.Errorf("look for %s: %w", set.versionTable(), err)
		}
		exists = n > 0
	}
	if !exists {
		// No database, or none of set's migrations applied: every one is pending.
		if db == nil {
			db = sql.OpenDB(noDatabase{})
			defer db.Close()
		}
		p, _, err := set.provider(db)
		if err != nil {
			return st, err
		}
		for _, src := range p.ListSources() {
			st.Migrations = append(st.Migrations, &goose.MigrationStatus{Source: src, State: goose.StatePending})
		}
		return st, nil
	}
	p, store, err := set.provider(db)
	if err != nil {
		return st, err
	}
	if st.Migrations, err = p.Status(ctx); err != nil {
		return st, err
	}
	applied, err := store.ListMigrations(ctx, db)
	if err != nil {
		return st, err
	}
	known := map[int64]bool{0: true} // goose's own first row
	for _, src := range p.ListSources() {
		known[src.Version] = true
	}
	for _, m := range applied {
		if m.IsApplied && !known[m.Version] && !slices.Contains(st.Unknown, m.Version) {
			st.Unknown = append(st.Unknown, m.Version)
		}
	}
	slices.Sort(st.Unknown)
	return st, nil
}

// noDatabase connects to nothing: it stands for a database that does not exist
// where goose.NewProvider wants a *sql.DB, to list the sources (which reads none).
type noDatabase struct{}

func (noDatabase) Connect(context.Context) (driver.Conn, error) {
	return nil, errors.New("no database")
}
func (noDatabase) Driver() driver.Driver { return sqliteDriver }

// OpenReadOnly opens the database at path for reading only, as a pool of
// connections that never write the database file nor checkpoint its WAL; with no
// file there it returns a *NoDatabaseError and makes nothing. It is for commands
// that look at a database, a running server's included, without changing it
// (mailroom migrate --status).
func OpenReadOnly(path string) (*sql.DB, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("db.path %s: %w", path, err)
	}
	file, err := os.Stat(abs)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &NoDatabaseError{Path: abs}
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", abs, err)
	}
	db := sql.OpenDB(&fileConnector{dsn: readOnlyDSN(abs), path: abs, file: file})
	if err := db.Ping(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", abs, err)
	}
	return db, nil
}
