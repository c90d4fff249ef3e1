// Package app wires the platform and the modules into one process and owns its
// start-up and shutdown. Tests boot the whole app on a free port through New/Run.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"sync"
	"time"

	wmetrics "github.com/ThreeDotsLabs/watermill/components/metrics"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mailroom/mailroom/migrations"
	"github.com/mailroom/mailroom/platform/auth"
	"github.com/mailroom/mailroom/platform/broker"
	"github.com/mailroom/mailroom/platform/config"
	"github.com/mailroom/mailroom/platform/httpserver"
	"github.com/mailroom/mailroom/platform/outbox"
	"github.com/mailroom/mailroom/platform/sqlite"
	"github.com/mailroom/mailroom/web"
)

// App is one running Mailroom: database, broker, router, outbox relay, HTTP server
// and the modules of its role (config.Modules: every module, or those of the api or
// the delivery role; see RoleModules).
type App struct {
	cfg      *config.Config
	log      *slog.Logger
	db       *sqlite.DB
	box      *outbox.Outbox
	broker   *broker.Broker
	router   *message.Router
	relay    *outbox.Relay
	echo     *echo.Echo
	listener net.Listener
	modules  []Module
	registry *prometheus.Registry
	// lock makes this the only serve of its database (see New).
	lock *sqlite.ExclusiveLock
	// stopWatch ends the watch on the database file; watchDone is closed once it
	// ended (see watchDatabaseFile).
	stopWatch context.CancelFunc
	watchDone chan struct{}
	ready     chan struct{}
	closeMu   sync.Mutex
	closed    bool

	// instanceID names this instance (see InstanceID).
	instanceID string
	// reserve is the disk reserve (db.min_free_bytes) of the database's file system.
	reserve *sqlite.DiskReserve
}

// Option changes how New builds the app.
type Option func(*options)

type options struct {
	logger       *slog.Logger
	notices      io.Writer
	firstKeyFile string
	freeSpace    sqlite.FreeSpace
}

// WithFreeSpace replaces how the disk reserve (db.min_free_bytes) learns the free
// space of the database's file system (sqlite.StatfsFree), so tests can fill and
// free a disk without one.
func WithFreeSpace(f sqlite.FreeSpace) Option { return func(o *options) { o.freeSpace = f } }

// WithLogger sets the logger (the default discards nothing: it writes to stderr).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithNotices sets where New prints what the operator must read on the terminal
// rather than in the log: the admin key made at first start. The default is stderr.
func WithNotices(w io.Writer) Option { return func(o *options) { o.notices = w } }

// WithFirstKeyFile makes New write the admin key made at first start to path (a new
// file of mode 0600; an existing one is never overwritten, and New fails instead)
// rather than to the notices, which then only say where it is: for a server whose
// stderr is a journal that keeps it (systemd). The default, "", prints it.
func WithFirstKeyFile(path string) Option { return func(o *options) { o.firstKeyFile = path } }

