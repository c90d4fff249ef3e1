// Command mailroom is the email dispatch service: one binary that accepts emails
// over HTTP, stores them, and delivers them through a swappable broker.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/mailroom/mailroom/app"
	"github.com/mailroom/mailroom/modules/deadletters"
	"github.com/mailroom/mailroom/platform/config"
	"github.com/mailroom/mailroom/platform/logging"
	"github.com/mailroom/mailroom/platform/outbox"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `usage: mailroom <command> [flags]

commands:
  serve     run every module in one process
  migrate   apply the database migrations and exit
  version   print the version
  dlt       list, replay or discard dead letters:
              mailroom dlt list [--reason TEXT] [--since T] [--until T] [--limit N]
              mailroom dlt replay EMAIL_ID | --all [--reason TEXT] [--since T] [--until T]
              mailroom dlt discard EMAIL_ID

flags (every command): --config PATH, --broker gochannel|kafka, --http-addr HOST:PORT, --db PATH
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, "mailroom", version)
		return 0
	case "help", "--help", "-h":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "YAML config file")
	brokerKind := fs.String("broker", "", "broker kind: gochannel or kafka (broker.kind)")
	httpAddr := fs.String("http-addr", "", "HTTP listen address (http.addr)")
	dbPath := fs.String("db", "", "SQLite database file (db.path)")
	dltReason := fs.String("reason", "", "dlt: only letters whose reason contains this text")
	dltSince := fs.String("since", "", "dlt: only letters dead-lettered at or after this RFC 3339 time")
	dltUntil := fs.String("until", "", "dlt: only letters dead-lettered before this RFC 3339 time")
	dltLimit := fs.Int("limit", 100, "dlt list: most letters to show")
	dltAll := fs.Bool("all", false, "dlt replay: replay every parked letter matching the filter")
	var sub string
	if cmd == "dlt" && len(rest) > 0 {
		sub, rest = rest[0], rest[1:]
	}
	if err := fs.Parse(rest); err != nil {
		return 2
	}
	flags := map[string]string{}
	for key, v := range map[string]string{"broker.kind": *brokerKind, "http.addr": *httpAddr, "db.path": *dbPath} {
		if v != "" {
			flags[key] = v
		}
	}
	cfg, err := config.Load(config.Sources{File: *configPath, Environ: os.Environ(), Flags: flags})
	if err != nil {
		fmt.Fprintln(stderr, "mailroom:", err)
		return 2
	}
	log := logging.New(stderr, cfg.Log.Level, cfg.Log.Format)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	switch cmd {
	case "serve":
		a, err := app.New(cfg, app.WithLogger(log))
		if err != nil {
			fmt.Fprintln(stderr, "mailroom:", err)
			return 1
		}
		if err := a.Run(ctx); err != nil {
			fmt.Fprintln(stderr, "mailroom:", err)
			return 1
		}
		return 0
	case "migrate":
		db, err := app.OpenDatabase(ctx, cfg)
		if err != nil {
			fmt.Fprintln(stderr, "mailroom:", err)
			return 1
		}
		defer db.Close()
		fmt.Fprintln(stdout, "migrations applied to", cfg.DB.Path)
		return 0
	case "dlt":
		return runDLT(ctx, cfg, sub, fs.Args(), dltArgs{*dltReason, *dltSince, *dltUntil, *dltLimit, *dltAll}, stdout, stderr)
	}
	fmt.Fprintf(stderr, "mailroom: unknown command %q\n\n%s", cmd, usage)
	return 2
}

type dltArgs struct {
	reason, since, until string
	limit                int
	all                  bool
}

// runDLT works on the database directly, so it serves a stopped instance as well as
// a running one: a replay is an outbox row, published by whichever instance runs.
func runDLT(ctx context.Context, cfg *config.Config, sub string, args []string, a dltArgs, stdout, stderr io.Writer) int {
	db, err := app.OpenDatabase(ctx, cfg)
	if err != nil {
		fmt.Fprintln(stderr, "mailroom:", err)
		return 1
	}
	defer db.Close()
	m := deadletters.New(app.DeadLettersConfig(cfg), db, outbox.New())
	fail := func(err error) int {
		fmt.Fprintln(stderr, "mailroom dlt:", err)
		return 1
	}
	switch {
	case sub == "list":
		items, err := m.List(ctx, a.reason, a.since, a.until, a.limit)
		if err != nil {
			return fail(err)
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(items); err != nil {
			return fail(err)
		}
		return 0
	case sub == "replay" && a.all:
		n, err := m.ReplayMatching(ctx, a.reason, a.since, a.until)
		if err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "replayed %d\n", n)
		return 0
	case (sub == "replay" || sub == "discard") && len(args) == 1:
		op := m.Replay
		if sub == "discard" {
			op = m.Discard
		}
		if err := op(ctx, args[0]); err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "%sed %s\n", sub, args[0])
		return 0
	}
	return fail(errors.New("usage: mailroom dlt list | replay EMAIL_ID | replay --all [filter] | discard EMAIL_ID"))
}
