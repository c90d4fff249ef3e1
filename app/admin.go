package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/mailroom/mailroom/modules/apikeys"
	"github.com/mailroom/mailroom/modules/deadletters"
	"github.com/mailroom/mailroom/modules/delivery"
	"github.com/mailroom/mailroom/modules/suppressions"
	"github.com/mailroom/mailroom/modules/webhooks"
	"github.com/mailroom/mailroom/platform/config"
	"github.com/mailroom/mailroom/platform/logging"
	"github.com/mailroom/mailroom/platform/outbox"
	"github.com/mailroom/mailroom/platform/sqlite"
)

// Admin runs the operator's commands (`mailroom keys ...`, `mailroom dlt ...`) on the
// database of a config, with the modules a server on that database has, built from
// the same config: a key made here works at once on every server of that database,
// and a replay is an outbox row that whichever server runs there publishes. It takes
// no lock, so it works beside a running serve as well as on a stopped one's
// database. Each command writes what it has to say to the Admin's stdout and
// stderr, as the CLI prints it, and returns an error for the CLI to print.
type Admin struct {
	db       *sqlite.DB
	keys     *apikeys.Module
	letters  *deadletters.Module
	supp     *suppressions.Module
	webhooks *webhooks.Module
	stdout   io.Writer
	stderr   io.Writer
}

// OpenAdmin opens the database at db.path for the admin commands, applying any
// pending migration, and says on stderr which database it is
// ("mailroom: database /abs/path"). The database must exist: OpenAdmin never makes
// a file or a directory, since a command run from the wrong folder would otherwise
// act on a new empty database that no server reads (a key made there is refused
// everywhere). Without one it returns an error that errors.Is matches with
// fs.ErrNotExist and that says where it looked and what to do. Close the Admin
// when done.
func OpenAdmin(ctx context.Context, cfg *config.Config, stdout, stderr io.Writer) (*Admin, error) {
	db, err := openExistingDatabase(ctx, cfg)
	if err != nil {
		return nil, err
	}
	id, err := db.InstanceID(ctx)
	if err != nil {
		db.Close()
		return nil, err
	}
	fmt.Fprintln(stderr, "mailroom: database", db.Path())
	return &Admin{
		db:       db,
		keys:     apikeys.New(APIKeysConfig(cfg, stderr), db, logging.Discard()),
		letters:  deadletters.New(DeadLettersConfig(cfg, id), db, outbox.New(), logging.Discard()),
		supp:     suppressions.New(SuppressionsConfig(cfg, id), db, outbox.New(), logging.Discard()),
		webhooks: webhooks.New(WebhooksConfig(cfg, id), db, logging.Discard(), nil),
		stdout:   stdout,
		stderr:   stderr,
	}, nil
}

// openExistingDatabase is OpenDatabase for a database that must exist already.
func openExistingDatabase(ctx context.Context, cfg *config.Config) (*sqlite.DB, error) {
	db, err := sqlite.OpenExisting(cfg.DB.Path)
	var missing *sqlite.NoDatabaseError
	switch {
	case errors.As(err, &missing):
		return nil, fmt.Errorf("%w (db.path); start mailroom serve there first, or pass --db", err)
	case err != nil:
		return nil, fmt.Errorf("db.path: %w", err)
	}
	if err := migrate(ctx, db, ModuleNames); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// Close closes the database.
func (a *Admin) Close() error { return a.db.Close() }

// CreateKey makes an API key (scope "send" or "admin", restricted to the senders
// of allowedFrom when there are any) and prints the key alone on stdout, so
// scripts can capture it, and on stderr what it is and that it is shown only this
// once.
func (a *Admin) CreateKey(ctx context.Context, name, scope string, allowedFrom []string) error {
	k, err := a.keys.Create(ctx, name, scope, allowedFrom)
	if err != nil {
		return err
	}
	senders := "any sender"
	if len(k.AllowedFrom) > 0 {
		senders = "sends only from " + strings.Join(k.AllowedFrom, ", ")
	}
	fmt.Fprintln(a.stdout, k.Key)
	fmt.Fprintf(a.stderr, "created API key %s (name %q, scope %s, %s, prefix %s).\n"+
		"Keep the key printed above: it is shown only this once, and only its hash is stored.\n",
		k.ID, k.Name, k.Scope, senders, k.Prefix)
	return nil
}

// ListKeys prints every stored key as JSON, never the keys themselves.
func (a *Admin) ListKeys(ctx context.Context) error {
	keys, err := a.keys.List(ctx)
	if err != nil {
		return err
	}
	return a.printJSON(keys)
}

// RevokeKey revokes the key with id; it stops working at once on every server of
// the database.
func (a *Admin) RevokeKey(ctx context.Context, id string) error {
	k, err := a.keys.Revoke(ctx, id)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "revoked %s (%s)\n", k.ID, k.Name)
	return nil
}

// DeadLetterFilter chooses dead letters; an empty field matches every letter.
type DeadLetterFilter struct {
	// Reason is text the letter's reason contains.
	Reason string
	// Since and Until bound when the letter was parked: RFC 3339 times, Since
	// included, Until not.
	Since, Until string
}

// ListDeadLetters prints at most limit parked letters matching f as JSON.
func (a *Admin) ListDeadLetters(ctx context.Context, f DeadLetterFilter, limit int) error {
	items, err := a.letters.List(ctx, f.Reason, f.Since, f.Until, limit)
	if err != nil {
		return err
	}
	return a.printJSON(items)
}

// ReplayDeadLetter sends a parked letter again from a fresh attempt count; ref is
// its email id or its own id (letter-N).
func (a *Admin) ReplayDeadLetter(ctx context.Context, ref string) error {
	if err := a.letters.Replay(ctx, ref); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "replayed %s\n", ref)
	return nil
}

