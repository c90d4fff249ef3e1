package app_test

import (
	"context"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailroom/mailroom/app"
	"github.com/mailroom/mailroom/app/apptest"
	"github.com/mailroom/mailroom/app/internal/e2e"
	"github.com/mailroom/mailroom/platform/config"
	"github.com/mailroom/mailroom/platform/sqlite"
	"github.com/mailroom/mailroom/platform/testkit/wait"
)

// roleOnAbsentKafka is the test config for role (config.Modules) on Kafka at an
// address where nothing listens: the app starts anyway (see docs/kafka.md, "When Kafka
// is down"), which is all these tests need of Kafka.
func roleOnAbsentKafka(t *testing.T, role string) *config.Config {
	t.Helper()
	cfg := apptest.Config(t)
	cfg.Modules = role
	cfg.Broker.Kind = config.BrokerKafka
	cfg.Kafka.Brokers = []string{e2e.FreeAddr(t)}
	return cfg
}

// routePaths lists the paths of the app's HTTP routes, sorted and without repeats.
func routePaths(a *app.App) []string {
	var paths []string
	for _, r := range a.Routes() {
		paths = append(paths, r.Path)
	}
	slices.Sort(paths)
	return slices.Compact(paths)
}

// TestADeliveryWorkerServesHealthAndMetricsButNoAPIAndNoConsole: --modules delivery
// has three HTTP routes; an /api path or the console is the contract's 404, and
// its handlers are the send topic's and the retry tiers' forwarders.
func TestADeliveryWorkerServesHealthAndMetricsButNoAPIAndNoConsole(t *testing.T) {
	t.Parallel()
	cfg := roleOnAbsentKafka(t, config.ModulesDelivery)
	in := apptest.Start(t, cfg)

	if got, want := routePaths(in.App), []string{"/healthz", "/metrics", "/readyz"}; !slices.Equal(got, want) {
		t.Errorf("a delivery worker's routes are %v, want only %v", got, want)
	}
	// On Kafka: the send topic's handler, its copy of the suppression list's, and
	// one forwarder per retry tier.
	want := []string{"delivery.apply_suppression", "delivery.send_email"}
	for _, tier := range cfg.Topics.RetryTierDelays() {
		want = append(want, "delivery.retry_forward."+config.TierName(tier))
	}
	slices.Sort(want)
	if got := in.App.Handlers(); !slices.Equal(got, want) {
		t.Errorf("a delivery worker's handlers are %v, want %v", got, want)
	}
	for _, path := range []string{"/healthz", "/metrics"} {
		if r := in.Do(t, http.MethodGet, path, nil, apptest.NoKey...); r.Status != http.StatusOK {
			t.Errorf("GET %s = %d %s, want 200", path, r.Status, r.Body)
		}
	}
	for _, req := range []struct{ method, path string }{
		{http.MethodGet, "/api/emails"},
		{http.MethodPost, "/api/emails"},
		{http.MethodGet, "/api/suppressions"},
		{http.MethodGet, "/api/stats"},
		{http.MethodGet, "/"},
		{http.MethodGet, "/static/app.js"},
	} {
		r := in.Do(t, req.method, req.path, apptest.NewEmail("a@example.com"), apptest.Unchecked("a delivery worker serves no API")...)
		var body struct {
			Error struct {
				Code string `json:"code"`
			} `json:"error"`
		}
		r.JSON(t, &body)
		if r.Status != http.StatusNotFound || body.Error.Code != "not_found" {
			t.Errorf("%s %s on a delivery worker = %d %s, want the contract's 404 not_found", req.method, req.path, r.Status, r.Body)
		}
	}
}

// TestAnAPIInstanceServesTheAPIAndTheConsoleButHasNoDeliveryHandler: --modules api
// accepts an email and answers for it, serves the console, and runs no handler of
// the delivery module, so it never takes a message of topics.send.
func TestAnAPIInstanceServesTheAPIAndTheConsoleButHasNoDeliveryHandler(t *testing.T) {
	t.Parallel()
	in := apptest.Start(t, roleOnAbsentKafka(t, config.ModulesAPI))

	handlers := in.App.Handlers()
	for _, h := range handlers {
		if strings.HasPrefix(h, "delivery.") {
			t.Errorf("an api instance runs the delivery handler %s: it would consume topics.send", h)
		}
	}
	for _, want := range []string{"emails.apply_event", "deadletters.park", "webhooks.fan_out", "suppressions.apply"} {
		if !slices.Contains(handlers, want) {
			t.Errorf("an api instance's handlers %v lack %s", handlers, want)
		}
	}

	id := in.Send(t, apptest.NewEmail("someone@example.com"))
	if got := in.Get(t, id); got.ID != id || got.Status != "queued" {
		t.Errorf("GET the accepted email = %+v, want it queued (nothing sends on an api instance)", got)
	}
	if r := in.Do(t, http.MethodGet, "/api/keys", nil); r.Status != http.StatusOK {
		t.Errorf("GET /api/keys on an api instance = %d %s, want 200", r.Status, r.Body)
	}
	if r := in.Do(t, http.MethodGet, "/", nil, apptest.NoKey...); r.Status != http.StatusOK || !strings.Contains(string(r.Body), "<html") {
		t.Errorf("GET / on an api instance = %d, want the console's page", r.Status)
	}
}

