package app

import (
	"context"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	delivery "github.com/mailroom/mailroom/modules/delivery/contract"
	"github.com/mailroom/mailroom/modules/suppressions/contract"
	"github.com/mailroom/mailroom/platform/apperr"
)

// Manage is what an operator does with the suppression list, from the API or the
// CLI. Each change is committed to the module's table with its record for
// topics.suppressions, so that it reaches every instance that keeps the list
// (delivery's included) once the outbox relay has published it.
type Manage struct {
	Store Store
	Now   func() time.Time
}

// List returns one page of suppressions, newest first, and the next cursor or 0.
func (m Manage) List(ctx context.Context, f Filter) ([]Suppression, int64, error) {
	if f.Limit == 0 {
		f.Limit = 50
	}
	if f.Limit < 1 || f.Limit > MaxPage {
		return nil, 0, apperr.Invalid("limit", "must be between 1 and %d", MaxPage)
	}
	want := f.Limit
	f.Limit++ // one more tells whether a next page exists
	items, err := m.Store.List(ctx, f)
	if err != nil {
		return nil, 0, apperr.Unavailable("cannot list suppressions", err)
	}
	var next int64
	if len(items) > want {
		items = items[:want]
		next = items[want-1].ID
	}
	return items, next, nil
}

// Add suppresses address for the given reason and returns the suppression and
// whether it is new (an address suppressed already keeps its entry, and nothing is
// published).
func (m Manage) Add(ctx context.Context, address, reason string) (Suppression, bool, error) {
	addr, err := checkAddress(address)
	if err != nil {
		return Suppression{}, false, err
	}
	if err := checkReason(reason); err != nil {
		return Suppression{}, false, err
	}
	if reason == "" {
		reason = "added by an operator"
	}
	s, created, err := m.Store.Add(ctx, Suppression{Address: contract.Key(addr), Reason: reason,
		Source: contract.SourceOperator, CreatedAt: m.Now().UTC()})
	if err != nil {
		return Suppression{}, false, apperr.Unavailable("cannot store the suppression", err)
	}
	return s, created, nil
}

// Remove takes address off the list: later emails are sent to it again.
func (m Manage) Remove(ctx context.Context, address string) error {
	removed, err := m.Store.Remove(ctx, contract.Key(address), m.Now().UTC())
	if err != nil {
		return apperr.Unavailable("cannot remove the suppression", err)
	}
	if !removed {
		return apperr.NotFound("suppressed address", address)
	}
	return nil
}

// checkAddress returns address with its domain lower-cased if it is a bare address
// delivery could send to (the delivery contract's rule), or the error naming the
// field "address" and what is wrong.
func checkAddress(address string) (string, error) {
	switch {
	case strings.ContainsAny(address, "\r\n\x00"):
		return "", apperr.Invalid("address", "contains CR, LF or NUL")
	case !utf8.ValidString(address):
		return "", apperr.Invalid("address", "not valid UTF-8")
	}
	addr, problem := delivery.PlainAddress(address)
	if problem != "" {
		return "", apperr.Invalid("address", "%s", problem)
	}
	return addr, nil
}

// checkReason refuses a reason that is too long, not UTF-8, or holds a control
// character: it is shown in the console and the CLI.
func checkReason(reason string) error {
	switch {
	case len(reason) > MaxReason:
		return apperr.Invalid("reason", "longer than %d bytes", MaxReason)
	case !utf8.ValidString(reason):
		return apperr.Invalid("reason", "not valid UTF-8")
	case strings.ContainsFunc(reason, unicode.IsControl):
		return apperr.Invalid("reason", "must be one line without control characters")
	}
	return nil
}