// New refuses a role (cfg.Modules) that cannot run before it opens anything (see
// RoleModules), then takes the database's exclusive lock (while another server holds it, New
// returns the *sqlite.InUseError naming that server), opens the database, applies
// the migrations of the platform and the role's modules, starts watching its file
// (see watchDatabaseFile), builds the broker, the role's modules and the HTTP
// server (a role without the API serves /healthz, /readyz and /metrics only), and binds the HTTP address (so Addr is known
// before Run). Nothing is consumed or published until Run. Close releases the lock.
func New(cfg *config.Config, opts ...Option) (a *App, err error) {
	o := options{logger: slog.Default(), notices: os.Stderr}
	for _, opt := range opts {
		opt(&o)
	}
	names, err := RoleModules(cfg)
	if err != nil {
		return nil, fmt.Errorf("modules: %w", err)
	}
	a = &App{cfg: cfg, log: o.logger, registry: prometheus.NewRegistry(), ready: make(chan struct{})}
	// built, not a: `return nil, err` sets the named result a to nil before this runs.
	built := a
	defer func() {
		if err != nil {
			built.Close()
		}
	}()
	a.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	// One server per database: two would each send what the outbox holds, and
	// each believe its own record of what was sent.
	if a.lock, err = sqlite.LockExclusive(cfg.DB.Path); err != nil {
		return nil, err
	}
	if a.db, err = OpenDatabase(context.Background(), cfg); err != nil {
		return nil, err
	}
	a.watchDatabaseFile()
	a.reserve = sqlite.NewDiskReserve(a.db.Path(), uint64(cfg.DB.MinFreeBytes), o.freeSpace, nil)
	if a.instanceID, err = a.db.InstanceID(context.Background()); err != nil {
		return nil, err
	}
	a.box = outbox.New()
	// Watermill's internals stay out of debug, which is for each email's SMTP
	// conversation: see broker.Logger.
	wlog := broker.Logger(a.log.With("component", "watermill"))
	if a.broker, err = broker.New(cfg, wlog, broker.WithWarnLog(a.log.With("component", "broker"))); err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	if a.router, err = broker.NewRouter(broker.RouterConfig{
		DeadLetterTopic: cfg.Topics.DeadLetter,
		CloseTimeout:    cfg.HTTP.ShutdownTimeout,
		BlipRetries:     2,
	}, a.broker.Publisher(), wlog); err != nil {
		return nil, err
	}
	wmetrics.NewPrometheusMetricsBuilder(a.registry, "mailroom", "").AddPrometheusRouterMetrics(a.router)

	if a.modules, err = buildModules(cfg, names, a.instanceID, a.db, a.box, a.log, a.registry, o.notices, o.firstKeyFile); err != nil {
		return nil, err
	}
	a.relay = outbox.NewRelay(a.db, a.box, a.broker.Publisher(), relayConfig(cfg), a.log.With("component", "outbox"))
	a.registry.MustRegister(outboxCollector{db: a.db})

	a.echo = httpserver.New(httpserver.Config{MaxBodyBytes: cfg.HTTP.MaxBodyBytes, TrustedProxies: trustedProxies(cfg),
		MinBodyRate: cfg.HTTP.MinBodyRate, MinBodyRateGrace: cfg.HTTP.MinBodyRateGrace}, a.log, a.registry)
	a.echo.GET("/healthz", func(c echo.Context) error { return c.JSON(http.StatusOK, map[string]string{"status": "ok"}) })
	a.echo.GET("/readyz", a.readyz)
	a.echo.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(a.registry, promhttp.HandlerOpts{})))
	if err := a.registerAPI(); err != nil {
		return nil, err
	}
	for _, m := range a.modules {
		if err := m.RegisterHandlers(a.router, a.broker); err != nil {
			return nil, fmt.Errorf("module %s: %w", m.Name(), err)
		}
		if l, ok := m.(publishedListener); ok {
			a.relay.OnPublished(l.OnPublished())
		}
	}
	for _, m := range a.modules {
		if b, ok := m.(bootstrapper); ok {
			if err := b.Bootstrap(context.Background()); err != nil {
				return nil, fmt.Errorf("module %s: %w", m.Name(), err)
			}
		}
	}
	maxConns, err := httpConnectionBudget(cfg, a.log)
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", cfg.HTTP.Addr)
	if err != nil {
		return nil, fmt.Errorf("http.addr: listen on %s: %w", cfg.HTTP.Addr, err)
	}
	a.listener = httpserver.Listener(l, maxConns)
	return a, nil
}

// registerAPI adds the operator console and the /api routes of every module, when
// the role serves the API (see servesAPI). A role without it (a delivery worker)
// adds none: an /api request there is the contract's 404 "no such route", like any
// path that has none.
func (a *App) registerAPI() error {
	if !servesAPI(a.modules) {
		return nil
	}
	web.Register(a.echo) // the operator console: / and /static/*, outside /api
	guard, err := apiGuardOf(a.modules)
	if err != nil {
		return err
	}
	// The guard is in front of the group before any route is added: Echo gives a
	// route the group's middleware as it stands when the route is added. A wrong
	// method on a known /api path is 405 with Allow (httpserver.Group), as elsewhere.
	// The disk reserve comes after the guard: only a known key learns of the disk.
	api := httpserver.Group(a.echo, "/api", guard, httpserver.RefuseWritesUnderReserve(a.lowDisk))
	for _, m := range a.modules {
		m.RegisterRoutes(api)
	}
	api.GET("/stats", a.stats, auth.RequireScope(auth.ScopeAdmin)) // the console's overview: see stats.go
	return nil
}

// fileCheckInterval is how often the app checks that its database file is still
// at db.path.
const fileCheckInterval = time.Second