// moduleTables lists the goose version tables of the database at path (goose_<owner>,
// one per migrated owner), sorted, and whether each module's own tables exist.
func moduleTables(t *testing.T, path string) (versionTables []string, tables []string) {
	t.Helper()
	db, err := sqlite.OpenExisting(path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer db.Close()
	rows, err := db.Read.QueryContext(context.Background(), `SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`)
	if err != nil {
		t.Fatalf("list tables: %v", err)
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(name, "goose_") {
			versionTables = append(versionTables, name)
		} else {
			tables = append(tables, name)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return versionTables, tables
}

// TestEachRoleMigratesOnlyItsModules: serve migrates the platform and its role's
// modules, nothing of the other role's: a delivery worker's database has no emails
// or API keys tables, an api instance's no delivery tables.
func TestEachRoleMigratesOnlyItsModules(t *testing.T) {
	t.Parallel()
	cases := []struct {
		role    string
		owners  []string
		without []string // table name prefixes of the modules the role does not run
	}{
		{config.ModulesAll, []string{"apikeys", "deadletters", "delivery", "emails", "platform", "suppressions", "webhooks"}, nil},
		{config.ModulesAPI, []string{"apikeys", "deadletters", "emails", "platform", "suppressions", "webhooks"}, []string{"delivery_"}},
		{config.ModulesDelivery, []string{"delivery", "platform"}, []string{"emails_", "apikeys_", "deadletters_", "webhooks_", "suppressions_"}},
	}
	for _, c := range cases {
		t.Run(c.role, func(t *testing.T) {
			t.Parallel()
			cfg := roleOnAbsentKafka(t, c.role)
			apptest.Start(t, cfg).Stop(t)

			versions, tables := moduleTables(t, cfg.DB.Path)
			var want []string
			for _, owner := range c.owners {
				want = append(want, "goose_"+owner)
			}
			if !slices.Equal(versions, want) {
				t.Errorf("--modules %s migrated %v, want %v", c.role, versions, want)
			}
			for _, table := range tables {
				for _, prefix := range c.without {
					if strings.HasPrefix(table, prefix) {
						t.Errorf("--modules %s made the table %s, of a module it does not run", c.role, table)
					}
				}
			}
		})
	}
}

// TestADeliveryWorkerProcessNamesItsRoleAndServesNoAPI runs the built binary as a
// delivery worker on an absent Kafka: it starts, says "modules=delivery" in its
// serving line, answers /healthz and /metrics, and /api and the console are 404.
func TestADeliveryWorkerProcessNamesItsRoleAndServesNoAPI(t *testing.T) {
	t.Parallel()
	bin := e2e.Build(t)
	dir := t.TempDir()
	addr := e2e.FreeAddr(t)
	base := "http://" + addr
	logPath := filepath.Join(dir, "mailroom.log")
	p := e2e.Start(t, bin, e2e.Env(
		"MAILROOM_DB_PATH="+filepath.Join(dir, "mailroom.db"),
		"MAILROOM_HTTP_ADDR="+addr,
		"MAILROOM_BROKER_KIND=kafka",
		"MAILROOM_KAFKA_BROKERS="+e2e.FreeAddr(t),
	), logPath, "serve", "--modules", "delivery")

	wait.Until(t, 60*time.Second, 50*time.Millisecond, func() bool {
		return !p.Exited() && strings.Contains(p.Log(), "mailroom serving")
	}, func() string { return "the worker never logged its serving line; log:\n" + e2e.LogTail(p.Log(), 4000) })
	if log := p.Log(); !strings.Contains(log, "modules=delivery") {
		t.Errorf("the serving line does not name the role:\n%s", e2e.LogTail(log, 4000))
	}
	for _, path := range []string{"/healthz", "/metrics"} {
		if r := apptest.Do(t, base, http.MethodGet, path, nil, apptest.NoKey...); r.Status != http.StatusOK {
			t.Errorf("GET %s = %d, want 200", path, r.Status)
		}
	}
	for _, path := range []string{"/api/emails", "/"} {
		if r := apptest.Do(t, base, http.MethodGet, path, nil, apptest.Unchecked("a delivery worker serves no API")...); r.Status != http.StatusNotFound {
			t.Errorf("GET %s on a delivery worker = %d %s, want 404", path, r.Status, r.Body)
		}
	}
	if code, err := p.Terminate(30 * time.Second); err != nil || code != 0 {
		t.Errorf("SIGTERM: exit %d, %v; want a clean exit 0; log:\n%s", code, err, e2e.LogTail(p.Log(), 4000))
	}
}
