// Package app holds the webhooks module's use cases: manage endpoints, fan each
// lifecycle event out to the endpoints subscribed to it, and send the deliveries
// that are due. It takes plain values: the ports adapt Watermill messages and HTTP
// requests to it, the adapters store rows and make the HTTP requests.
package app

import (
	"context"
	"net/netip"
	"time"

	"github.com/mailroom/mailroom/modules/webhooks/internal/domain"
)

// Application is the table of contents of the webhooks module: every use case.
type Application struct {
	// Manage is what an operator does with endpoints and deliveries, from the API
	// or the CLI.
	Manage Manage
	// FanOut stores one delivery per subscribed endpoint of each lifecycle event
	// (the topics.lifecycle handler).
	FanOut FanOut
	// Sender POSTs the due deliveries, from the module's Start to its Close.
	Sender *Sender
}

// Event is a lifecycle event as the module stores it: its id and type, and the
// message's payload, POSTed unchanged on every try.
type Event struct {
	ID      string
	Type    string
	Payload []byte
}

// Due is a delivery ready for a try, with what the try needs.
type Due struct {
	Delivery domain.Delivery
	URL      string
	Secret   string
	Payload  []byte
}

// Outcomes of a try, as metrics and the store see them.
const (
	// OutcomeSucceeded: the endpoint answered 2xx.
	OutcomeSucceeded = "succeeded"
	// OutcomeFailed: another answer, a timeout or a connection error.
	OutcomeFailed = "failed"
	// OutcomeGone: the endpoint answered 410 Gone and is disabled.
	OutcomeGone = "gone"
)

// TryResult is what one try did to a delivery and its endpoint.
type TryResult struct {
	DeliveryID int64
	EndpointID string
	At         time.Time
	Outcome    string
	// StatusCode is the answer's status, nil when there was none.
	StatusCode *int
	DurationMs int64
	Response   string
	Error      string
	// Status and NextAttemptAt are the delivery's state after the try.
	Status        string
	NextAttemptAt time.Time
}

// DisableRule decides, inside the transaction that records a failed try, whether
// the endpoint (with its failure count and the start of its failing streak, both
// counting this try) is disabled, and why.
type DisableRule func(failures int, since time.Time) (bool, string)

// Store is where endpoints, events and deliveries live.
type Store interface {
	// CreateEndpoint stores a new endpoint.
	CreateEndpoint(ctx context.Context, e domain.Endpoint) error
	// ListEndpoints returns every endpoint, oldest first.
	ListEndpoints(ctx context.Context) ([]domain.Endpoint, error)
	// GetEndpoint returns the endpoint with id; false when there is none.
	GetEndpoint(ctx context.Context, id string) (domain.Endpoint, bool, error)
	// UpdateEndpoint applies change to the endpoint with id in one write
	// transaction and stores the result; false when there is none. change may run
	// twice and must act only on its argument.
	UpdateEndpoint(ctx context.Context, id string, change func(*domain.Endpoint) error) (domain.Endpoint, bool, error)
	// DeleteEndpoint deletes the endpoint with id and its deliveries; false when
	// there was none.
	DeleteEndpoint(ctx context.Context, id string) (bool, error)
	// ListDeliveries returns at most limit deliveries of the endpoint, newest
	// first, with ids below cursor (0: from the newest).
	ListDeliveries(ctx context.Context, endpointID string, cursor int64, limit int) ([]domain.Delivery, error)
	// ReplayDelivery makes the endpoint's delivery pending and due at now; false
	// when the endpoint has no such delivery.
	ReplayDelivery(ctx context.Context, endpointID string, id int64, now time.Time) (domain.Delivery, bool, error)
	// Subscribed tells whether an enabled endpoint is subscribed to eventType,
	// reading without taking the database's writer.
	Subscribed(ctx context.Context, eventType string) (bool, error)
	// FanOut stores ev and one pending delivery, due at now, per enabled endpoint
	// subscribed to ev.Type, in one transaction; a delivery that exists already
	// (the same endpoint and event) is kept as it is. It returns how many it added.
	FanOut(ctx context.Context, ev Event, now time.Time) (int, error)
	// Due returns at most limit pending deliveries due at now of enabled
	// endpoints, at most perEndpoint of each, soonest first, leaving out the
	// deliveries in skipDeliveries and every delivery of the endpoints in
	// skipEndpoints.
	Due(ctx context.Context, now time.Time, skipEndpoints []string, skipDeliveries []int64, perEndpoint, limit int) ([]Due, error)
	// NextDue returns when the soonest pending delivery of an enabled endpoint is
	// due; false when there is none.
	NextDue(ctx context.Context) (time.Time, bool, error)
	// RecordTry stores a try's result on its delivery and its endpoint (a delivery
	// replayed while the try ran stays pending, due as replayed): a success
	// ends the endpoint's failing streak, a failure extends it and disables the
	// endpoint when disable says so, a 410 disables it with r.Error as reason.
	RecordTry(ctx context.Context, r TryResult, disable DisableRule) error
}

// Resolver looks a host name up, for the check of a new endpoint's URL.
type Resolver func(ctx context.Context, host string) ([]netip.Addr, error)
