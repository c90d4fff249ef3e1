package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/pressly/goose/v3"

	"github.com/mailroom/mailroom/app"
	"github.com/mailroom/mailroom/platform/config"
)

// runMigrateStatus prints the migrations of the platform and of each module of the
// role, applied (with when) or pending, applying none, and exits 0 whatever they
// are: it answers a question, and a pending migration is no failure.
func runMigrateStatus(ctx context.Context, cfg *config.Config, stdout, stderr io.Writer) int {
	report, err := app.MigrationStatus(ctx, cfg)
	if err != nil {
		return fail(stderr, "migrate", err)
	}
	printMigrationReport(stdout, report)
	return 0
}

// printMigrationReport writes report as `mailroom migrate --status` shows it: the
// database, then per owner a count and one line per migration, then what to do.
func printMigrationReport(w io.Writer, report app.MigrationReport) {
	if report.Exists {
		fmt.Fprintln(w, "database", report.Database)
	} else {
		fmt.Fprintln(w, "database", report.Database, "(none yet: every migration is pending; serve or migrate makes it)")
	}
	pending := 0
	var newer []string
	for _, set := range report.Sets {
		fmt.Fprintf(w, "%s: %d applied, %d pending\n", set.Name, len(set.Migrations)-set.Pending(), set.Pending())
		for _, m := range set.Migrations {
			state := fmt.Sprintf("%-8s %-20s", "pending", "")
			if m.State == goose.StateApplied {
				state = fmt.Sprintf("%-8s %-20s", "applied", m.AppliedAt.UTC().Format(time.RFC3339))
			}
			fmt.Fprintf(w, "  %s  %s\n", state, migrationName(m.Source))
		}
		for _, v := range set.Unknown {
			fmt.Fprintf(w, "  %-8s %-20s  %05d, which this mailroom does not have\n", "applied", "", v)
			newer = append(newer, fmt.Sprintf("%s %05d", set.Name, v))
		}
		pending += set.Pending()
	}
	switch {
	case len(newer) > 0:
		fmt.Fprintf(w, "a newer mailroom migrated this database (%s): run that version or a later one; migrations are never undone\n",
			strings.Join(newer, ", "))
	case pending > 0:
		fmt.Fprintf(w, "%d pending: mailroom migrate, or the next serve, applies them\n", pending)
	default:
		fmt.Fprintln(w, "nothing pending")
	}
}

// migrationName is a migration's file, or its version for one written in Go.
func migrationName(src *goose.Source) string {
	if src.Path != "" {
		return src.Path
	}
	return fmt.Sprintf("%05d (Go)", src.Version)
}
