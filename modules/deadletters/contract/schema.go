package contract

import "embed"

// SchemaVersion is the version of the JSON schema of the events this contract
// puts on topics.events (EmailDeadLettered, EmailReplayed, EmailDiscarded), carried
// in each message's metadata under "schema_version" (broker.SchemaVersionKey).
// Adding an optional field keeps the version; a change that would make an older
// consumer misread an event makes a new one, which that consumer refuses.
const SchemaVersion = 1

// Schemas holds events.v1.schema.json, the JSON Schema (draft 2020-12) of version
// SchemaVersion: one definition per event type under $defs, named as the event_type
// metadata names it (e.g. #/$defs/deadletters.EmailReplayed).
//
//go:embed events.v1.schema.json
var Schemas embed.FS

// SchemaVersion implements broker.Versioned: see the package's SchemaVersion.
func (EmailDeadLettered) SchemaVersion() int { return SchemaVersion }

// SchemaVersion implements broker.Versioned: see the package's SchemaVersion.
func (EmailReplayed) SchemaVersion() int { return SchemaVersion }

// SchemaVersion implements broker.Versioned: see the package's SchemaVersion.
func (EmailDiscarded) SchemaVersion() int { return SchemaVersion }
