package app

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/mailroom/mailroom/modules/emails/contract"
	"github.com/mailroom/mailroom/modules/webhooks/internal/domain"
	"github.com/mailroom/mailroom/platform/apperr"
)

// MaxPageSize is the most deliveries one page of ListDeliveries holds.
const MaxPageSize = 500

// MaxDescriptionBytes is the longest description an endpoint may have.
const MaxDescriptionBytes = 1024

// Manage is what an operator does with endpoints and their deliveries.
type Manage struct {
	Store Store
	// AllowPrivateTargets lets endpoints target loopback, private and link-local
	// addresses (webhooks.allow_private_targets).
	AllowPrivateTargets bool
	// Resolve looks a URL's host name up at creation and on a URL change.
	Resolve Resolver
	Now     func() time.Time
	// Wake tells the sender that deliveries may have become due (a replay, an
	// endpoint enabled); nil for none.
	Wake func()
}

// NewEndpoint is what a client gives to create an endpoint.
type NewEndpoint struct {
	URL         string
	Events      []string
	Description string
}

// EndpointChange is what a client changes of an endpoint; nil fields stay.
type EndpointChange struct {
	URL         *string
	Events      *[]string
	Description *string
	Enabled     *bool
}

// Create checks e and stores a new enabled endpoint with a new secret.
func (m Manage) Create(ctx context.Context, e NewEndpoint) (domain.Endpoint, error) {
	if err := m.checkURL(ctx, e.URL); err != nil {
		return domain.Endpoint{}, err
	}
	if err := checkEvents(e.Events); err != nil {
		return domain.Endpoint{}, err
	}
	if err := checkDescription(e.Description); err != nil {
		return domain.Endpoint{}, err
	}
	secret, err := domain.NewSecret()
	if err != nil {
		return domain.Endpoint{}, err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return domain.Endpoint{}, fmt.Errorf("endpoint id: %w", err)
	}
	now := m.Now().UTC().Truncate(time.Millisecond)
	ep := domain.Endpoint{ID: id.String(), URL: e.URL, Events: e.Events, Description: e.Description,
		Secret: secret, Enabled: true, CreatedAt: now, UpdatedAt: now}
	if err := m.Store.CreateEndpoint(ctx, ep); err != nil {
		return domain.Endpoint{}, err
	}
	return ep, nil
}

// List returns every endpoint, oldest first.
func (m Manage) List(ctx context.Context) ([]domain.Endpoint, error) {
	return m.Store.ListEndpoints(ctx)
}

// Get returns the endpoint with id, or a not-found error.
func (m Manage) Get(ctx context.Context, id string) (domain.Endpoint, error) {
	ep, ok, err := m.Store.GetEndpoint(ctx, id)
	if err != nil {
		return ep, err
	}
	if !ok {
		return ep, apperr.NotFound("webhook", id)
	}
	return ep, nil
}

// Update applies c to the endpoint with id. Enabling a disabled endpoint clears its
// disabled_reason and failing streak, and its waiting deliveries are tried again;
// disabling one keeps its deliveries waiting.
func (m Manage) Update(ctx context.Context, id string, c EndpointChange) (domain.Endpoint, error) {
	if c.URL != nil {
		if err := m.checkURL(ctx, *c.URL); err != nil {
			return domain.Endpoint{}, err
		}
	}
	if c.Events != nil {
		if err := checkEvents(*c.Events); err != nil {
			return domain.Endpoint{}, err
		}
	}
	if c.Description != nil {
		if err := checkDescription(*c.Description); err != nil {
			return domain.Endpoint{}, err
		}
	}
	now := m.Now().UTC().Truncate(time.Millisecond)
	ep, ok, err := m.Store.UpdateEndpoint(ctx, id, func(ep *domain.Endpoint) error {
		applyChange(ep, c, now)
		return nil
	})
	if err != nil {
		return ep, err
	}
	if !ok {
		return ep, apperr.NotFound("webhook", id)
	}
	if ep.Enabled && m.Wake != nil {
		m.Wake()
	}
	return ep, nil
}

// applyChange sets c's fields on ep at now.
func applyChange(ep *domain.Endpoint, c EndpointChange, now time.Time) {
	if c.URL != nil {
		ep.URL = *c.URL
	}
	if c.Events != nil {
		ep.Events = *c.Events
	}
	if c.Description != nil {
		ep.Description = *c.Description
	}
	if c.Enabled != nil && *c.Enabled != ep.Enabled {
		ep.Enabled = *c.Enabled
		if ep.Enabled {
			ep.DisabledReason, ep.ConsecutiveFailures, ep.FailingSince = "", 0, nil
		} else {
			ep.DisabledReason = "disabled by an operator at " + now.Format(time.RFC3339)
		}
	}
	ep.UpdatedAt = now
}

