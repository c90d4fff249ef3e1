package httpserver_test

import (
	"strings"
	"testing"

	"github.com/mailroom/mailroom/platform/apperr"
)

// encoding/json matches object keys to struct fields case-insensitively, with
// Unicode folding ("ſ" is "s", the Kelvin sign is "k"). Two keys for one field
// would then pass the duplicate check and the last would win: a way to smuggle a
// value past whatever read the first. Keys must name fields exactly.
func TestDecodeJSONRefusesKeysThatNameAFieldOnlyByFolding(t *testing.T) {
	cases := []struct {
		name  string
		body  string
		field string
	}{
		{name: "a key in upper case beside the field's own key", body: `{"to":["a@example.com"],"To":["evil@example.com"]}`, field: "To"},
		{name: "a key in upper case alone", body: `{"SUBJECT":"x"}`, field: "SUBJECT"},
		{name: "a key spelled with the long s", body: `{"subject":"x","ſubject":"y"}`, field: "ſubject"},
		{name: "a nested key in the wrong case", body: `{"nested":{"A":1}}`, field: "nested.A"},
		{name: "a key two levels down in the wrong case", body: `{"nested":{"inner":{"B":"x"}}}`, field: "nested.inner.B"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := decode(t, "application/json", c.body)
			e, ok := apperr.As(err)
			if !ok {
				t.Fatalf("DecodeJSON(%s) = %v, want an apperr", c.body, err)
			}
			if e.Code != apperr.CodeInvalidField || e.Field != c.field || !strings.Contains(e.Message, "unknown field") {
				t.Fatalf("DecodeJSON(%s) = %v (field %q), want invalid_field, unknown field %q", c.body, e, e.Field, c.field)
			}
		})
	}
}

func TestDecodeJSONKeepsMapKeysAndFreeFormValuesAsWritten(t *testing.T) {
	v, err := decode(t, "application/json", `{"metadata":{"k":"1","K":"2"},"any":{"Whatever":{"X":1}}}`)
	if err != nil {
		t.Fatalf("DecodeJSON: %v", err)
	}
	if v.Metadata["k"] != "1" || v.Metadata["K"] != "2" {
		t.Errorf("metadata = %v, want both keys as written", v.Metadata)
	}
}

func TestDecodeJSONNamesTheFieldOfANumberTooLargeForAFloat(t *testing.T) {
	_, err := decode(t, "application/json", `{"subject":1e999}`)
	e, ok := apperr.As(err)
	if !ok || e.Code != apperr.CodeInvalidField || e.Field != "subject" {
		t.Fatalf("DecodeJSON = %v, want invalid_field naming subject", err)
	}
}
