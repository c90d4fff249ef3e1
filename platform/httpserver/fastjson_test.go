package httpserver

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/labstack/echo/v4"
)

// fastShape is the shape of POST /api/emails: what the fast path is for.
type fastShape struct {
	From     string            `json:"from"`
	To       []string          `json:"to"`
	Cc       []string          `json:"cc"`
	ReplyTo  string            `json:"reply_to"`
	Subject  string            `json:"subject"`
	Text     string            `json:"text,omitempty"`
	Metadata map[string]string `json:"metadata"`
	Ignored  string            `json:"-"`
	Untagged string
	private  string
}

// fastSeeds are bodies at the edges of what the fast path takes.
var fastSeeds = []string{
	`{"to":["a@example.com"],"subject":"Hello","text":"hi"}`,
	`{"from":"Bench \u003cbench@example.com\u003e","to":["r1@example.com"],"subject":"Benchmark email 1","text":"lorem ipsum ","metadata":{"i":"1"}}`,
	` { "to" : [ "a" , "b" ] , "cc" : [ ] , "metadata" : { } } `,
	"{\"subject\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\u0000\\uFFFF\"}",
	`{"subject":"\ud83d\ude00"}`,
	`{"subject":"\ud83d"}`,
	`{"subject":"\ude00\ud83d"}`,
	`{"subject":"\u00"}`,
	`{"subject":"\x"}`,
	`{"subject":null}`,
	`{"to":null}`,
	`{"to":["a",null]}`,
	`{"metadata":{"k":null}}`,
	`{"metadata":{"k":"1","k":"2"}}`,
	`{"metadata":{"k":"1","K":"2"}}`,
	`{"metadata":{"\u006b":"1","k":"2"}}`,
	`{"subject":"a","subject":"b"}`,
	`{"Subject":"a"}`,
	`{"ſubject":"a"}`,
	`{"\u0073ubject":"a"}`,
	`{"Untagged":"x"}`,
	`{"untagged":"x"}`,
	`{"Ignored":"x"}`,
	`{"-":"x"}`,
	`{"private":"x"}`,
	`{"unknown":"x"}`,
	`{"subject":1}`,
	`{"subject":"x"} `,
	`{"subject":"x"} x`,
	`{"subject":"x"}{}`,
	`{"subject":"x",}`,
	`{"to":["a",]}`,
	`{"subject":"x"`,
	`{"subject":"tab	inside"}`,
	"{\"subject\":\"é 안녕\"}",
	"\u00a0{\"subject\":\"x\"}",
	"\ufeff{\"subject\":\"x\"}",
	`{}`,
	`{"to":[["a"]]}`,
	`{"metadata":{"a":{"b":"c"}}}`,
}

// FuzzFastDecodeMatchesStrictDecode holds the fast path to its promise: whatever it
// accepts, the general path accepts too, with the same value, whether decoding into
// a zero value or into one already holding values (encoding/json keeps the fields a
// body does not name).
func FuzzFastDecodeMatchesStrictDecode(f *testing.F) {
	for _, s := range fastSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if !utf8.Valid(body) {
			return // Unmarshal refuses it before either path
		}
		for _, start := range []fastShape{{}, {From: "kept", To: []string{"old"}, Subject: "old", Metadata: map[string]string{"old": "1"}}} {
			fast, general := start, start
			if start.Metadata != nil {
				fast.Metadata = map[string]string{"old": "1"}
				general.Metadata = map[string]string{"old": "1"}
			}
			if !fastUnmarshal(body, &fast) {
				if !reflect.DeepEqual(fast, general) {
					t.Fatalf("fast path gave up on %q but changed the value: %+v", body, fast)
				}
				continue
			}
			if err := unmarshalGeneral(body, &general); err != nil {
				t.Fatalf("fast path accepted %q, general path refuses it: %v", body, err)
			}
			if !reflect.DeepEqual(fast, general) {
				t.Fatalf("%q: fast path decoded %+v, general path %+v", body, fast, general)
			}
		}
	})
}

func TestFastPathTakesTheUsualBodies(t *testing.T) {
	for _, body := range []string{
		`{"to":["a@example.com"],"subject":"Hello","text":"hi"}`,
		`{"from":"Bench \u003cbench@example.com\u003e","to":["r1@example.com"],"subject":"Benchmark email 1","text":"lorem ipsum ","metadata":{"i":"1"}}`,
		"{\n  \"to\": [\"a@example.com\", \"b@example.com\"],\n  \"cc\": [],\n  \"subject\": \"안녕하세요\",\n  \"text\": \"line\\nline\"\n}\n",
	} {
		var v fastShape
		if !fastUnmarshal([]byte(body), &v) {
			t.Errorf("the fast path gave up on %s", body)
		}
	}
}

