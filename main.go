// Command mailroom is the email dispatch service: one binary that accepts emails
// over HTTP, stores them, and delivers them through a swappable broker.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/mailroom/mailroom/app"
	"github.com/mailroom/mailroom/platform/config"
	"github.com/mailroom/mailroom/platform/logging"
)

// version, commit and date are set at build time with -ldflags
// "-X main.version=... -X main.commit=... -X main.date=..." (make build and the
// release configuration do): the version, the commit built and that commit's time
// (RFC 3339, UTC). Any left unset is taken, by versionLine, from what the Go
// toolchain recorded in the binary, when it recorded it.
var (
	version = "dev"
	commit  = ""
	date    = ""
)

// buildStamp is what -ldflags set: the version, the commit and its time.
type buildStamp struct {
	version, commit, date string
}

// pseudoVersion matches a Go pseudo-version (v0.0.0-20261125140000-a1b2c3d4e5f6),
// which go build gives an untagged commit: it is a commit, not a release, so it is
// printed as dev with the revision (the pattern of golang.org/x/mod/module).
var pseudoVersion = regexp.MustCompile(`^v[0-9]+\.(0\.0-|\d+\.\d+-([^+]*\.)?0\.)\d{14}-[A-Za-z0-9]+(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$`)

// versionLine is what mailroom version prints, so that a binary says what it was
// built from: the version set with -ldflags, else the module's version when it is a
// release (go install ...@v1.2.3), else dev; then the short commit and its time as
// set with -ldflags, else as the build recorded them (VCS stamping), and whether the
// tree was modified: "mailroom v1.2.0 (a1b2c3d 2026-11-25T14:00:00Z, modified)".
// A binary built by make build says all of it even where the toolchain recorded
// nothing (no git, or -buildvcs=false).
func versionLine(set buildStamp, info *debug.BuildInfo, ok bool) string {
	v, rev, at := set.version, set.commit, set.date
	if v == "" {
		v = "dev"
	}
	modified := false
	if ok && info != nil {
		if mv := info.Main.Version; v == "dev" && mv != "" && mv != "(devel)" && !pseudoVersion.MatchString(mv) {
			v = mv
		}
		recorded := recordedVCS(info)
		if rev == "" {
			rev = recorded.revision
		}
		if at == "" {
			at = recorded.time
		}
		modified = recorded.modified
	}
	if len(rev) > 7 {
		rev = rev[:7]
	}
	var detail []string
	if built := strings.TrimSpace(rev + " " + at); built != "" {
		detail = append(detail, built)
	}
	if modified {
		detail = append(detail, "modified")
	}
	if len(detail) == 0 {
		return "mailroom " + v
	}
	return "mailroom " + v + " (" + strings.Join(detail, ", ") + ")"
}

// vcsStamp is what go build recorded of the checkout it built (-buildvcs).
type vcsStamp struct {
	revision, time string
	modified       bool
}

func recordedVCS(info *debug.BuildInfo) vcsStamp {
	var s vcsStamp
	for _, setting := range info.Settings {
		switch setting.Key {
		case "vcs.revision":
			s.revision = setting.Value
		case "vcs.time":
			s.time = setting.Value
		case "vcs.modified":
			s.modified = setting.Value == "true"
		}
	}
	return s
}