// watchDatabaseFile checks the database file every fileCheckInterval until Close:
// once it is deleted or replaced, the database refuses every write (POST answers
// 503, /readyz 503) and its content is saved to a file the log names (see
// sqlite.DB.WatchFile).
func (a *App) watchDatabaseFile() {
	ctx, stop := context.WithCancel(context.Background())
	a.stopWatch, a.watchDone = stop, make(chan struct{})
	go func() {
		defer close(a.watchDone)
		a.db.WatchFile(ctx, fileCheckInterval, a.log.With("component", "database"))
	}()
}

// apiGuardOf returns the middleware of the one module that authenticates /api. With
// none the API would be open, so that is an error, as are two.
func apiGuardOf(modules []Module) (echo.MiddlewareFunc, error) {
	var guards []echo.MiddlewareFunc
	for _, m := range modules {
		if g, ok := m.(apiGuard); ok {
			guards = append(guards, g.APIMiddleware())
		}
	}
	if len(guards) != 1 {
		return nil, fmt.Errorf("want exactly one module that authenticates /api, have %d", len(guards))
	}
	return guards[0], nil
}

// relayConfig fits the relay to the broker. On Go channels each publish waits for
// its handler, so there is one publisher per lane of the send topic, one message
// each; on Kafka a batch costs one round trip, so one publisher per partition sends
// batches.
func relayConfig(cfg *config.Config) outbox.RelayConfig {
	rc := outbox.RelayConfig{
		Workers:      cfg.Topics.Partitions,
		BatchSize:    cfg.Outbox.BatchSize,
		PollInterval: cfg.Outbox.PollInterval,
	}
	if cfg.Broker.Kind == config.BrokerGoChannel {
		rc.Workers, rc.RunSize = cfg.Delivery.Concurrency, 1
	}
	return rc
}

