package migrations

import "github.com/pressly/goose/v3"

// goMigrations makes the migrations written in Go, by owner, numbered in the same
// sequence as the owner's SQL files.
var goMigrations = map[string]func() []*goose.Migration{
	"suppressions": func() []*goose.Migration { return []*goose.Migration{adoptDeliverySuppressions()} },
}

// GoFor returns the migrations of one owner that are written in Go (none for most),
// to apply with its SQL files (sqlite.MigrationSet.Go). Each call makes them anew,
// since goose's providers fill in fields of the migrations they are given.
func GoFor(owner string) []*goose.Migration {
	if build, ok := goMigrations[owner]; ok {
		return build()
	}
	return nil
}
