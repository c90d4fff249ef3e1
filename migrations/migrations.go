// Package migrations embeds the SQL migrations of the platform and every module. Each
// owner keeps its files in a folder of its own, applied with its own version table.
package migrations

import (
	"embed"
	"io/fs"
)

//go:embed */*.sql
var files embed.FS

// For returns the migrations of one owner (a module name, or "platform").
func For(owner string) fs.FS {
	sub, err := fs.Sub(files, owner)
	if err != nil {
		panic(err) // fs.Sub fails only for an invalid path, a programming error
	}
	return sub
}