// OpenDatabase opens the database, creating it if needed, and applies the
// migrations of the platform and of the modules of the role cfg.Modules (see
// RoleModules): a delivery worker's database holds no API keys or emails tables.
// `mailroom migrate` uses it too. The admin commands open only a database that
// exists, and migrate every module (see OpenAdmin).
func OpenDatabase(ctx context.Context, cfg *config.Config) (*sqlite.DB, error) {
	names, err := RoleModules(cfg)
	if err != nil {
		return nil, fmt.Errorf("modules: %w", err)
	}
	db, err := sqlite.Open(cfg.DB.Path)
	if err != nil {
		return nil, fmt.Errorf("db.path: %w", err)
	}
	if err := migrate(ctx, db, names); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// migrate applies the platform's migrations, then those of the modules named
// (each in migrations/<name>, with its own version table).
func migrate(ctx context.Context, db *sqlite.DB, modules []string) error {
	if err := sqlite.Migrate(ctx, db, migrationSets(modules)...); err != nil {
		return fmt.Errorf("migrate %s: %w", db.Path(), err)
	}
	return nil
}

// migrationSets is the migrations of the platform, then of the modules named.
func migrationSets(modules []string) []sqlite.MigrationSet {
	sets := []sqlite.MigrationSet{{Name: "platform", FS: migrations.For("platform")}}
	for _, name := range modules {
		sets = append(sets, sqlite.MigrationSet{Name: name, FS: migrations.For(name), Go: migrations.GoFor(name)})
	}
	return sets
}

// InstanceID is the id this instance's database was given when it was first
// migrated: the same across restarts on one database, different for every database.
// On Kafka the consumers every instance needs its own copy of (the emails' events,
// the dead letters) use consumer groups named after it.
func (a *App) InstanceID() string { return a.instanceID }

// Handlers lists the names of the message handlers this instance runs, sorted
// ("delivery.send_email", "emails.apply_event", ...; on Go channels one per lane,
// "delivery.send_email.lane-0"): what its role consumes. An api instance has no
// delivery handler, so it never takes a message of topics.send.
func (a *App) Handlers() []string {
	return slices.Sorted(maps.Keys(a.router.Handlers()))
}

// Addr is the address the HTTP server listens on.
func (a *App) Addr() string { return a.listener.Addr().String() }

// Routes lists every HTTP route, so that tests can hold each one to the access
// rules (a route added without a scope decision fails them).
func (a *App) Routes() []*echo.Route { return a.echo.Routes() }

// Run serves until ctx is done, then shuts down in order: stop taking requests,
// finish the ones in flight, let the relay finish what it is publishing, drain the
// router's handlers, and close modules, broker and database. It returns nil on a
// clean shutdown.
func (a *App) Run(ctx context.Context) error {
	routerCtx, stopRouter := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRouter()
	routerDone := make(chan error, 1)
	go func() { routerDone <- a.router.Run(routerCtx) }()

	select {
	case <-a.router.Running():
	case err := <-routerDone:
		return fmt.Errorf("router: %w", err)
	case <-ctx.Done():
		return a.shutdown(nil, routerDone, func() {})
	}
	close(a.ready)
	for _, m := range a.modules {
		if s, ok := m.(starter); ok {
			s.Start(routerCtx)
		}
	}

	relayCtx, stopRelay := context.WithCancel(context.WithoutCancel(ctx))
	relayDone := make(chan struct{})
	go func() {
		defer close(relayDone)
		_ = a.relay.Run(relayCtx, a.router.Running())
	}()

	httpDone := make(chan error, 1)
	// Built here, not in the goroutine: Shutdown below reads it, and a shutdown that
	// came before the goroutine ran would otherwise stop a server that never served.
	srv := httpserver.NewServer(a.echo, httpserver.Limits{
		ReadHeaderTimeout: a.cfg.HTTP.ReadHeaderTimeout,
		ReadTimeout:       a.cfg.HTTP.ReadTimeout,
		WriteTimeout:      a.cfg.HTTP.WriteTimeout,
		IdleTimeout:       a.cfg.HTTP.IdleTimeout,
	})
	a.echo.Server = srv
	go func() { httpDone <- srv.Serve(a.listener) }()
	a.logServing()

	var runErr error
	select {
	case <-ctx.Done():
	case err := <-httpDone:
		if !errors.Is(err, http.ErrServerClosed) {
			runErr = fmt.Errorf("http server: %w", err)
		}
	case err := <-routerDone:
		runErr = fmt.Errorf("router stopped: %w", err)
		routerDone <- err
	}
	a.log.Info("shutting down")
	if err := a.stopHTTP(srv); err != nil && runErr == nil {
		runErr = err
	}
	for _, m := range a.modules {
		if l, ok := m.(shutdownListener); ok {
			l.BeforeShutdown()
		}
	}
	return errors.Join(runErr, a.shutdown(stopRouter, routerDone, func() { stopRelay(); <-relayDone }))
}

// stopHTTP stops srv taking connections, closes its idle ones and gives the requests
// in flight half of http.shutdown_timeout to finish (the other half is for the
// rest of the shutdown). Connections still open then, whatever their client is
// doing (trickling a body, not reading its answer), are closed: that is the budget
// working, not a failed shutdown, so it is logged and not returned.
func (a *App) stopHTTP(srv *http.Server) error {
	budget := a.cfg.HTTP.ShutdownTimeout / 2
	ctx, cancel := context.WithTimeout(context.Background(), budget)
	defer cancel()
	err := srv.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		a.log.Warn("closing HTTP connections still open at the shutdown deadline", "after", budget)
		// Shutdown closed the listener already; Close closing it again is no news.
		if err = srv.Close(); errors.Is(err, net.ErrClosed) {
			err = nil
		}
	}
	if err != nil {
		return fmt.Errorf("http shutdown: %w", err)
	}
	return nil
}

// shutdown closes the router and stops the outbox relay (stopRelay returns once it
// has), then closes the rest. On Kafka the relay outlives the router: a delivery
// handler still running acknowledges its SendEmail only once the relay has
// published what its try produced (delivery.OutcomePublishWait), which a relay
// stopped first would never do. On Go channels the relay stops first: a message
// it published after the router's subscribers closed would be dropped, and its
// row, published, deleted.
func (a *App) shutdown(stopRouter func(), routerDone chan error, stopRelay func()) error {
	relayFirst := a.cfg.Broker.Kind != config.BrokerKafka
	if relayFirst {
		stopRelay()
	}
	var errs []error
	if err := a.router.Close(); err != nil {
		errs = append(errs, fmt.Errorf("router close: %w", err))
	}
	if stopRouter != nil {
		stopRouter()
	}
	<-routerDone
	if !relayFirst {
		stopRelay()
	}
	errs = append(errs, a.Close())
	return errors.Join(errs...)
}

// Ready is closed once the router is running and the app takes work.
func (a *App) Ready() <-chan struct{} { return a.ready }

