package outbox

import (
	"encoding/json"
	"maps"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
)

// TestDecodeMetadataMatchesEncodingJSON holds the fast path to what encoding/json
// makes of the same column, for what Add writes and for what it never writes.
func TestDecodeMetadataMatchesEncodingJSON(t *testing.T) {
	written := []message.Metadata{
		{},
		{"partition_key": "0194f3c2-aaaa", "event_type": "SendEmail", "correlation_id": "c-1"},
		{"k": "<html>&\"quoted\"\\"},
		{"k": "한국어 ✓", "empty": ""},
		{"tab": "a\tb", "nl": "a\nb"},
	}
	var cases [][]byte
	for _, md := range written {
		b, err := json.Marshal(md)
		if err != nil {
			t.Fatal(err)
		}
		cases = append(cases, b)
	}
	cases = append(cases, []byte(`{"a":"b",}`), []byte(`{"a":1}`), []byte(`{"a" : "b"}`), []byte(`{"a":"b"`),
		[]byte(`{"a":"b","a":"c"}`), []byte(`{"a":"b""c":"d"}`), []byte(`null`), []byte(`{"a":"x\u0041"}`))
	for _, b := range cases {
		want := message.Metadata{}
		wantErr := json.Unmarshal(b, &want)
		got := message.Metadata{}
		err := decodeMetadata(b, got)
		if (err != nil) != (wantErr != nil) {
			t.Errorf("%s: error %v, encoding/json says %v", b, err, wantErr)
			continue
		}
		if err == nil && !maps.Equal(got, want) {
			t.Errorf("%s: decoded %v, encoding/json %v", b, got, want)
		}
	}
}
