package app

import (
	"context"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/mailroom/mailroom/modules/delivery/internal/render"
	"github.com/mailroom/mailroom/platform/apperr"
)

// Suppression is an address that gets no mail: a later email skips it without any
// SMTP command (recipient status suppressed).
type Suppression struct {
	// Address is the suppressed address, lower-cased: mailboxes are matched without
	// regard to case (SuppressionKey).
	Address string
	// Reason says why: ReasonHardBounce, or an operator's words.
	Reason string
	// Detail is the server's reply that bounced the address; "" for one an operator
	// added.
	Detail string
	// EmailID is the email whose bounce added the address; "" for one an operator
	// added.
	EmailID string
	// Source is SourceBounce or SourceOperator.
	Source string
	// CreatedAt is when the address was added.
	CreatedAt time.Time
	// ID orders the list (newest first) and pages it; 0 before it is stored.
	ID int64
}

// Where suppressions come from, as Suppression.Source says.
const (
	// SourceBounce is a hard bounce of the mailbox (see transport.IsMailboxHardBounce).
	SourceBounce = "bounce"
	// SourceOperator is an address an operator added through the API or the CLI.
	SourceOperator = "operator"
)

// ReasonHardBounce is the reason of a suppression added by a hard bounce.
const ReasonHardBounce = "hard bounce"

// SuppressionKey is how an address is stored and matched on the suppression list:
// lower-cased as a whole. RFC 5321 lets a server treat local parts case-sensitively,
// but no mailbox provider does, and a list that missed "Bob@x" because "bob@x"
// bounced would not suppress anything.
func SuppressionKey(addr string) string { return strings.ToLower(addr) }

// SuppressionFilter selects suppressions for the list.
type SuppressionFilter struct {
	// AddressContains keeps addresses containing it, ignoring case; "" keeps all.
	AddressContains string
	// Limit is the page size: 1 to MaxSuppressionPage, 0 meaning 50.
	Limit int
	// Cursor is the ID of the last suppression of the previous page.
	Cursor int64
}

// MaxSuppressionPage is the largest page of suppressions.
const MaxSuppressionPage = 500

// MaxSuppressionReason bounds the reason an operator gives, in bytes.
const MaxSuppressionReason = 500

// SuppressionStore keeps the suppression list.
type SuppressionStore interface {
	// Suppressed returns the suppressions among addrs, by SuppressionKey.
	Suppressed(ctx context.Context, addrs []string) (map[string]Suppression, error)
	// ListSuppressions returns up to f.Limit suppressions matching f, newest first.
	ListSuppressions(ctx context.Context, f SuppressionFilter) ([]Suppression, error)
	// AddSuppression stores s unless its address is suppressed already; it returns
	// the stored suppression and whether it is new.
	AddSuppression(ctx context.Context, s Suppression) (Suppression, bool, error)
	// RemoveSuppression deletes the address's suppression; false when there was none.
	RemoveSuppression(ctx context.Context, addr string) (bool, error)
}

// Suppressions is what an operator does with the suppression list, from the API or
// the CLI.
type Suppressions struct {
	Store SuppressionStore
	Now   func() time.Time
}

// List returns one page of suppressions, newest first, and the next cursor or 0.
func (h Suppressions) List(ctx context.Context, f SuppressionFilter) ([]Suppression, int64, error) {
	if f.Limit == 0 {
		f.Limit = 50
	}
	if f.Limit < 1 || f.Limit > MaxSuppressionPage {
		return nil, 0, apperr.Invalid("limit", "must be between 1 and %d", MaxSuppressionPage)
	}
	want := f.Limit
	f.Limit++ // one more tells whether a next page exists
	items, err := h.Store.ListSuppressions(ctx, f)
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
// whether it is new (an address suppressed already keeps its entry).
func (h Suppressions) Add(ctx context.Context, address, reason string) (Suppression, bool, error) {
	addr, err := render.PlainAddress("address", address)
	if err != nil {
		return Suppression{}, false, apperr.Invalid("address", "%s", strings.TrimPrefix(err.Error(), "render: address: "))
	}
	if err := checkReason(reason); err != nil {
		return Suppression{}, false, err
	}
	if reason == "" {
		reason = "added by an operator"
	}
	s, created, err := h.Store.AddSuppression(ctx, Suppression{Address: SuppressionKey(addr), Reason: reason,
		Source: SourceOperator, CreatedAt: h.Now()})
	if err != nil {
		return Suppression{}, false, apperr.Unavailable("cannot store the suppression", err)
	}
	return s, created, nil
}

// Remove takes address off the list: later emails are sent to it again.
func (h Suppressions) Remove(ctx context.Context, address string) error {
	removed, err := h.Store.RemoveSuppression(ctx, SuppressionKey(address))
	if err != nil {
		return apperr.Unavailable("cannot remove the suppression", err)
	}
	if !removed {
		return apperr.NotFound("suppressed address", address)
	}
	return nil
}

// checkReason refuses a reason that is too long, not UTF-8, or holds a control
// character: it is shown in the console and the CLI.
func checkReason(reason string) error {
	switch {
	case len(reason) > MaxSuppressionReason:
		return apperr.Invalid("reason", "longer than %d bytes", MaxSuppressionReason)
	case !utf8.ValidString(reason):
		return apperr.Invalid("reason", "not valid UTF-8")
	case strings.ContainsFunc(reason, unicode.IsControl):
		return apperr.Invalid("reason", "must be one line without control characters")
	}
	return nil
}
