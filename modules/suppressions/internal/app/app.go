// Package app holds the suppressions module's use cases: an operator lists, adds
// and removes suppressed addresses (Manage), and the module keeps its table in step
// with the records of topics.suppressions, whoever wrote them (Apply). It takes
// plain values: the ports adapt HTTP requests and broker messages to it.
package app

import (
	"context"
	"time"

	"github.com/mailroom/mailroom/modules/suppressions/contract"
)

// Application is the table of contents of the suppressions module: every use case.
type Application struct {
	// Manage lists, adds and removes suppressed addresses, for the API and the CLI.
	Manage Manage
	// Apply keeps the module's table in step with topics.suppressions.
	Apply Apply
}

// Suppression is an address that gets no mail, as this module's table holds it.
type Suppression struct {
	// Address is the suppressed address, keyed by contract.Key (lower-cased).
	Address string
	// Reason says why: contract.ReasonHardBounce, or an operator's words.
	Reason string
	// Detail is the server's reply that bounced the address; "" for one an
	// operator added.
	Detail string
	// EmailID is the email whose bounce added the address; "" for one an operator
	// added.
	EmailID string
	// Source is contract.SourceBounce or contract.SourceOperator.
	Source string
	// CreatedAt is when the address was suppressed.
	CreatedAt time.Time
	// ID orders the list (newest first) and pages it: the order in which this
	// instance's table learnt of the addresses. 0 before it is stored.
	ID int64
}

// Changed is the record of s on topics.suppressions.
func (s Suppression) Changed() contract.Changed {
	return contract.Suppressed(s.Address, s.Reason, s.Detail, s.EmailID, s.Source, s.CreatedAt)
}

// Filter selects suppressions for the list.
type Filter struct {
	// AddressContains keeps addresses containing it, ignoring case; "" keeps all.
	AddressContains string
	// Limit is the page size: 1 to MaxPage, 0 meaning 50.
	Limit int
	// Cursor is the ID of the last suppression of the previous page.
	Cursor int64
}

// MaxPage is the largest page of suppressions.
const MaxPage = 500

// MaxReason bounds the reason an operator gives, in bytes.
const MaxReason = 500

// Store keeps the module's table of suppressions, and writes each change the
// module makes to the outbox in the same transaction, as a contract.Changed
// record for topics.suppressions. Declared here, where it is used.
type Store interface {
	// List returns up to f.Limit suppressions matching f, newest first.
	List(ctx context.Context, f Filter) ([]Suppression, error)
	// Add stores s, with its record in the outbox, unless its address is
	// suppressed already; it returns the stored suppression and whether it is new.
	Add(ctx context.Context, s Suppression) (Suppression, bool, error)
	// Remove deletes the address's suppression, with the record of its removal at
	// at in the outbox; false, and nothing written, when there was none.
	Remove(ctx context.Context, address string, at time.Time) (bool, error)
	// Apply makes the table say what c says of its address (suppressed, with its
	// reason, or not on the list), writing nothing to the outbox: c is on the topic
	// already.
	Apply(ctx context.Context, c contract.Changed) error
	// Announce writes to the outbox, once, the record of each suppression the
	// table adopted when it was made (the delivery module's list before the
	// upgrade), so that every instance learns them; it returns how many.
	Announce(ctx context.Context) (int, error)
}

// Apply applies the records of topics.suppressions, in their order, to the
// module's table. The table then ends as the topic does: a record this instance
// wrote is applied again (no change), and one another instance wrote after it
// wins, as it does everywhere.
type Apply struct {
	Store Store
}

// Handle applies c, a record Check found valid.
func (a Apply) Handle(ctx context.Context, c contract.Changed) error {
	return a.Store.Apply(ctx, c)
}
