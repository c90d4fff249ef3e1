package suppressions_test

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/mailroom/mailroom/app"
	"github.com/mailroom/mailroom/app/apptest"
	"github.com/mailroom/mailroom/migrations"
	"github.com/mailroom/mailroom/platform/config"
	"github.com/mailroom/mailroom/platform/sqlite"
	"github.com/mailroom/mailroom/platform/testkit/smtptest"
)

func TestAdminsManageTheSuppressionListOverHTTP(t *testing.T) {
	in, _ := start(t, nil)
	add := func(body any) apptest.Response { return in.Do(t, http.MethodPost, "/api/suppressions", body) }
	list := func(query string) (int, []suppression, string) {
		r := in.Do(t, http.MethodGet, "/api/suppressions"+query, nil)
		var page struct {
			Items      []suppression
			NextCursor string `json:"next_cursor"`
		}
		if r.Status == http.StatusOK {
			r.JSON(t, &page)
		}
		return r.Status, page.Items, page.NextCursor
	}

	r := add(map[string]string{"address": "Bob@Example.COM", "reason": "complained"})
	var s suppression
	r.JSON(t, &s)
	if r.Status != http.StatusCreated || s.Address != "bob@example.com" || s.Reason != "complained" || s.Source != "operator" {
		t.Fatalf("POST: %d %+v; want 201 with the address lower-cased and the reason", r.Status, s)
	}
	if r := add(map[string]string{"address": "bob@example.com", "reason": "again"}); r.Status != http.StatusOK || !strings.Contains(string(r.Body), "complained") {
		t.Errorf("adding it again: %d %s; want 200 with the first entry", r.Status, r.Body)
	}
	for i := range 3 {
		add(map[string]string{"address": fmt.Sprintf("user%d@example.org", i)})
	}
	if st, items, next := list("?limit=2"); st != http.StatusOK || len(items) != 2 || items[0].Address != "user2@example.org" || next == "" {
		t.Errorf("first page: %d %+v next %q; want the 2 newest and a cursor", st, items, next)
	} else if _, rest, next2 := list("?limit=2&cursor=" + next); len(rest) != 2 || next2 != "" {
		t.Errorf("second page %+v next %q; want the 2 oldest and no cursor", rest, next2)
	}
	if _, items, _ := list("?address=EXAMPLE.org"); len(items) != 3 {
		t.Errorf("filter by address: %+v, want the 3 at example.org", items)
	}

	for _, tt := range []struct {
		name, field string
		r           apptest.Response
	}{
		{"an address with a display name", "address", add(map[string]string{"address": "Bob <bob@example.com>"})},
		{"no address", "address", add(map[string]string{"reason": "x"})},
		{"a reason on two lines", "reason", add(map[string]string{"address": "x@example.com", "reason": "a\nb"})},
		{"an unknown query parameter", "email", in.Do(t, http.MethodGet, "/api/suppressions?email=x", nil)},
		{"a cursor that is no cursor", "cursor", in.Do(t, http.MethodGet, "/api/suppressions?cursor=abc", nil)},
	} {
		if !strings.Contains(string(tt.r.Body), `"field":"`+tt.field+`"`) || tt.r.Status != http.StatusBadRequest {
			t.Errorf("%s: %d %s; want 400 naming %s", tt.name, tt.r.Status, tt.r.Body, tt.field)
		}
	}

	if r := in.Do(t, http.MethodDelete, "/api/suppressions/BOB@example.com", nil); r.Status != http.StatusNoContent {
		t.Errorf("DELETE: %d %s", r.Status, r.Body)
	}
	if r := in.Do(t, http.MethodDelete, "/api/suppressions/bob@example.com", nil); r.Status != http.StatusNotFound {
		t.Errorf("DELETE of an address not suppressed: %d %s, want 404", r.Status, r.Body)
	}

	// The console writes the address with encodeURIComponent: @ as %40, + as %2B.
	add(map[string]string{"address": "carol+news@example.com"})
	if r := in.Do(t, http.MethodDelete, "/api/suppressions/carol%2Bnews%40example.com", nil); r.Status != http.StatusNoContent {
		t.Errorf("DELETE of a percent-encoded address: %d %s, want 204", r.Status, r.Body)
	}
	if r := in.Do(t, http.MethodDelete, "/api/suppressions/carol%2Bnews%40example.com", nil); r.Status != http.StatusNotFound {
		t.Errorf("DELETE of a percent-encoded address removed already: %d %s, want 404", r.Status, r.Body)
	}
}