const usage = `usage: mailroom <command> [flags]

commands:
  serve     run the modules of a role: all (the default, every module in one
            process), api (accept and answer: /api, the console) or delivery
            (send): mailroom serve [--modules all|api|delivery]
  migrate   apply the database migrations (of the role's modules) and exit;
            mailroom migrate --status lists them, applied and pending, and applies none
  backup    copy the database of a running (or stopped) instance, consistent, to PATH:
              mailroom backup [--force] PATH
  version   print the version
  dlt       list, replay or discard dead letters:
              mailroom dlt list [--reason TEXT] [--since T] [--until T] [--limit N]
              mailroom dlt replay ID | --all [--reason TEXT] [--since T] [--until T]
              mailroom dlt discard ID
            (ID: an email id, or a letter's "id" from the list: letter-N)
  keys      manage API keys (the key is printed once, by create; only its hash is stored):
              mailroom keys create --name NAME --scope send|admin
                  [--from-domain DOMAIN]... [--from-address ADDRESS]...
              mailroom keys list
              mailroom keys revoke KEY_ID
  suppressions
            manage the suppression list (addresses that get no mail):
              mailroom suppressions list [--address TEXT] [--limit N]
              mailroom suppressions add [--reason TEXT] ADDRESS
              mailroom suppressions remove ADDRESS
  webhooks  manage webhook endpoints (the secret is printed by create and rotate-secret only):
              mailroom webhooks list
              mailroom webhooks create --url URL --events TYPE,TYPE [--description TEXT]
              mailroom webhooks delete|enable|disable|rotate-secret ID
  smtp-check
            connect to the configured mail server as serve would, and say in one
            line what works or what to fix
  kafka     work on Mailroom's Kafka topics:
              mailroom kafka grow-partitions
            (raise each of Mailroom's topics to topics.partitions; never shrinks one)

flags of serve and migrate: --modules all|api|delivery (modules).
flags of serve, migrate, backup, dlt, keys, suppressions, webhooks, smtp-check and kafka: --config PATH, --broker gochannel|kafka,
--http-addr HOST:PORT, --db PATH; flags go before arguments. Without --config, the
file MAILROOM_CONFIG names, if set, is read.
mailroom COMMAND -h lists the flags a command takes.
`

// options holds the value of every flag; each command registers only the flags it
// takes, so a flag of another command is refused rather than ignored.
type options struct {
	config, broker, httpAddr, db string
	modules                      string
	migrateStatus                bool
	force                        bool
	dlt                          dltArgs
	keyName, keyScope            string
	keyFrom                      []string
	suppression                  suppressionArgs
	webhook                      webhookArgs
}

// command is one thing mailroom does, as typed ("serve", "dlt list"), with the flags
// it takes beside the config flags, so that -h lists exactly those and an unknown
// flag is refused by name.
type command struct {
	name    string
	summary string
	// args is the synopsis of the positional arguments ("ID"); maxArgs how many
	// there may be at most.
	args    string
	maxArgs int
	// config says whether the command loads the configuration, and so takes
	// --config, --broker, --http-addr and --db.
	config bool
	flags  func(fs *flag.FlagSet, o *options)
}

