package contract_test

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/mailroom/mailroom/modules/suppressions/contract"
)

// TestARecordIsWrittenAsItsPublishedSchemaSays holds the JSON of the records byte
// for byte, and to the published schema of version 1: other versions of Mailroom,
// and other services, read them from the compacted topic for as long as it keeps
// them.
func TestARecordIsWrittenAsItsPublishedSchemaSays(t *testing.T) {
	schema := compileSchema(t)
	at := time.Date(2026, 12, 6, 10, 0, 0, 0, time.FixedZone("KST", 9*3600))
	for _, tt := range []struct {
		name   string
		record contract.Changed
		want   string
	}{
		{"a hard bounce", contract.Suppressed("Bob@Example.COM", contract.ReasonHardBounce, "550 5.1.1 No such user", "0198abc", contract.SourceBounce, at),
			`{"address":"bob@example.com","state":"suppressed","reason":"hard bounce","detail":"550 5.1.1 No such user","email_id":"0198abc","source":"bounce","at":"2026-12-06T01:00:00Z"}`},
		{"an operator's", contract.Suppressed("carol@example.org", "asked us to stop", "", "", contract.SourceOperator, at),
			`{"address":"carol@example.org","state":"suppressed","reason":"asked us to stop","source":"operator","at":"2026-12-06T01:00:00Z"}`},
		{"a removal", contract.Removed("Carol@example.org", at),
			`{"address":"carol@example.org","state":"removed","at":"2026-12-06T01:00:00Z"}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(tt.record)
			if err != nil || string(b) != tt.want {
				t.Fatalf("JSON %s (%v), want %s", b, err, tt.want)
			}
			inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
			if err == nil {
				err = schema.Validate(inst)
			}
			if err != nil {
				t.Errorf("%s breaks changed.v1.schema.json: %v", b, err)
			}
			back, err := contract.Decode(b)
			if err != nil || back != tt.record {
				t.Errorf("decoded %+v (%v), want %+v", back, err, tt.record)
			}
		})
	}
	if v := (contract.Changed{}).SchemaVersion(); v != 1 {
		t.Errorf("records carry schema_version %d, want 1", v)
	}
}

// TestARecordThatCannotBeReadIsRefusedSayingWhy: Decode refuses what is not a
// record, and records with an address not keyed as Key keys it, or with an
// unknown state or source; the schema refuses them too.
func TestARecordThatCannotBeReadIsRefusedSayingWhy(t *testing.T) {
	schema := compileSchema(t)
	for _, tt := range []struct{ name, payload, says string }{
		{"not JSON", `not json`, "not a suppression record"},
		{"an address not lower-cased", `{"address":"A@x.com","state":"removed","at":"2026-12-06T01:00:00Z"}`, "not lower-case"},
		{"no address", `{"state":"removed","at":"2026-12-06T01:00:00Z"}`, "is empty"},
		{"an unknown state", `{"address":"a@x.com","state":"paused","at":"2026-12-06T01:00:00Z"}`, `state "paused"`},
		{"an unknown source", `{"address":"a@x.com","state":"suppressed","reason":"x","source":"guess","at":"2026-12-06T01:00:00Z"}`, `source "guess"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := contract.Decode([]byte(tt.payload)); err == nil || !strings.Contains(err.Error(), tt.says) {
				t.Errorf("Decode(%s) = %v; want an error saying %q", tt.payload, err, tt.says)
			}
			if inst, err := jsonschema.UnmarshalJSON(strings.NewReader(tt.payload)); err == nil && schema.Validate(inst) == nil {
				t.Errorf("changed.v1.schema.json accepts %s", tt.payload)
			}
		})
	}
}

// compileSchema compiles changed.v1.schema.json, formats asserted.
func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	b, err := fs.ReadFile(contract.Schemas, "changed.v1.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	url := doc.(map[string]any)["$id"].(string)
	if err := c.AddResource(url, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(url)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
