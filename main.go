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
	"github.com/mailroom/mailroom/modules/apikeys"
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
              mailroom dlt replay ID | --all [--reason TEXT] [--since T] [--until T]
              mailroom dlt discard ID
            (ID: an email id, or a letter's "id" from the list: letter-N)
  keys      manage API keys (the key is printed once, by create; only its hash is stored):
              mailroom keys create --name NAME --scope send|admin
              mailroom keys list
              mailroom keys revoke KEY_ID

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
	keyName := fs.String("name", "", "keys create: the key's name, to tell keys apart")
	keyScope := fs.String("scope", "", "keys create: send (send and read its own emails) or admin (everything)")
	var sub string
	if (cmd == "dlt" || cmd == "keys") && len(rest) > 0 {
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
		a, err := app.New(cfg, app.WithLogger(log), app.WithNotices(stderr))
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
	case "keys":
		return runKeys(ctx, cfg, sub, fs.Args(), *keyName, *keyScope, stdout, stderr)
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
	id, err := db.InstanceID(ctx)
	if err != nil {
		fmt.Fprintln(stderr, "mailroom:", err)
		return 1
	}
	m := deadletters.New(app.DeadLettersConfig(cfg, id), db, outbox.New(), logging.Discard())
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
	return fail(errors.New("usage: mailroom dlt list | replay ID | replay --all [filter] | discard ID (ID: email id or letter-N)"))
}

// runKeys manages API keys on the database directly, like runDLT: a key created or
// revoked here works, or stops working, at once in every instance on that database.
// create prints the key alone on stdout (so scripts can capture it) and what to do
// with it on stderr.
func runKeys(ctx context.Context, cfg *config.Config, sub string, args []string, name, scope string, stdout, stderr io.Writer) int {
	fail := func(err error) int {
		fmt.Fprintln(stderr, "mailroom keys:", err)
		return 1
	}
	usage := errors.New("usage: mailroom keys create --name NAME --scope send|admin | list | revoke KEY_ID")
	switch {
	case sub == "create" && len(args) == 0:
	case sub == "list" && len(args) == 0:
	case sub == "revoke" && len(args) == 1:
	default:
		return fail(usage)
	}
	db, err := app.OpenDatabase(ctx, cfg)
	if err != nil {
		fmt.Fprintln(stderr, "mailroom:", err)
		return 1
	}
	defer db.Close()
	m := apikeys.New(app.APIKeysConfig(cfg, stderr), db, logging.Discard())
	switch sub {
	case "create":
		k, err := m.Create(ctx, name, scope)
		if err != nil {
			return fail(err)
		}
		fmt.Fprintln(stdout, k.Key)
		fmt.Fprintf(stderr, "created API key %s (name %q, scope %s, prefix %s).\n"+
			"Keep the key printed above: it is shown only this once, and only its hash is stored.\n",
			k.ID, k.Name, k.Scope, k.Prefix)
		return 0
	case "list":
		keys, err := m.List(ctx)
		if err != nil {
			return fail(err)
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(keys); err != nil {
			return fail(err)
		}
		return 0
	default: // revoke
		k, err := m.Revoke(ctx, args[0])
		if err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "revoked %s (%s)\n", k.ID, k.Name)
		return 0
	}
}
