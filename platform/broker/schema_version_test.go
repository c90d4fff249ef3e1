package broker_test

import (
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/mailroom/mailroom/platform/broker"
)

func TestCheckSchemaVersionReadsUpToItsVersionAndOlderMessagesWithoutOne(t *testing.T) {
	for _, c := range []struct {
		header string // "-" for none
		want   string // "" for nil, else a part of the error
	}{
		{"-", ""},
		{"1", ""},
		{"2", ""},
		{"3", `schema_version 3 is newer than this instance reads (up to 2): upgrade it`},
		{"0", `schema_version "0" is not a schema version`},
		{"two", `schema_version "two" is not a schema version`},
	} {
		msg := message.NewMessage("m", nil)
		if c.header != "-" {
			msg.Metadata.Set(broker.SchemaVersionKey, c.header)
		}
		err := broker.CheckSchemaVersion(msg, 2)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("version %s, reading up to 2: %v, want nil", c.header, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("version %s, reading up to 2: %v, want an error saying %q", c.header, err, c.want)
		}
	}
}