// TestAnAddressSuppressedWithTheCLIGetsNoMailFromTheRunningServer: `mailroom
// suppressions add` writes to the database of a running server, not to the server:
// its change reaches that server's delivery through the outbox (the server's relay
// publishes it, delivery's copy applies it), and so does a removal.
func TestAnAddressSuppressedWithTheCLIGetsNoMailFromTheRunningServer(t *testing.T) {
	in, srv := start(t, nil)
	const to = "cli@example.com"
	adm, err := app.OpenAdmin(context.Background(), in.Config, io.Discard, io.Discard)
	if err != nil {
		t.Fatalf("open admin: %v", err)
	}
	defer adm.Close()

	if err := adm.AddSuppression(context.Background(), to, "asked by phone"); err != nil {
		t.Fatalf("suppressions add: %v", err)
	}
	waitOutboxPublished(t, in)
	if st := recipientStatus(t, in, in.Send(t, apptest.NewEmail(to))); st != "suppressed" || srv.Attempts(to) != 0 {
		t.Fatalf("an email to %s after `suppressions add`: recipient %s, %d RCPTs; want suppressed and none", to, st, srv.Attempts(to))
	}

	if err := adm.RemoveSuppression(context.Background(), to); err != nil {
		t.Fatalf("suppressions remove: %v", err)
	}
	waitOutboxPublished(t, in)
	if st := recipientStatus(t, in, in.Send(t, apptest.NewEmail(to))); st != "delivered" || len(srv.MessagesTo(to)) != 1 {
		t.Errorf("an email to %s after `suppressions remove`: recipient %s, %d copies; want delivered once", to, st, len(srv.MessagesTo(to)))
	}
}

// waitOutboxPublished waits until the server's outbox is empty (mailroom_outbox_pending
// 0): on Go channels a row leaves it once every handler of its topic acknowledged it.
func waitOutboxPublished(t *testing.T, in *apptest.Instance) {
	t.Helper()
	apptest.Eventually(t, wait, func() bool {
		r := in.Do(t, http.MethodGet, "/metrics", nil, apptest.NoKey...)
		return strings.Contains(string(r.Body), "\nmailroom_outbox_pending 0\n")
	}, func() string { return "the outbox was never empty" })
}

// TestTheSuppressionListOfBeforeTheUpgradeIsListedAndStillSuppresses: a database
// whose suppression list the delivery module kept (delivery_suppressions, its
// migrations up to 00004) is upgraded at start: the API lists every address it held
// with its reason, source, email and time, newest first; a suppressed address still
// gets no mail; and each is published once (nothing is left to publish at the next
// start).
func TestTheSuppressionListOfBeforeTheUpgradeIsListedAndStillSuppresses(t *testing.T) {
	srv := smtptest.Start(t)
	cfg := apptest.Config(t)
	apptest.UseSMTP(cfg, srv)
	old := []suppression{
		{Address: "gone@example.com", Reason: "hard bounce", Detail: "550 5.1.1 No such user", EmailID: "0198-old-email",
			Source: "bounce", CreatedAt: time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)},
		{Address: "stop@example.org", Reason: "asked us to stop", Source: "operator",
			CreatedAt: time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)},
	}
	databaseOfBeforeTheUpgrade(t, cfg.DB.Path, old)

	in := apptest.Start(t, cfg)
	got := listed(t, in, "")
	if len(got) != 2 || got[0] != old[1] || got[1] != old[0] {
		t.Fatalf("after the upgrade the API lists %+v, want the old list newest first: %+v", got, []suppression{old[1], old[0]})
	}
	for _, s := range old {
		if st := recipientStatus(t, in, in.Send(t, apptest.NewEmail(s.Address))); st != "suppressed" || srv.Attempts(s.Address) != 0 {
			t.Errorf("an email to %s after the upgrade: recipient %s, %d RCPTs; want suppressed and none", s.Address, st, srv.Attempts(s.Address))
		}
	}
	in.Stop(t)
	db, err := sqlite.OpenExisting(cfg.DB.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, table := range []string{"delivery_suppressions_unannounced", "suppressions_unannounced"} {
		var n int
		if err := db.Read.QueryRow(`SELECT COUNT(*) FROM ` + table).Scan(&n); err != nil || n != 0 {
			t.Errorf("%s holds %d addresses (%v) after the start; want 0: each is published once, at the first start", table, n, err)
		}
	}
}

