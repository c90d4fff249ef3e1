package app

import (
	"context"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/labstack/echo/v4"

	"github.com/mailroom/mailroom/platform/broker"
	"github.com/mailroom/mailroom/platform/outbox"
)

// Module is what app needs of a module: its routes and its handlers (its tables are
// migrated before any module exists, see ModuleNames). Modules implement it without
// importing app; app loops over them at start-up.
type Module interface {
	// Name is the module's name: it prefixes its tables and names its migrations
	// (migrations/<name>), and must be in ModuleNames.
	Name() string
	// RegisterRoutes adds the module's HTTP routes under /api.
	RegisterRoutes(api *echo.Group)
	// RegisterHandlers adds the module's Watermill handlers to the router.
	RegisterHandlers(r *message.Router, b *broker.Broker) error
}

// publishedListener is implemented by modules that record when their outbox rows
// were published.
type publishedListener interface {
	OnPublished() outbox.PublishedHook
}

// apiGuard is implemented by the module that authenticates API requests (apikeys):
// app puts its middleware in front of every /api route.
type apiGuard interface {
	APIMiddleware() echo.MiddlewareFunc
}

// bootstrapper is implemented by modules that must check or prepare something after
// the migrations and before the server listens; an error stops start-up.
type bootstrapper interface {
	Bootstrap(ctx context.Context) error
}

// starter is implemented by modules that begin background work once the app takes
// work (delivery checks the mail server); it must not block.
type starter interface {
	Start(ctx context.Context)
}

// healthReporter is implemented by modules with a state /readyz reports beside its
// own checks, under name, without making the app unready (delivery's mail server:
// while it is down, the API still accepts mail durably).
type healthReporter interface {
	Health() (name, state string)
}

// shutdownListener is implemented by modules whose handlers may wait long for
// something outside (delivery, for a mail server that is down): app tells them the
// shutdown began before it waits for the outbox relay, whose publishes on Go
// channels return only once their handlers are done.
type shutdownListener interface {
	BeforeShutdown()
}

// closer is implemented by modules that hold goroutines or connections; app closes
// them after the router has drained.
type closer interface {
	Close() error
}