// Delete deletes the endpoint with id and its deliveries, pending ones included.
func (m Manage) Delete(ctx context.Context, id string) error {
	ok, err := m.Store.DeleteEndpoint(ctx, id)
	if err != nil {
		return err
	}
	if !ok {
		return apperr.NotFound("webhook", id)
	}
	return nil
}

// RotateSecret gives the endpoint with id a new secret and returns it. The old one
// stops signing at once: the next try, of any delivery, is signed with the new one.
func (m Manage) RotateSecret(ctx context.Context, id string) (string, error) {
	secret, err := domain.NewSecret()
	if err != nil {
		return "", err
	}
	now := m.Now().UTC().Truncate(time.Millisecond)
	_, ok, err := m.Store.UpdateEndpoint(ctx, id, func(ep *domain.Endpoint) error {
		ep.Secret, ep.UpdatedAt = secret, now
		return nil
	})
	if err != nil {
		return "", err
	}
	if !ok {
		return "", apperr.NotFound("webhook", id)
	}
	return secret, nil
}

// Deliveries returns a page of the endpoint's deliveries, newest first, and the
// cursor of the next page (0 when this is the last).
func (m Manage) Deliveries(ctx context.Context, endpointID string, cursor int64, limit int) ([]domain.Delivery, int64, error) {
	if _, err := m.Get(ctx, endpointID); err != nil {
		return nil, 0, err
	}
	if limit == 0 {
		limit = 50
	}
	items, err := m.Store.ListDeliveries(ctx, endpointID, cursor, limit+1)
	if err != nil {
		return nil, 0, err
	}
	var next int64
	if len(items) > limit {
		items = items[:limit]
		next = items[limit-1].ID
	}
	return items, next, nil
}

// Replay makes a delivery pending and due now: a new try of the same event, with
// the same webhook-id. A replay of a disabled endpoint's delivery waits for the
// endpoint to be enabled.
func (m Manage) Replay(ctx context.Context, endpointID, deliveryID string) (domain.Delivery, error) {
	id, err := strconv.ParseInt(deliveryID, 10, 64)
	if err != nil || id < 1 {
		return domain.Delivery{}, apperr.NotFound("delivery", deliveryID)
	}
	if _, err := m.Get(ctx, endpointID); err != nil {
		return domain.Delivery{}, err
	}
	d, ok, err := m.Store.ReplayDelivery(ctx, endpointID, id, m.Now().UTC())
	if err != nil {
		return d, err
	}
	if !ok {
		return d, apperr.NotFound("delivery", deliveryID)
	}
	if m.Wake != nil {
		m.Wake()
	}
	return d, nil
}

// checkURL refuses a malformed URL and, unless AllowPrivateTargets, a host that is
// a forbidden address or resolves to forbidden addresses only. A name that does not
// resolve now is let through: the dialer checks every address it connects to.
func (m Manage) checkURL(ctx context.Context, raw string) error {
	host, err := domain.CheckURL(raw)
	if err != nil {
		return apperr.Invalid("url", "%v", err)
	}
	if m.AllowPrivateTargets {
		return nil
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if domain.ForbiddenAddr(a) {
			return apperr.Invalid("url", "%s is a loopback, private, link-local or otherwise internal address; webhooks may not target it (webhooks.allow_private_targets)", host)
		}
		return nil
	}
	if m.Resolve == nil {
		return nil
	}
	rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	addrs, err := m.Resolve(rctx, host)
	if err != nil || len(addrs) == 0 {
		return nil
	}
	for _, a := range addrs {
		if !domain.ForbiddenAddr(a) {
			return nil
		}
	}
	return apperr.Invalid("url", "%s resolves only to loopback, private, link-local or otherwise internal addresses; webhooks may not target them (webhooks.allow_private_targets)", apperr.Clip(host))
}

// checkEvents requires a non-empty list of known event types, each once.
func checkEvents(events []string) error {
	if len(events) == 0 {
		return apperr.Invalid("events", "must list at least one event type (%v)", contract.EventTypes)
	}
	seen := map[string]bool{}
	for i, t := range events {
		field := fmt.Sprintf("events[%d]", i)
		if !contract.KnownEventType(t) {
			return apperr.Invalid(field, "%q is not an event type (%v)", apperr.Clip(t), contract.EventTypes)
		}
		if seen[t] {
			return apperr.Invalid(field, "%q is listed twice", t)
		}
		seen[t] = true
	}
	return nil
}

func checkDescription(d string) error {
	if len(d) > MaxDescriptionBytes {
		return apperr.Invalid("description", "must be at most %d bytes, got %d", MaxDescriptionBytes, len(d))
	}
	return nil
}
