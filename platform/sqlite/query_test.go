package sqlite_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/mailroom/mailroom/platform/sqlite"
)

func scanName(s sqlite.Scanner) (string, error) {
	var name string
	err := s.Scan(&name)
	return name, err
}

func TestQueryReturnsEveryRowInOrder(t *testing.T) {
	db := openDB(t)
	exec(t, db.Write, `CREATE TABLE names (id INTEGER PRIMARY KEY, name TEXT NOT NULL)`)
	exec(t, db.Write, `INSERT INTO names (name) VALUES ('ada'), ('grace'), ('edsger')`)

	got, err := sqlite.Query(context.Background(), db, scanName, `SELECT name FROM names WHERE id > ? ORDER BY id`, 1)
	if err != nil {
		t.Fatalf("Query: %v", err)
	}
	if want := []string{"grace", "edsger"}; !slices.Equal(got, want) {
		t.Fatalf("Query = %q, want %q", got, want)
	}

	none, err := sqlite.Query(context.Background(), db, scanName, `SELECT name FROM names WHERE id > 9`)
	if err != nil || len(none) != 0 {
		t.Fatalf("Query of no rows = %q, %v; want none, no error", none, err)
	}
}

func TestQueryReturnsTheErrorOfTheQueryOrOfAScan(t *testing.T) {
	db := openDB(t)
	exec(t, db.Write, `CREATE TABLE names (id INTEGER PRIMARY KEY, name TEXT NOT NULL)`)
	exec(t, db.Write, `INSERT INTO names (name) VALUES ('ada'), ('grace')`)

	if _, err := sqlite.Query(context.Background(), db, scanName, `SELECT name FROM no_such_table`); err == nil {
		t.Fatal("Query of a missing table: no error")
	}
	bad := errors.New("row 2 is bad")
	calls := 0
	_, err := sqlite.Query(context.Background(), db, func(s sqlite.Scanner) (string, error) {
		calls++
		name, err := scanName(s)
		if calls == 2 {
			return "", bad
		}
		return name, err
	}, `SELECT name FROM names ORDER BY id`)
	if !errors.Is(err, bad) || calls != 2 {
		t.Fatalf("Query with a failing scan: err %v after %d scans; want %v after 2", err, calls, bad)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := sqlite.Query(ctx, db, scanName, `SELECT name FROM names`); !errors.Is(err, context.Canceled) {
		t.Fatalf("Query with a cancelled context: %v, want context.Canceled", err)
	}
}
