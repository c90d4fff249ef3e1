package retention

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/mailroom/mailroom/platform/sqlite"
)

// DeleteBatch is the usual body of a Rule.Delete: in one write transaction of db,
// it selects at most limit ids with selectIDs (a SELECT of one column whose last
// parameter is its LIMIT; args are the others) and runs each statement of deletes
// (a DELETE ending in "IN", such as "DELETE FROM t WHERE id IN") on those ids. It
// returns how many ids it selected.
func DeleteBatch(ctx context.Context, db *sqlite.DB, limit int, selectIDs string, args []any, deletes ...string) (int, error) {
	var n int
	// Not ctx inside: a statement interrupted mid-way would fail the shared group.
	ctx = context.WithoutCancel(ctx)
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		n = 0 // fn may run twice (sqlite.DB.Tx)
		ids, err := selectBatch(ctx, tx, selectIDs, append(append([]any{}, args...), limit))
		if err != nil || len(ids) == 0 {
			return err
		}
		n = len(ids)
		in := " (" + strings.TrimSuffix(strings.Repeat("?,", len(ids)), ",") + ")"
		for _, d := range deletes {
			if _, err := tx.ExecContext(ctx, d+in, ids...); err != nil {
				return fmt.Errorf("%s: %w", d, err)
			}
		}
		return nil
	})
	return n, err
}

func selectBatch(ctx context.Context, tx *sql.Tx, q string, args []any) ([]any, error) {
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", q, err)
	}
	defer rows.Close()
	var ids []any
	for rows.Next() {
		var id any
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// Age is one kind of row a rule deletes: the rows matching Where (a condition with
// Args) whose Column, a time in Unix milliseconds, is older than Period. A Period of
// 0 keeps those rows for ever.
type Age struct {
	Where  string
	Args   []any
	Column string
	Period time.Duration
}

// Older is the condition, for a SELECT in DeleteBatch, of the rows old enough at
// now under any of ages, with its arguments; ok is false when no age has a period,
// and nothing is to be deleted.
func Older(now time.Time, ages ...Age) (where string, args []any, ok bool) {
	var conds []string
	for _, a := range ages {
		if a.Period <= 0 {
			continue
		}
		conds = append(conds, "("+a.Where+" AND "+a.Column+" < ?)")
		args = append(append(args, a.Args...), now.Add(-a.Period).UnixMilli())
	}
	return strings.Join(conds, " OR "), args, len(conds) > 0
}
