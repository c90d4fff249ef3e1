package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"time"

	"github.com/mailroom/mailroom/app"
	"github.com/mailroom/mailroom/platform/config"
)

// runBackup copies the database of cfg to the one path in args (see app.Backup)
// and prints one line on stdout: where, how large, how many pages, how long.
func runBackup(ctx context.Context, cfg *config.Config, args []string, force bool, stdout, stderr io.Writer) int {
	if len(args) != 1 {
		return fail(stderr, "backup", errors.New("usage: mailroom backup [--force] PATH (flags go before PATH)"))
	}
	res, err := app.Backup(ctx, cfg, args[0], force)
	if errors.Is(err, fs.ErrExist) {
		err = fmt.Errorf("%w; pass --force to replace it", err)
	}
	if err != nil {
		return fail(stderr, "backup", err)
	}
	fmt.Fprintf(stdout, "mailroom backup: %s, %d bytes (%.1f MiB), %d pages, %s\n",
		res.Path, res.Bytes, float64(res.Bytes)/(1<<20), res.Pages, res.Took.Round(time.Millisecond))
	return 0
}
