package sqlite

import (
	"database/sql"
	"time"
)

// Times are stored as unix milliseconds; these two convert the optional ones, so
// every module reads and writes them alike.

// MillisOrNull is t in unix milliseconds, or NULL for a nil t.
func MillisOrNull(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UnixMilli()
}

// TimeOrNil is a NULL-able unix-milliseconds column as a UTC time, or nil.
func TimeOrNil(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := time.UnixMilli(v.Int64).UTC()
	return &t
}