// commands lists every command; dlt and keys are groups of the commands under them.
var commands = []command{
	{name: "serve", summary: "run the modules of a role (--modules): all in one process, or api and delivery apart on Kafka",
		config: true, flags: modulesFlag},
	{name: "migrate", summary: "apply the database migrations of the role's modules (--modules) and exit; --status lists them and applies none",
		config: true, flags: func(fs *flag.FlagSet, o *options) {
			modulesFlag(fs, o)
			fs.BoolVar(&o.migrateStatus, "status", false, "list the migrations of the platform and of each module of the role, applied and pending, and apply none")
		}},
	{name: "backup", args: "PATH", maxArgs: 1, config: true,
		summary: "copy the database (db.path), consistent and while serve runs, to PATH: written to PATH.tmp, checked, then renamed",
		flags: func(fs *flag.FlagSet, o *options) {
			fs.BoolVar(&o.force, "force", false, "replace a file at PATH (and a PATH.tmp a killed backup left)")
		}},
	{name: "version", summary: "print the version"},
	{name: "dlt list", summary: "list dead letters as JSON", config: true, flags: func(fs *flag.FlagSet, o *options) {
		dltFilterFlags(fs, o)
		fs.IntVar(&o.dlt.limit, "limit", 100, "most letters to show")
	}},
	{name: "dlt replay", args: "ID | --all [filter flags]", maxArgs: 1, config: true,
		summary: "send a dead letter again from a fresh attempt count (ID: an email id or letter-N)",
		flags: func(fs *flag.FlagSet, o *options) {
			fs.BoolVar(&o.dlt.all, "all", false, "replay every parked letter matching the filter")
			dltFilterFlags(fs, o)
		}},
	{name: "dlt discard", args: "ID", maxArgs: 1, config: true,
		summary: "discard a dead letter; the email stays dead (ID: an email id or letter-N)"},
	{name: "keys create", config: true, summary: "make an API key and print it once", flags: func(fs *flag.FlagSet, o *options) {
		fs.StringVar(&o.keyName, "name", "", "the key's name, to tell keys apart")
		fs.StringVar(&o.keyScope, "scope", "", "send (send and read its own emails) or admin (everything)")
		fs.Var(senderFlag{list: &o.keyFrom, address: false}, "from-domain",
			"a `DOMAIN` the key may send from (exact: subdomains need their own); repeatable")
		fs.Var(senderFlag{list: &o.keyFrom, address: true}, "from-address",
			"an `ADDRESS` the key may send as; repeatable (with neither flag the key may send as anyone)")
	}},
	{name: "keys list", config: true, summary: "list API keys as JSON (never the keys themselves)"},
	{name: "keys revoke", args: "KEY_ID", maxArgs: 1, config: true, summary: "revoke an API key"},
	{name: "suppressions list", config: true, summary: "list suppressed addresses as JSON, newest first", flags: func(fs *flag.FlagSet, o *options) {
		fs.StringVar(&o.suppression.address, "address", "", "only addresses containing this text")
		fs.IntVar(&o.suppression.limit, "limit", 100, "most addresses to show")
	}},
	{name: "suppressions add", args: "ADDRESS", maxArgs: 1, config: true, summary: "suppress an address: later emails skip it",
		flags: func(fs *flag.FlagSet, o *options) {
			fs.StringVar(&o.suppression.reason, "reason", "", "why, for whoever reads the list")
		}},
	{name: "suppressions remove", args: "ADDRESS", maxArgs: 1, config: true, summary: "take an address off the suppression list"},
	{name: "webhooks list", config: true, summary: "list webhook endpoints as JSON (never their secrets)"},
	{name: "webhooks create", config: true, summary: "make a webhook endpoint and print it with its secret, once",
		flags: func(fs *flag.FlagSet, o *options) {
			fs.StringVar(&o.webhook.url, "url", "", "the absolute http(s) URL events are POSTed to")
			fs.StringVar(&o.webhook.events, "events", "", "comma-separated event types, e.g. email.delivered,email.bounced")
			fs.StringVar(&o.webhook.description, "description", "", "what the endpoint is for, for whoever reads the list")
		}},
	{name: "webhooks delete", args: "ID", maxArgs: 1, config: true, summary: "delete a webhook endpoint and its deliveries"},
	{name: "webhooks enable", args: "ID", maxArgs: 1, config: true, summary: "enable a webhook endpoint; its waiting deliveries are tried again"},
	{name: "webhooks disable", args: "ID", maxArgs: 1, config: true, summary: "disable a webhook endpoint; its deliveries wait"},
	{name: "webhooks rotate-secret", args: "ID", maxArgs: 1, config: true, summary: "give a webhook endpoint a new secret and print it; the old one stops signing"},
	{name: "smtp-check", config: true, summary: "connect to the configured mail server and say in one line what works or what to fix"},
	{name: "kafka grow-partitions", config: true,
		summary: "raise each of Mailroom's topics on kafka.brokers to topics.partitions partitions; never shrinks one (moves keys: see docs/kafka.md)"},
}

// senderFlag is --from-domain or --from-address: each use appends one sender to
// list, so both flags fill the one allowed_from list of the key, in order. A value of
// the other kind (an address given as a domain) is refused by the flag, not guessed.
type senderFlag struct {
	list    *[]string
	address bool
}

func (f senderFlag) String() string {
	if f.list == nil {
		return ""
	}
	return strings.Join(*f.list, ",")
}

func (f senderFlag) Set(v string) error {
	switch hasAt := strings.Contains(v, "@"); {
	case f.address && !hasAt:
		return errors.New("an address is local@domain; for a whole domain use --from-domain")
	case !f.address && hasAt:
		return errors.New("a domain has no @; for one address use --from-address")
	}
	*f.list = append(*f.list, v)
	return nil
}

