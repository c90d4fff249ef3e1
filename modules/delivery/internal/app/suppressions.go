package app

import (
	"context"
	"time"

	suppressions "github.com/mailroom/mailroom/modules/suppressions/contract"
)

// Suppression is an address that gets no mail: a later email skips it without any
// SMTP command (recipient status suppressed). Delivery keeps a copy of the
// suppression list, which lives on topics.suppressions, and checks it before it
// sends; a hard bounce it decides goes into the copy and onto the topic.
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
}

// Changed is the record of s on topics.suppressions.
func (s Suppression) Changed() suppressions.Changed {
	return suppressions.Suppressed(s.Address, s.Reason, s.Detail, s.EmailID, s.Source, s.CreatedAt)
}

// Where suppressions come from, as Suppression.Source says (the contract's).
const (
	// SourceBounce is a hard bounce of the mailbox (see transport.IsMailboxHardBounce).
	SourceBounce = suppressions.SourceBounce
	// SourceOperator is an address an operator added through the API or the CLI.
	SourceOperator = suppressions.SourceOperator
)

// ReasonHardBounce is the reason of a suppression added by a hard bounce.
const ReasonHardBounce = suppressions.ReasonHardBounce

// SuppressionKey is how an address is stored and matched on the suppression list
// (the contract's Key: lower-cased as a whole).
func SuppressionKey(addr string) string { return suppressions.Key(addr) }

// SuppressionStore is delivery's copy of the suppression list.
type SuppressionStore interface {
	// Suppressed returns the suppressions among addrs, by SuppressionKey.
	Suppressed(ctx context.Context, addrs []string) (map[string]Suppression, error)
	// ApplySuppression makes the copy say what c says of its address, writing
	// nothing to the outbox: c is on the topic already.
	ApplySuppression(ctx context.Context, c suppressions.Changed) error
	// AnnounceSuppressions writes to the outbox, once, the record of each
	// suppression the copy held before the list moved to the topic, so that every
	// instance learns them; it returns how many.
	AnnounceSuppressions(ctx context.Context) (int, error)
}

// SuppressionCopy keeps delivery's copy of the suppression list in step with
// topics.suppressions. Applied in the topic's order, every record (an operator's
// change, another worker's bounce, this worker's own bounce again) leaves the copy
// as the topic ends, on every instance alike.
type SuppressionCopy struct {
	Store SuppressionStore
}

// Apply applies c, a record the contract's Check found valid.
func (h SuppressionCopy) Apply(ctx context.Context, c suppressions.Changed) error {
	return h.Store.ApplySuppression(ctx, c)
}

// Announce publishes, once, the suppressions the copy held before the upgrade.
func (h SuppressionCopy) Announce(ctx context.Context) (int, error) {
	return h.Store.AnnounceSuppressions(ctx)
}