// databaseOfBeforeTheUpgrade makes a database at path as the version before the
// suppression list moved left it: the platform's migrations and the delivery
// module's up to 00004, with list in delivery_suppressions (in that order).
func databaseOfBeforeTheUpgrade(t *testing.T, path string, list []suppression) {
	t.Helper()
	db, err := sqlite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	before := fstest.MapFS{}
	all := migrations.For("delivery")
	for _, name := range []string{"00001_delivery.sql", "00002_owner.sql", "00003_recipients_suppressions.sql", "00004_drop_messages.sql"} {
		b, err := fs.ReadFile(all, name)
		if err != nil {
			t.Fatal(err)
		}
		before[name] = &fstest.MapFile{Data: b}
	}
	ctx := context.Background()
	if err := sqlite.Migrate(ctx, db, sqlite.MigrationSet{Name: "platform", FS: migrations.For("platform")},
		sqlite.MigrationSet{Name: "delivery", FS: before}); err != nil {
		t.Fatal(err)
	}
	for _, s := range list {
		if _, err := db.Write.ExecContext(ctx, `INSERT INTO delivery_suppressions (address, reason, detail, email_id, source, created_at)
			VALUES (?, ?, ?, ?, ?, ?)`, s.Address, s.Reason, s.Detail, s.EmailID, s.Source, s.CreatedAt.UnixMilli()); err != nil {
			t.Fatal(err)
		}
	}
}

// TestAnOldDatabaseServingAsAnAPIInstanceListsAndPublishesItsSuppressionList: the
// database of an instance that ran delivery before the upgrade, started as an api
// instance (no delivery module, on Kafka, here unreachable), lists its old list at
// once and hands every address to its outbox for topics.suppressions, once, so that
// the workers of the split learn them when Kafka is reached.
func TestAnOldDatabaseServingAsAnAPIInstanceListsAndPublishesItsSuppressionList(t *testing.T) {
	cfg := apptest.Config(t)
	cfg.Modules, cfg.Broker.Kind = config.ModulesAPI, config.BrokerKafka
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Kafka.Brokers = []string{l.Addr().String()}
	l.Close() // nothing listens there: Kafka is down
	old := []suppression{
		{Address: "gone@example.com", Reason: "hard bounce", Detail: "550 5.1.1 No such user", EmailID: "0198-old-email",
			Source: "bounce", CreatedAt: time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)},
		{Address: "stop@example.org", Reason: "asked us to stop", Source: "operator",
			CreatedAt: time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)},
	}
	databaseOfBeforeTheUpgrade(t, cfg.DB.Path, old)

	in := apptest.Start(t, cfg)
	if got := listed(t, in, ""); len(got) != 2 || got[0] != old[1] || got[1] != old[0] {
		t.Errorf("the api instance lists %+v, want the old list newest first", got)
	}
	in.Stop(t)
	in = apptest.Start(t, cfg) // a second start publishes nothing again
	in.Stop(t)
	db, err := sqlite.OpenExisting(cfg.DB.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var records int
	if err := db.Read.QueryRow(`SELECT COUNT(*) FROM outbox WHERE topic = ?`, cfg.Topics.Suppressions).Scan(&records); err != nil || records != len(old) {
		t.Errorf("%d records for %s wait in the outbox (%v), want one per old address (%d)", records, cfg.Topics.Suppressions, err, len(old))
	}
}