// ReplayDeadLetters replays every parked letter matching f and prints how many.
func (a *Admin) ReplayDeadLetters(ctx context.Context, f DeadLetterFilter) error {
	n, err := a.letters.ReplayMatching(ctx, f.Reason, f.Since, f.Until)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "replayed %d\n", n)
	return nil
}

// DiscardDeadLetter discards a parked letter (ref as in ReplayDeadLetter); its
// email stays dead.
func (a *Admin) DiscardDeadLetter(ctx context.Context, ref string) error {
	if err := a.letters.Discard(ctx, ref); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "discarded %s\n", ref)
	return nil
}

// ListSuppressions prints at most limit suppressed addresses containing the text
// (all of them for ""), newest first, as JSON.
func (a *Admin) ListSuppressions(ctx context.Context, addressContains string, limit int) error {
	items, err := a.supp.List(ctx, addressContains, limit)
	if err != nil {
		return err
	}
	return a.printJSON(items)
}

// AddSuppression suppresses an address: later emails skip it without any SMTP
// command. An address suppressed already keeps its entry.
func (a *Admin) AddSuppression(ctx context.Context, address, reason string) error {
	s, created, err := a.supp.Add(ctx, address, reason)
	if err != nil {
		return err
	}
	if !created {
		fmt.Fprintf(a.stdout, "%s was suppressed already (%s, since %s)\n", s.Address, s.Reason, s.CreatedAt.Format(time.RFC3339))
		return nil
	}
	fmt.Fprintf(a.stdout, "suppressed %s\n", s.Address)
	return nil
}

// RemoveSuppression takes an address off the suppression list.
func (a *Admin) RemoveSuppression(ctx context.Context, address string) error {
	if err := a.supp.Remove(ctx, address); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "removed %s from the suppression list\n", address)
	return nil
}

// ListWebhooks prints every webhook endpoint as JSON, never their secrets.
func (a *Admin) ListWebhooks(ctx context.Context) error {
	eps, err := a.webhooks.List(ctx)
	if err != nil {
		return err
	}
	return a.printJSON(eps)
}

// CreateWebhook makes a webhook endpoint for the event types in events and prints
// it as JSON with its secret, which is shown only this once (and by
// RotateWebhookSecret); stderr says so.
func (a *Admin) CreateWebhook(ctx context.Context, url string, events []string, description string) error {
	ep, err := a.webhooks.Create(ctx, url, events, description)
	if err != nil {
		return err
	}
	if err := a.printJSON(ep); err != nil {
		return err
	}
	fmt.Fprintf(a.stderr, "created webhook %s. Keep its secret: it is shown only this once (rotate-secret makes a new one).\n", ep.ID)
	return nil
}

// DeleteWebhook deletes a webhook endpoint and its deliveries, pending ones too.
func (a *Admin) DeleteWebhook(ctx context.Context, id string) error {
	if err := a.webhooks.Delete(ctx, id); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "deleted webhook %s\n", id)
	return nil
}

// SetWebhookEnabled enables or disables a webhook endpoint. Enabling clears its
// disabled reason and failing streak, and the running server tries its waiting
// deliveries again; a disabled endpoint's deliveries wait.
func (a *Admin) SetWebhookEnabled(ctx context.Context, id string, enabled bool) error {
	ep, err := a.webhooks.SetEnabled(ctx, id, enabled)
	if err != nil {
		return err
	}
	state := "disabled"
	if ep.Enabled {
		state = "enabled"
	}
	fmt.Fprintf(a.stdout, "%s webhook %s\n", state, ep.ID)
	return nil
}

// RotateWebhookSecret gives a webhook endpoint a new secret and prints it alone on
// stdout; the old secret stops signing at once.
func (a *Admin) RotateWebhookSecret(ctx context.Context, id string) error {
	secret, err := a.webhooks.RotateSecret(ctx, id)
	if err != nil {
		return err
	}
	fmt.Fprintln(a.stdout, secret)
	fmt.Fprintf(a.stderr, "new secret of webhook %s printed above: the old one no longer signs; give the new one to the receiver.\n", id)
	return nil
}

func (a *Admin) printJSON(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// CheckSMTP connects to the mail server cfg names, says EHLO, STARTTLS and AUTH as
// configured (the probe serve runs at start and while delivery is paused), and
// returns one line saying what works, or an error naming the setting to fix. It is
// `mailroom smtp-check`.
func CheckSMTP(ctx context.Context, cfg *config.Config) (string, error) {
	dc := DeliveryConfig(cfg)
	dc.Transport = config.TransportSMTP
	t, err := delivery.NewTransport(dc, nil)
	if err != nil {
		return "", err
	}
	defer t.Close()
	if err := t.Probe(ctx); err != nil {
		return "", err
	}
	var how []string
	if cfg.SMTP.TLS != "none" {
		how = append(how, cfg.SMTP.TLS)
	}
	if cfg.SMTP.Username != "" {
		how = append(how, "AUTH as "+cfg.SMTP.Username)
	}
	with := ""
	if len(how) > 0 {
		with = " with " + strings.Join(how, " and ")
	}
	note := ""
	if cfg.Delivery.Transport != config.TransportSMTP {
		note = "; delivery.transport is " + cfg.Delivery.Transport + ", so serve sends it nothing"
	}
	return fmt.Sprintf("ok: %s answers%s, as configured%s", net.JoinHostPort(cfg.SMTP.Host, strconv.Itoa(cfg.SMTP.Port)), with, note), nil
}