// modulesFlag is --modules of serve and migrate: the role (config key modules), checked
// by checkModulesFlag once the flags are parsed.
func modulesFlag(fs *flag.FlagSet, o *options) {
	fs.StringVar(&o.modules, "modules", "", "the role: all (every module), api (accept and answer) or delivery (send); api and delivery need Kafka (modules)")
}

// checkModulesFlag refuses a --modules value that is no role, naming it, before any
// configuration is read; which roles a broker allows is the config's to say.
func checkModulesFlag(v string) error {
	switch v {
	case "", config.ModulesAll, config.ModulesAPI, config.ModulesDelivery:
		return nil
	}
	return fmt.Errorf("--modules: %q is not %s, %s or %s", v, config.ModulesAll, config.ModulesAPI, config.ModulesDelivery)
}

func dltFilterFlags(fs *flag.FlagSet, o *options) {
	fs.StringVar(&o.dlt.reason, "reason", "", "only letters whose reason contains this text")
	fs.StringVar(&o.dlt.since, "since", "", "only letters dead-lettered at or after this RFC 3339 time")
	fs.StringVar(&o.dlt.until, "until", "", "only letters dead-lettered before this RFC 3339 time")
}

// flagSet is cmd's own flag set. It prints nothing itself: run reports a parse error
// in one line and prints -h to stdout.
func (cmd command) flagSet(o *options) *flag.FlagSet {
	fs := flag.NewFlagSet("mailroom "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	if cmd.config {
		fs.StringVar(&o.config, "config", "", "YAML config file (without it: the file MAILROOM_CONFIG names, if set)")
		fs.StringVar(&o.broker, "broker", "", "broker kind: gochannel or kafka (broker.kind)")
		fs.StringVar(&o.httpAddr, "http-addr", "", "HTTP listen address (http.addr)")
		fs.StringVar(&o.db, "db", "", "SQLite database file (db.path)")
	}
	if cmd.flags != nil {
		cmd.flags(fs, o)
	}
	return fs
}

// help prints cmd's usage and the flags it takes, for -h.
func (cmd command) help(w io.Writer, fs *flag.FlagSet) {
	synopsis := "mailroom " + cmd.name
	if hasFlags(fs) {
		synopsis += " [flags]"
	}
	if cmd.args != "" {
		synopsis += " " + cmd.args
	}
	fmt.Fprintf(w, "usage: %s\n%s\n", synopsis, cmd.summary)
	if hasFlags(fs) {
		fmt.Fprintln(w, "\nflags:")
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
}

func hasFlags(fs *flag.FlagSet) bool {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n > 0
}

// groupHelp prints the commands of a group (dlt, keys).
func groupHelp(w io.Writer, group string) {
	fmt.Fprintf(w, "usage: mailroom %s <command> [flags]\n\ncommands:\n", group)
	for _, c := range commands {
		if sub, ok := strings.CutPrefix(c.name, group+" "); ok {
			fmt.Fprintf(w, "  %-8s %s\n", sub, c.summary)
		}
	}
	fmt.Fprintf(w, "\nmailroom %s COMMAND -h lists the flags a command takes.\n", group)
}

func lookup(name string) (command, bool) {
	for _, c := range commands {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	name, rest := args[0], args[1:]
	switch name {
	case "help", "--help", "-help", "-h":
		fmt.Fprint(stdout, usage)
		return 0
	case "--version", "-version", "-v":
		name = "version"
	case "dlt", "keys", "suppressions", "webhooks", "kafka":
		group := name
		if len(rest) > 0 && isHelp(rest[0]) {
			groupHelp(stdout, group)
			return 0
		}
		if len(rest) == 0 {
			return groupUsage(stderr, group)
		}
		name, rest = group+" "+rest[0], rest[1:]
		if _, ok := lookup(name); !ok {
			return groupUsage(stderr, group)
		}
	}
	cmd, ok := lookup(name)
	if !ok {
		fmt.Fprintf(stderr, "mailroom: unknown command %q (see mailroom -h)\n", name)
		return 2
	}
	var o options
	fs := cmd.flagSet(&o)
	if err := fs.Parse(rest); errors.Is(err, flag.ErrHelp) {
		cmd.help(stdout, fs)
		return 0
	} else if err != nil {
		fmt.Fprintf(stderr, "mailroom %s: %v (see mailroom %s -h)\n", cmd.name, err, cmd.name)
		return 2
	}
	// Flags end at the first argument that is not one, so a stray word would make
	// every flag after it an ignored argument: refuse it before anything runs.
	if extra := fs.Args(); len(extra) > cmd.maxArgs {
		fmt.Fprintf(stderr, "mailroom %s: unexpected argument %q: %s (see mailroom %s -h)\n",
			cmd.name, extra[cmd.maxArgs], cmd.takes(extra[cmd.maxArgs]), cmd.name)
		return 2
	}
	if cmd.name == "version" {
		info, ok := debug.ReadBuildInfo()
		fmt.Fprintln(stdout, versionLine(buildStamp{version, commit, date}, info, ok))
		return 0
	}
	if err := checkModulesFlag(o.modules); err != nil {
		fmt.Fprintf(stderr, "mailroom %s: %v\n", cmd.name, err)
		return 2
	}
	flags := map[string]string{}
	for key, v := range map[string]string{"broker.kind": o.broker, "http.addr": o.httpAddr, "db.path": o.db, "modules": o.modules} {
		if v != "" {
			flags[key] = v
		}
	}
	cfg, err := config.Load(config.Sources{File: o.config, Environ: os.Environ(), Flags: flags})
	if err != nil {
		fmt.Fprintln(stderr, "mailroom:", err)
		return 2
	}
	log := logging.New(stderr, cfg.Log.Level, cfg.Log.Format)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	group, sub, _ := strings.Cut(cmd.name, " ")
	switch group {
	case "serve":
		keyFile, err := firstKeyFile(cfg.DB.Path, os.Getenv)
		if err != nil {
			fmt.Fprintln(stderr, "mailroom:", err)
			return 1
		}
		a, err := app.New(cfg, app.WithLogger(log), app.WithNotices(stderr), app.WithFirstKeyFile(keyFile))
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
		if o.migrateStatus {
			return runMigrateStatus(ctx, cfg, stdout, stderr)
		}
		db, err := app.OpenDatabase(ctx, cfg)
		if err != nil {
			fmt.Fprintln(stderr, "mailroom:", err)
			return 1
		}
		defer db.Close()
		fmt.Fprintln(stdout, "migrations applied to", cfg.DB.Path)
		return 0
	case "backup":
		return runBackup(ctx, cfg, fs.Args(), o.force, stdout, stderr)
	case "dlt":
		return runDLT(ctx, cfg, sub, fs.Args(), o.dlt, stdout, stderr)
	case "suppressions":
		return runSuppressions(ctx, cfg, sub, fs.Args(), o.suppression, stdout, stderr)
	case "webhooks":
		return runWebhooks(ctx, cfg, sub, fs.Args(), o.webhook, stdout, stderr)
	case "kafka": // grow-partitions, the group's one command
		return runGrowPartitions(cfg, stdout, stderr)
	case "smtp-check":
		line, err := app.CheckSMTP(ctx, cfg)
		if err != nil {
			return fail(stderr, "smtp-check", err)
		}
		fmt.Fprintln(stdout, "mailroom smtp-check:", line)
		return 0
	default: // keys
		return runKeys(ctx, cfg, sub, fs.Args(), o.keyName, o.keyScope, o.keyFrom, stdout, stderr)
	}
}

// firstKeyFileName is the file, beside the database, that serve writes the first
// admin key to under systemd.
const firstKeyFileName = "first-admin-key"

// firstKeyFile is where serve puts the admin key it makes at first start: "" (the
// notice on stderr, a terminal) unless systemd runs it, which it tells by
// INVOCATION_ID (set for every unit) or JOURNAL_STREAM (set when stderr is the
// journal). There stderr is the journal, kept and read by more people than the key
// should be, so the key goes to first-admin-key beside the database (db.path), in
// the service's state directory, as an absolute path for the message naming it.
func firstKeyFile(dbPath string, getenv func(string) string) (string, error) {
	if getenv("INVOCATION_ID") == "" && getenv("JOURNAL_STREAM") == "" {
		return "", nil
	}
	path, err := filepath.Abs(filepath.Join(filepath.Dir(dbPath), firstKeyFileName))
	if err != nil {
		return "", fmt.Errorf("the first admin key's file beside %s: %w", dbPath, err)
	}
	return path, nil
}

// takes says what cmd takes, for the error refusing arg.
func (cmd command) takes(arg string) string {
	what := cmd.name + " takes no arguments"
	if cmd.maxArgs > 0 {
		what = cmd.name + " takes one argument, " + strings.Fields(cmd.args)[0]
	}
	if strings.HasPrefix(arg, "-") {
		what += "; flags go before arguments"
	}
	return what
}

func isHelp(arg string) bool {
	switch arg {
	case "-h", "-help", "--help", "help":
		return true
	}
	return false
}

// groupUsage refuses a group (dlt, keys) without a known command after it.
func groupUsage(stderr io.Writer, group string) int {
	var subs []string
	for _, c := range commands {
		if sub, ok := strings.CutPrefix(c.name, group+" "); ok {
			subs = append(subs, sub)
		}
	}
	fmt.Fprintf(stderr, "mailroom %s: usage: mailroom %s %s (see mailroom %s -h)\n", group, group, strings.Join(subs, "|"), group)
	return 1
}

type dltArgs struct {
	reason, since, until string
	limit                int
	all                  bool
}

// runDLT works on the database directly, so it serves a stopped instance as well as
// a running one: a replay is an outbox row, published by whichever instance runs.
func runDLT(ctx context.Context, cfg *config.Config, sub string, args []string, a dltArgs, stdout, stderr io.Writer) int {
	filtered := a.reason != "" || a.since != "" || a.until != ""
	switch {
	case sub == "list" && len(args) == 0:
	case sub == "replay" && a.all && len(args) == 0:
	case sub == "replay" && !a.all && filtered:
		return fail(stderr, "dlt", errors.New("--reason, --since and --until choose the letters of replay --all; with one ID they would be ignored"))
	case (sub == "replay" || sub == "discard") && !a.all && len(args) == 1:
	default:
		return fail(stderr, "dlt", errors.New("usage: mailroom dlt list | replay ID | replay --all [filter] | discard ID (ID: email id or letter-N)"))
	}
	return withAdmin(ctx, cfg, "dlt", stdout, stderr, func(adm *app.Admin) error {
		f := app.DeadLetterFilter{Reason: a.reason, Since: a.since, Until: a.until}
		switch {
		case sub == "list":
			return adm.ListDeadLetters(ctx, f, a.limit)
		case sub == "replay" && a.all:
			return adm.ReplayDeadLetters(ctx, f)
		case sub == "replay":
			return adm.ReplayDeadLetter(ctx, args[0])
		default: // discard, checked above
			return adm.DiscardDeadLetter(ctx, args[0])
		}
	})
}

// runKeys manages API keys on the database directly, like runDLT: a key created or
// revoked here works, or stops working, at once in every instance on that database.
// create prints the key alone on stdout (so scripts can capture it) and what to do
// with it on stderr.
func runKeys(ctx context.Context, cfg *config.Config, sub string, args []string, name, scope string, allowedFrom []string, stdout, stderr io.Writer) int {
	switch {
	case sub == "create" && len(args) == 0:
	case sub == "list" && len(args) == 0:
	case sub == "revoke" && len(args) == 1:
	default:
		return fail(stderr, "keys", errors.New("usage: mailroom keys create --name NAME --scope send|admin [--from-domain D]... [--from-address A]... | list | revoke KEY_ID"))
	}
	return withAdmin(ctx, cfg, "keys", stdout, stderr, func(adm *app.Admin) error {
		switch sub {
		case "create":
			return adm.CreateKey(ctx, name, scope, allowedFrom)
		case "list":
			return adm.ListKeys(ctx)
		default: // revoke
			return adm.RevokeKey(ctx, args[0])
		}
	})
}

type suppressionArgs struct {
	address, reason string
	limit           int
}

// runSuppressions manages the suppression list on the database directly, like
// runKeys: an address added or removed here counts at once for every instance on
// that database.
func runSuppressions(ctx context.Context, cfg *config.Config, sub string, args []string, a suppressionArgs, stdout, stderr io.Writer) int {
	switch {
	case sub == "list" && len(args) == 0:
	case (sub == "add" || sub == "remove") && len(args) == 1:
	default:
		return fail(stderr, "suppressions", errors.New("usage: mailroom suppressions list [--address TEXT] | add [--reason TEXT] ADDRESS | remove ADDRESS"))
	}
	return withAdmin(ctx, cfg, "suppressions", stdout, stderr, func(adm *app.Admin) error {
		switch sub {
		case "list":
			return adm.ListSuppressions(ctx, a.address, a.limit)
		case "add":
			return adm.AddSuppression(ctx, args[0], a.reason)
		default: // remove
			return adm.RemoveSuppression(ctx, args[0])
		}
	})
}

type webhookArgs struct {
	url, events, description string
}

// runWebhooks manages webhook endpoints on the database directly, like runKeys: an
// endpoint made, changed or deleted here counts at once for the instance serving
// that database.
func runWebhooks(ctx context.Context, cfg *config.Config, sub string, args []string, a webhookArgs, stdout, stderr io.Writer) int {
	switch {
	case sub == "list" && len(args) == 0:
	case sub == "create" && len(args) == 0:
	case (sub == "delete" || sub == "enable" || sub == "disable" || sub == "rotate-secret") && len(args) == 1:
	default:
		return fail(stderr, "webhooks", errors.New("usage: mailroom webhooks list | create --url URL --events TYPE,TYPE [--description TEXT] | delete ID | enable ID | disable ID | rotate-secret ID"))
	}
	return withAdmin(ctx, cfg, "webhooks", stdout, stderr, func(adm *app.Admin) error {
		switch sub {
		case "list":
			return adm.ListWebhooks(ctx)
		case "create":
			var events []string
			if a.events != "" {
				events = strings.Split(a.events, ",")
			}
			return adm.CreateWebhook(ctx, a.url, events, a.description)
		case "delete":
			return adm.DeleteWebhook(ctx, args[0])
		case "enable", "disable":
			return adm.SetWebhookEnabled(ctx, args[0], sub == "enable")
		default: // rotate-secret
			return adm.RotateWebhookSecret(ctx, args[0])
		}
	})
}

// runGrowPartitions prints one line per topic, as app.GrowPartitions left it
// ("email.send: 3 → 6", "email.events: already 6"), then any error as the one line
// of its failure (on one line, whatever the error).
func runGrowPartitions(cfg *config.Config, stdout, stderr io.Writer) int {
	counts, err := app.GrowPartitions(cfg)
	for _, c := range counts {
		fmt.Fprintln(stdout, c)
	}
	if err != nil {
		// Sarama joins the error of each broker it tried, one per line.
		return fail(stderr, "kafka grow-partitions", errors.New(strings.ReplaceAll(err.Error(), "\n", "; ")))
	}
	return 0
}

// withAdmin opens the database of cfg for the admin commands of group (which
// refuses a database that does not exist), runs do and closes it, and returns the
// exit code.
func withAdmin(ctx context.Context, cfg *config.Config, group string, stdout, stderr io.Writer, do func(*app.Admin) error) int {
	adm, err := app.OpenAdmin(ctx, cfg, stdout, stderr)
	if err != nil {
		return fail(stderr, group, err)
	}
	defer adm.Close()
	if err := do(adm); err != nil {
		return fail(stderr, group, err)
	}
	return 0
}

// fail prints err as the one line of command group's failure and returns exit code 1.
func fail(stderr io.Writer, group string, err error) int {
	fmt.Fprintf(stderr, "mailroom %s: %v\n", group, err)
	return 1
}
