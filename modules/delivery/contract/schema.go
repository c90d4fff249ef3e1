package contract

import "embed"

// SchemaVersion is the version of the JSON schemas of the messages this contract
// puts on the topics between Mailroom's roles: SendEmail on topics.send and the
// retry tiers' topics, EmailAttempted on topics.events, DeadLetter on
// topics.dead_letter. Each such message carries it in its metadata under
// "schema_version" (broker.SchemaVersionKey). Adding an optional field keeps the
// version; renaming or removing a field, or changing what one means, makes a new
// version, and a consumer that reads only older ones refuses it instead of
// misreading it: an API upgraded before its workers never has its mail sent wrong.
const SchemaVersion = 1

// Schemas holds the JSON Schemas (draft 2020-12) of version SchemaVersion, one file
// per message type: send_email.v1.schema.json, email_attempted.v1.schema.json and
// dead_letter.v1.schema.json (which refer to the first's definitions). They are the
// contract a delivery worker and an API instance of different builds keep between
// them; a test validates every message a run of Mailroom puts on Kafka against them.
//
//go:embed send_email.v1.schema.json email_attempted.v1.schema.json dead_letter.v1.schema.json
var Schemas embed.FS

// SchemaVersion implements broker.Versioned: see the package's SchemaVersion.
func (SendEmail) SchemaVersion() int { return SchemaVersion }

// SchemaVersion implements broker.Versioned: see the package's SchemaVersion.
func (EmailAttempted) SchemaVersion() int { return SchemaVersion }

// SchemaVersion implements broker.Versioned: see the package's SchemaVersion.
func (DeadLetter) SchemaVersion() int { return SchemaVersion }
