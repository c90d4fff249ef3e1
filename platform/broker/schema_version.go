package broker

import (
	"fmt"
	"strconv"

	"github.com/ThreeDotsLabs/watermill/message"
)

// SchemaVersionKey is the metadata key (a Kafka record header) carrying the version
// of a message's JSON schema, as the contract that defines the payload numbers it.
// The topics between Mailroom's roles are a contract between processes that are
// upgraded one at a time: a consumer reads the version before the payload and
// refuses one it does not know rather than misread it.
const SchemaVersionKey = "schema_version"

// Versioned is a payload whose contract versions its schema. outbox.NewMessage
// writes the version of such a payload under SchemaVersionKey, so every message
// of one type carries it however many places build one.
type Versioned interface {
	// SchemaVersion is the version of the payload's JSON schema: 1, 2, ...
	SchemaVersion() int
}

// CheckSchemaVersion returns nil when a consumer that reads versions up to reads
// can read msg: its SchemaVersionKey is a version from 1 to reads, or absent
// (messages from versions of Mailroom before schema versions, which are version
// 1). Otherwise it says which version the message has and which this instance
// reads, so the operator knows to upgrade it.
func CheckSchemaVersion(msg *message.Message, reads int) error {
	v := msg.Metadata.Get(SchemaVersionKey)
	if v == "" {
		return nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return fmt.Errorf("%s %q is not a schema version", SchemaVersionKey, v)
	}
	if n > reads {
		return fmt.Errorf("%s %d is newer than this instance reads (up to %d): upgrade it", SchemaVersionKey, n, reads)
	}
	return nil
}
