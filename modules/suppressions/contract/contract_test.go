package contract_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mailroom/mailroom/modules/suppressions/contract"
)

// TestARecordIsWrittenInTheSchemaOfItsVersion holds the JSON of the records to
// schema version 1, byte for byte: other versions of Mailroom read them from the
// compacted topic for as long as it keeps them.
func TestARecordIsWrittenInTheSchemaOfItsVersion(t *testing.T) {
	at := time.Date(2026, 12, 6, 10, 0, 0, 0, time.FixedZone("KST", 9*3600))
	for _, tt := range []struct {
		name   string
		record contract.Changed
		want   string
	}{
		{"a hard bounce", contract.Suppressed("Bob@Example.COM", contract.ReasonHardBounce, "550 5.1.1 No such user", "0198abc", contract.SourceBounce, at),
			`{"version":1,"address":"bob@example.com","state":"suppressed","reason":"hard bounce","detail":"550 5.1.1 No such user","email_id":"0198abc","source":"bounce","at":"2026-12-06T01:00:00Z"}`},
		{"an operator's", contract.Suppressed("carol@example.org", "asked us to stop", "", "", contract.SourceOperator, at),
			`{"version":1,"address":"carol@example.org","state":"suppressed","reason":"asked us to stop","source":"operator","at":"2026-12-06T01:00:00Z"}`},
		{"a removal", contract.Removed("Carol@example.org", at),
			`{"version":1,"address":"carol@example.org","state":"removed","at":"2026-12-06T01:00:00Z"}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(tt.record)
			if err != nil || string(b) != tt.want {
				t.Fatalf("JSON %s (%v), want %s", b, err, tt.want)
			}
			back, err := contract.Decode(b)
			if err != nil || back != tt.record {
				t.Errorf("decoded %+v (%v), want %+v", back, err, tt.record)
			}
		})
	}
}

// TestARecordThisVersionCannotReadIsRefusedSayingWhy: Decode refuses what is not a
// record, a record of a newer schema version (as ErrNewerVersion, so that a reader
// can tell it from a broken one), and records without a version, with an address
// not keyed as Key keys it, or with an unknown state or source.
func TestARecordThisVersionCannotReadIsRefusedSayingWhy(t *testing.T) {
	for _, tt := range []struct {
		name, payload, says string
		newer               bool
	}{
		{"not JSON", `not json`, "not a suppression record", false},
		{"a newer version", `{"version":2,"address":"a@x.com","state":"forgotten"}`, "schema version 2", true},
		{"no version", `{"address":"a@x.com","state":"removed"}`, "no version", false},
		{"an address not lower-cased", `{"version":1,"address":"A@x.com","state":"removed"}`, "not lower-case", false},
		{"no address", `{"version":1,"state":"removed"}`, "is empty", false},
		{"an unknown state", `{"version":1,"address":"a@x.com","state":"paused"}`, `state "paused"`, false},
		{"an unknown source", `{"version":1,"address":"a@x.com","state":"suppressed","source":"guess"}`, `source "guess"`, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := contract.Decode([]byte(tt.payload))
			if err == nil || !strings.Contains(err.Error(), tt.says) || errors.Is(err, contract.ErrNewerVersion) != tt.newer {
				t.Errorf("Decode(%s) = %v; want an error saying %q, newer version %v", tt.payload, err, tt.says, tt.newer)
			}
		})
	}
}
