// Package contract holds what other modules may know of the suppression list: the
// record of an address's state on topics.suppressions, its schema version, and how
// an address is keyed. Every module that keeps a copy of the list (the suppressions
// module for the API, delivery before it sends) reads and writes these records, and
// nothing else of each other. It imports nothing but the standard library.
package contract

import (
	"embed"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// SchemaVersion is the version of Changed's JSON schema that this code writes, and
// the newest it reads; each record carries it in its metadata under
// "schema_version" (broker.SchemaVersionKey). Adding an optional field keeps it (a
// reader ignores fields it does not know); renaming or removing one, or changing
// what one means, raises it, and a reader that meets a newer version stops on it,
// unacknowledged, until it is upgraded, rather than misread it or move past it: so
// readers are upgraded before writers.
const SchemaVersion = 1

// Schemas holds the JSON Schema (draft 2020-12) of version SchemaVersion,
// changed.v1.schema.json.
//
//go:embed changed.v1.schema.json
var Schemas embed.FS

// SchemaVersion implements broker.Versioned: see the package's SchemaVersion.
func (Changed) SchemaVersion() int { return SchemaVersion }

// States of an address on the list, as Changed.State says.
const (
	// StateSuppressed: the address gets no mail; Reason, Source and At say why and
	// since when.
	StateSuppressed = "suppressed"
	// StateRemoved: the address was taken off the list and gets mail again.
	StateRemoved = "removed"
)

// Sources of a suppression, as Changed.Source says.
const (
	// SourceBounce is a hard bounce of the mailbox, decided by delivery.
	SourceBounce = "bounce"
	// SourceOperator is an operator's, through the API or the CLI.
	SourceOperator = "operator"
)

// ReasonHardBounce is the reason of a suppression a hard bounce added.
const ReasonHardBounce = "hard bounce"

// Changed is the latest state of one address on the suppression list: one record
// of topics.suppressions, keyed by Key(Address), so that the compacted topic keeps
// at least the last record of every address and a reader that applies the records
// in order ends with the list. It travels through the writer's outbox, committed
// with the writer's own change.
type Changed struct {
	// Address is the address, as Key keys it (lower-cased as a whole).
	Address string `json:"address"`
	// State is StateSuppressed or StateRemoved.
	State string `json:"state"`
	// Reason says why the address is suppressed: ReasonHardBounce, or an
	// operator's words. Empty when removed.
	Reason string `json:"reason,omitempty"`
	// Detail is the server's reply that bounced the address; empty otherwise.
	Detail string `json:"detail,omitempty"`
	// EmailID is the email whose bounce suppressed the address; empty otherwise.
	EmailID string `json:"email_id,omitempty"`
	// Source is SourceBounce or SourceOperator; empty when removed.
	Source string `json:"source,omitempty"`
	// At is when the address entered this state: when it was suppressed (the
	// list's created_at), or removed.
	At time.Time `json:"at"`
}

// Key is how an address is keyed, stored and matched on the suppression list:
// lower-cased as a whole. RFC 5321 lets a server treat local parts
// case-sensitively, but no mailbox provider does, and a list that missed "Bob@x"
// because "bob@x" bounced would not suppress anything.
func Key(address string) string { return strings.ToLower(address) }

// Suppressed is the record of address suppressed at at, for reason, by source
// (with the reply and the email that bounced, for a bounce).
func Suppressed(address, reason, detail, emailID, source string, at time.Time) Changed {
	return Changed{Address: Key(address), State: StateSuppressed, Reason: reason,
		Detail: detail, EmailID: emailID, Source: source, At: at.UTC()}
}

// Removed is the record of address taken off the list at at.
func Removed(address string, at time.Time) Changed {
	return Changed{Address: Key(address), State: StateRemoved, At: at.UTC()}
}

// Check reports what is wrong with a record read from the topic, or nil: no address
// or one not keyed by Key, or a state or source that is none of the known ones.
func (c Changed) Check() error {
	switch {
	case c.Address == "" || c.Address != Key(c.Address):
		return fmt.Errorf("address %q is empty or not lower-case", c.Address)
	case c.State == StateRemoved:
		return nil
	case c.State != StateSuppressed:
		return fmt.Errorf("state %q is neither %q nor %q", c.State, StateSuppressed, StateRemoved)
	case c.Source != SourceBounce && c.Source != SourceOperator:
		return fmt.Errorf("source %q is neither %q nor %q", c.Source, SourceBounce, SourceOperator)
	}
	return nil
}

// Decode reads the payload of a record of topics.suppressions (of a schema version
// this code reads) and checks it (Check); the error says what is wrong.
func Decode(payload []byte) (Changed, error) {
	var c Changed
	if err := json.Unmarshal(payload, &c); err != nil {
		return Changed{}, fmt.Errorf("not a suppression record: %w", err)
	}
	if err := c.Check(); err != nil {
		return Changed{}, fmt.Errorf("suppression record of %q: %w", c.Address, err)
	}
	return c, nil
}