// Close releases everything New acquired. Run calls it; call it yourself only when
// Run was never called.
func (a *App) Close() error {
	a.closeMu.Lock()
	defer a.closeMu.Unlock()
	if a.closed {
		return nil
	}
	a.closed = true
	var errs []error
	if a.listener != nil {
		_ = a.listener.Close()
	}
	for i := len(a.modules) - 1; i >= 0; i-- {
		if c, ok := a.modules[i].(closer); ok {
			errs = append(errs, c.Close())
		}
	}
	if a.broker != nil {
		errs = append(errs, a.broker.Close())
	}
	if a.stopWatch != nil {
		// Its last check rescues a file deleted just before: wait for it.
		a.stopWatch()
		<-a.watchDone
	}
	if a.db != nil {
		errs = append(errs, a.db.Close())
	}
	if a.lock != nil {
		errs = append(errs, a.lock.Release())
	}
	return errors.Join(errs...)
}

// readyz answers 200 when the database answers and can commit a write, the broker
// answers and the router runs: when the API can accept mail durably. Its body says
// how each of those is, and how the modules' own dependencies are (the mail
// server: "smtp"), which never makes it 503.
func (a *App) readyz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	body := map[string]string{"status": "ok", "database": "ok", "broker": "ok", "router": "ok"}
	ok := true
	if problem := a.databaseProblem(ctx); problem != "" {
		body["database"], ok = problem, false
	}
	if err := a.broker.Ping(ctx); err != nil {
		body["broker"], ok = err.Error(), false
	}
	body["disk"] = "ok"
	if err := a.reserve.Check(); err != nil {
		var low *sqlite.LowDiskError
		if errors.As(err, &low) {
			body["disk"], ok = low.Error(), false
		} else {
			body["disk"] = "free space unknown" // says nothing of a full disk: the write probe does
		}
	}
	select {
	case <-a.ready:
	default:
		body["router"], ok = "starting", false
	}
	for _, m := range a.modules {
		if h, isReporter := m.(healthReporter); isReporter {
			name, state := h.Health()
			body[name] = state
		}
	}
	if !ok {
		body["status"] = "unavailable"
		return c.JSON(http.StatusServiceUnavailable, body)
	}
	return c.JSON(http.StatusOK, body)
}

// lowDisk is the check of RefuseWritesUnderReserve: the *sqlite.LowDiskError under
// the reserve, else nil. A free space that cannot be read lets writes through (a
// failed statfs says nothing of a full disk; /readyz shows it).
func (a *App) lowDisk() error {
	var low *sqlite.LowDiskError
	if err := a.reserve.Check(); errors.As(err, &low) {
		return low
	}
	return nil
}

// databaseProblem is what /readyz says is wrong with the database, or "". The body
// is not authenticated: a detached file is described without its path, which the
// log has.
func (a *App) databaseProblem(ctx context.Context) string {
	err := a.db.Ping(ctx)
	if err == nil {
		if err = a.db.ProbeWrite(ctx); err != nil && !errors.Is(err, sqlite.ErrDetached) {
			a.log.Error("readiness: the database cannot be written", "error", err)
		}
	}
	switch {
	case err == nil:
		return ""
	case errors.Is(err, sqlite.ErrDetached):
		return "the database file was deleted or replaced while in use: nothing more is accepted, and its content is saved to a copy the log names"
	default:
		return err.Error()
	}
}

// outboxCollector exports the outbox backlog and the age of its oldest due row.
type outboxCollector struct{ db *sqlite.DB }

var (
	outboxPendingDesc = prometheus.NewDesc("mailroom_outbox_pending", "Outbox rows not yet published (due now or later).", nil, nil)
	outboxDueDesc     = prometheus.NewDesc("mailroom_outbox_due", "Outbox rows due for publishing now.", nil, nil)
	outboxAgeDesc     = prometheus.NewDesc("mailroom_outbox_oldest_due_age_seconds", "How long the oldest due outbox row has waited.", nil, nil)
)

func (c outboxCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- outboxPendingDesc
	ch <- outboxDueDesc
	ch <- outboxAgeDesc
}

func (c outboxCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := outbox.ReadStats(ctx, c.db)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(outboxPendingDesc, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(outboxPendingDesc, prometheus.GaugeValue, float64(s.Pending))
	ch <- prometheus.MustNewConstMetric(outboxDueDesc, prometheus.GaugeValue, float64(s.DuePending))
	ch <- prometheus.MustNewConstMetric(outboxAgeDesc, prometheus.GaugeValue, s.OldestDueAge.Seconds())
}

// trustedProxies is http.trusted_proxies as prefixes; config validation has already
// refused any entry that does not parse.
func trustedProxies(cfg *config.Config) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range cfg.HTTP.TrustedProxies {
		if p, err := config.ParsePrefix(s); err == nil {
			out = append(out, p)
		}
	}
	return out
}
