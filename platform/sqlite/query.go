package sqlite

import (
	"context"
)

// Scanner is what a row is read through: a *sql.Row or a *sql.Rows. Scan functions
// take it so one function reads a row whether it came alone or in a list.
type Scanner interface {
	// Scan copies the row's columns into dest, as database/sql does: one pointer
	// per column, in SELECT order; sql.ErrNoRows from a *sql.Row with no row.
	Scan(dest ...any) error
}

// Query runs q with args on the read pool and returns scan applied to every row, or
// the first error of the query, of a scan, or of the iteration itself (which the
// usual hand-written loop forgets to check). Callers wrap the error with what they
// were reading.
func Query[T any](ctx context.Context, db *DB, scan func(Scanner) (T, error), q string, args ...any) ([]T, error) {
	rows, err := db.Read.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}