func TestFastPathLeavesOtherShapesToTheGeneralPath(t *testing.T) {
	type named string
	for _, v := range []any{
		&struct {
			S string `json:"s,string"`
		}{},
		&struct{ fastShape }{},
		map[string]string{},
		new(string),
	} {
		if p := planFor(reflect.TypeOf(v)); p != nil {
			t.Errorf("%T has a fast plan", v)
		}
	}
	if planFor(reflect.TypeOf(&fastShape{})) == nil {
		t.Error("fastShape has no fast plan")
	}
	// A field of another type leaves the fast path for the bodies that name it
	// only: POST /api/emails without attachments stays fast.
	for _, tc := range []struct {
		v    any
		body string
	}{
		{&struct {
			N int    `json:"n"`
			S string `json:"s"`
		}{}, `{"s":"x","n":1}`},
		{&struct {
			S named `json:"s"`
		}{}, `{"s":"x"}`},
		{&struct {
			M map[string]any `json:"m"`
			S string         `json:"s"`
		}{}, `{"m":{}}`},
	} {
		if fastUnmarshal([]byte(tc.body), tc.v) {
			t.Errorf("the fast path decoded %s into %T", tc.body, tc.v)
		}
	}
	withOther := &struct {
		N int    `json:"n"`
		S string `json:"s"`
	}{}
	if !fastUnmarshal([]byte(`{"s":"x"}`), withOther) || withOther.S != "x" {
		t.Error("the fast path gave up on a body that names no field of another type")
	}
}

// benchRequestBody is about the body of app's BenchmarkAccept: 1 KB, Go-encoded.
const benchRequestBody = `{"from":"Bench \u003cbench@example.com\u003e","metadata":{"i":"17"},"subject":"Benchmark email 17",` +
	`"tags":["accept-0"],"text":"lorem ipsum lorem ipsum lorem ipsum lorem ipsum lorem ipsum lorem ipsum lorem ipsum ` +
	`lorem ipsum lorem ipsum lorem ipsum lorem ipsum lorem ipsum lorem ipsum lorem ipsum lorem ipsum lorem ipsum lorem ipsum ` +
	`lorem ipsum lorem ipsum lorem ipsum lorem ipsum lorem ipsum lorem ipsum lorem ipsum lorem ipsum lorem ipsum lorem ipsum ` +
	`lorem ipsum lorem ipsum lorem ipsum lorem ipsum lorem ipsum lorem ipsum lorem ipsum lorem ipsum lorem ipsum lorem ipsum ` +
	`lorem ipsum lorem ipsum lorem ipsum lorem ipsum lorem ipsum lorem ipsum lorem ipsum lorem ipsum lorem ipsum lorem ipsum ` +
	`lorem ipsum lorem ipsum lorem ipsum lorem ipsum lorem ipsum lorem ipsum lorem ipsum lorem ipsum lorem ipsum lorem ipsum ` +
	`lorem ipsum lorem ipsum lorem ipsum lorem ipsum lorem ipsum lorem ipsum lorem ipsum lorem ipsum lorem ipsum lorem ipsum ` +
	`lorem ipsum lorem ipsum lorem ipsum lorem ipsum lorem ipsum ","to":["r17@example.com"]}`

// benchShape is the request shape of POST /api/emails.
type benchShape struct {
	From     string            `json:"from"`
	To       []string          `json:"to"`
	Cc       []string          `json:"cc"`
	Bcc      []string          `json:"bcc"`
	ReplyTo  string            `json:"reply_to"`
	Subject  string            `json:"subject"`
	Text     string            `json:"text"`
	HTML     string            `json:"html"`
	Tags     []string          `json:"tags"`
	Metadata map[string]string `json:"metadata"`
	SendAt   string            `json:"send_at"`
}

// BenchmarkUnmarshal compares Unmarshal (the fast path, for this body) with the
// general path alone (structure pass plus encoding/json).
func BenchmarkUnmarshal(b *testing.B) {
	body := []byte(benchRequestBody)
	b.Run("Unmarshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var v benchShape
			if err := Unmarshal(body, &v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("general", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var v benchShape
			if err := unmarshalGeneral(body, &v); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkDecodeJSON is DecodeJSON as a handler calls it: the content type check
// and reading the body come before Unmarshal.
func BenchmarkDecodeJSON(b *testing.B) {
	e := echo.New()
	body := []byte(benchRequestBody)
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		req.Header.Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
		c := e.NewContext(req, nil)
		var v benchShape
		if err := DecodeJSON(c, &v); err != nil {
			b.Fatal(err)
		}
	}
}

// TestReadBodyReadsWhatReadAllWouldRead: the presized read returns the same bytes as
// io.ReadAll whether the declared length is right, missing, too short or too long.
func TestReadBodyReadsWhatReadAllWouldRead(t *testing.T) {
	body := strings.Repeat("x", 3000)
	for _, declared := range []int64{3000, -1, 0, 10, 2999, 3001, 5000, presizeLimit + 1} {
		req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		req.ContentLength = declared
		got, err := readBody(req)
		if err != nil || string(got) != body {
			t.Errorf("declared %d: read %d bytes, %v; want %d bytes", declared, len(got), err, len(body))
		}
	}
}
