package httpserver_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/mailroom/mailroom/platform/apperr"
	"github.com/mailroom/mailroom/platform/httpserver"
)

// request is the shape the decoding tests decode into.
type request struct {
	To       []string          `json:"to"`
	Subject  string            `json:"subject"`
	Count    int               `json:"count"`
	Flag     bool              `json:"flag"`
	Metadata map[string]string `json:"metadata"`
	Nested   struct {
		A     int `json:"a"`
		Inner struct {
			B string `json:"b"`
		} `json:"inner"`
	} `json:"nested"`
	Any any `json:"any"`
}

// decode runs DecodeJSON on a request with body and content type.
func decode(tb testing.TB, contentType, body string) (request, error) {
	tb.Helper()
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
	if contentType != "" {
		req.Header.Set(echo.HeaderContentType, contentType)
	}
	c := echo.New().NewContext(req, httptest.NewRecorder())
	var v request
	err := httpserver.DecodeJSON(c, &v)
	return v, err
}

// nested returns depth levels of arrays around a number, inside {"any": ...}, which
// adds one level: the whole body nests depth+1 deep.
func nested(depth int) string {
	return `{"any":` + strings.Repeat("[", depth) + "1" + strings.Repeat("]", depth) + "}"
}

func TestDecodeJSONAcceptsAWellFormedObject(t *testing.T) {
	body := `{"to":["a@example.com","a@example.com"],"subject":"안녕하세요","count":3,"flag":true,
		"metadata":{"user_id":"42","subject":"subject"},"nested":{"a":1,"inner":{"b":"x"}},
		"any":[{"x":1},{"x":2}]}`
	v, err := decode(t, "application/json", body)
	if err != nil {
		t.Fatalf("DecodeJSON: %v", err)
	}
	if v.Subject != "안녕하세요" || v.Count != 3 || !v.Flag || len(v.To) != 2 ||
		v.Metadata["user_id"] != "42" || v.Nested.A != 1 || v.Nested.Inner.B != "x" {
		t.Errorf("decoded %+v", v)
	}
}

func TestDecodeJSONAcceptsJSONContentTypesInUTF8(t *testing.T) {
	for _, ct := range []string{
		"application/json",
		"application/json; charset=utf-8",
		"application/json; charset=UTF-8",
		"Application/JSON",
	} {
		t.Run(fmt.Sprintf("the content type %q is accepted", ct), func(t *testing.T) {
			if _, err := decode(t, ct, `{"subject":"x"}`); err != nil {
				t.Errorf("DecodeJSON with %q: %v", ct, err)
			}
		})
	}
}

func TestDecodeJSONAcceptsNestingUpToSixteenLevels(t *testing.T) {
	if _, err := decode(t, "application/json", nested(15)); err != nil {
		t.Errorf("16 levels refused: %v", err)
	}
}

func TestDecodeJSONRefusesBadBodiesNamingTheProblem(t *testing.T) {
	cases := []struct {
		name        string
		contentType string
		body        string
		code        apperr.Code
		field       string // the field the error must name, if any
		message     string // a fragment the message must hold
	}{
		{name: "a duplicate key at the top level", body: `{"subject":"a","subject":"b"}`,
			code: apperr.CodeInvalidField, field: "subject", message: "duplicate"},
		{name: "a duplicate key in a nested object", body: `{"nested":{"a":1,"a":2}}`,
			code: apperr.CodeInvalidField, field: "nested.a", message: "duplicate"},
		{name: "a duplicate key two levels down", body: `{"nested":{"inner":{"b":"x","b":"y"}}}`,
			code: apperr.CodeInvalidField, field: "nested.inner.b", message: "duplicate"},
		{name: "a duplicate key in a map", body: `{"metadata":{"k":"1","k":"2"}}`,
			code: apperr.CodeInvalidField, field: "metadata.k", message: "duplicate"},
		{name: "a duplicate key after a nested object", body: `{"nested":{"a":1},"subject":"x","nested":{}}`,
			code: apperr.CodeInvalidField, field: "nested", message: "duplicate"},
		{name: "an unknown field", body: `{"subject":"x","bcc_all":true}`,
			code: apperr.CodeInvalidField, field: "bcc_all", message: "unknown field"},
		{name: "an unknown field in a nested object", body: `{"nested":{"zzz":1}}`,
			code: apperr.CodeInvalidField, message: "zzz"},
		{name: "a string where a number belongs", body: `{"count":"three"}`,
			code: apperr.CodeInvalidField, field: "count", message: "number"},
		{name: "a number where a list belongs", body: `{"to":5}`,
			code: apperr.CodeInvalidField, field: "to", message: "array"},
		{name: "a number in a list of strings", body: `{"to":["a@example.com",5]}`,
			code: apperr.CodeInvalidField, field: "to[1]", message: "to[1]: must be a string, not a number"},
		{name: "an object in a list of strings", body: `{"to":[{}]}`,
			code: apperr.CodeInvalidField, field: "to[0]", message: "must be a string, not an object"},
		{name: "a null in a list of strings", body: `{"to":[null]}`,
			code: apperr.CodeInvalidField, field: "to[0]", message: "must be a string, not null"},
		{name: "a number as a map value", body: `{"metadata":{"a":1}}`,
			code: apperr.CodeInvalidField, field: "metadata.a", message: "metadata.a: must be a string, not a number"},
		{name: "a null map value", body: `{"metadata":{"a":"1","b":null}}`,
			code: apperr.CodeInvalidField, field: "metadata.b", message: "metadata.b: must be a string, not null"},
		{name: "a boolean where a string belongs", body: `{"subject":true}`,
			code: apperr.CodeInvalidField, field: "subject", message: "must be a string, not a boolean"},
		{name: "a trailing no-break space", body: "{\"subject\":\"x\"}\u00a0",
			code: apperr.CodeInvalidJSON, message: `invalid character '\u00a0' (U+00A0)`},
		{name: "a no-break space inside the object", body: "{\"subject\":\"x\"\u00a0}",
			code: apperr.CodeInvalidJSON, message: `invalid character '\u00a0' (U+00A0)`},
		{name: "an unquoted non-ASCII value", body: "{\"subject\":é}",
			code: apperr.CodeInvalidJSON, message: `invalid character 'é' (U+00E9)`},
		{name: "a leading no-break space", body: "\u00a0{\"subject\":\"x\"}",
			code: apperr.CodeInvalidJSON, message: `invalid character '\u00a0' (U+00A0)`},
		{name: "a body of no-break spaces", body: "\u00a0\u00a0", code: apperr.CodeInvalidJSON, message: "(U+00A0)"},
		{name: "an unquoted emoji", body: "{\"subject\":\"x\",😀}",
			code: apperr.CodeInvalidJSON, message: `invalid character '😀' (U+1F600)`},
		{name: "a wrong type in a nested object", body: `{"nested":{"a":"x"}}`,
			code: apperr.CodeInvalidField, field: "nested.a", message: "number"},
		{name: "an object where a boolean belongs", body: `{"flag":{}}`,
			code: apperr.CodeInvalidField, field: "flag", message: "boolean"},
		{name: "an array as the body", body: `[{"subject":"x"}]`, code: apperr.CodeInvalidJSON, message: "object"},
		{name: "a string as the body", body: `"subject"`, code: apperr.CodeInvalidJSON, message: "object"},
		{name: "null as the body", body: `null`, code: apperr.CodeInvalidJSON, message: "object"},
		{name: "a number as the body", body: ` 42 `, code: apperr.CodeInvalidJSON, message: "object"},
		{name: "trailing garbage", body: `{"subject":"x"} trailing`, code: apperr.CodeInvalidJSON},
		{name: "a second object after the first", body: `{"subject":"x"}{"subject":"y"}`,
			code: apperr.CodeInvalidJSON, message: "after the JSON object"},
		{name: "a truncated object", body: `{"subject":"x"`, code: apperr.CodeInvalidJSON},
		{name: "a missing value", body: `{"subject":}`, code: apperr.CodeInvalidJSON},
		{name: "invalid UTF-8 in a string", body: "{\"subject\":\"caf\xe9\"}", code: apperr.CodeInvalidJSON, message: "UTF-8"},
		{name: "invalid UTF-8 in a key", body: "{\"\xff\":1}", code: apperr.CodeInvalidJSON, message: "UTF-8"},
		{name: "nesting of seventeen levels", body: nested(16), code: apperr.CodeInvalidJSON, message: "16"},
		{name: "nesting of thousands of levels", body: nested(5000), code: apperr.CodeInvalidJSON, message: "16"},
		{name: "an empty body", body: ``, code: apperr.CodeInvalidJSON, message: "empty"},
		{name: "a body of whitespace", body: " \n\t ", code: apperr.CodeInvalidJSON, message: "empty"},
		{name: "a plain-text content type", contentType: "text/plain", body: `{"subject":"x"}`,
			code: apperr.CodeUnsupportedMedia},
		{name: "a form content type", contentType: "application/x-www-form-urlencoded", body: `subject=x`,
			code: apperr.CodeUnsupportedMedia},
		{name: "no content type at all", contentType: "-", body: `{"subject":"x"}`, code: apperr.CodeUnsupportedMedia},
		{name: "a malformed content type", contentType: "application/json; charset", body: `{"subject":"x"}`,
			code: apperr.CodeUnsupportedMedia},
		{name: "a charset other than UTF-8", contentType: "application/json; charset=iso-8859-1", body: `{"subject":"x"}`,
			code: apperr.CodeUnsupportedMedia, message: "charset"},
		{name: "a UTF-16 charset", contentType: "application/json; charset=utf-16", body: `{"subject":"x"}`,
			code: apperr.CodeUnsupportedMedia, message: "charset"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ct := c.contentType
			switch ct {
			case "":
				ct = "application/json"
			case "-":
				ct = ""
			}
			_, err := decode(t, ct, c.body)
			if err == nil {
				t.Fatal("DecodeJSON accepted the body")
			}
			e, ok := apperr.As(err)
			if !ok {
				t.Fatalf("error %v (%T) is not an apperr", err, err)
			}
			if e.Code != c.code {
				t.Errorf("code = %s, want %s (%v)", e.Code, c.code, e)
			}
			if c.field != "" && e.Field != c.field {
				t.Errorf("field = %q, want %q (%v)", e.Field, c.field, e)
			}
			if !strings.Contains(e.Message, c.message) {
				t.Errorf("message %q does not mention %q", e.Message, c.message)
			}
			if strings.Contains(e.Message, "\n") {
				t.Errorf("message %q spans lines", e.Message)
			}
		})
	}
}

func TestDecodeJSONTakesANullFieldAsAbsent(t *testing.T) {
	v, err := decode(t, "application/json", `{"subject":null,"to":null,"metadata":null,"count":null}`)
	if err != nil || v.Subject != "" || v.To != nil || v.Metadata != nil || v.Count != 0 {
		t.Errorf("DecodeJSON = %+v, %v; want every field absent", v, err)
	}
}

func TestDecodeJSONRefusesACodedBodyNamingTheCoding(t *testing.T) {
	for _, ce := range []string{"gzip", "deflate", "br", "identity, gzip", "GZIP"} {
		req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader("\x1f\x8b\x08\x00"))
		req.Header.Set(echo.HeaderContentType, "application/json")
		req.Header.Set(echo.HeaderContentEncoding, ce)
		var v request
		err := httpserver.DecodeJSON(echo.New().NewContext(req, httptest.NewRecorder()), &v)
		e, ok := apperr.As(err)
		if !ok || e.Code != apperr.CodeUnsupportedMedia || e.Field != "Content-Encoding" || !strings.Contains(e.Message, "Content-Encoding") {
			t.Errorf("Content-Encoding %q: %v, want unsupported_media_type naming Content-Encoding", ce, err)
		}
	}
	for _, ce := range []string{"identity", "Identity", ""} {
		req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(`{"subject":"x"}`))
		req.Header.Set(echo.HeaderContentType, "application/json")
		req.Header.Set(echo.HeaderContentEncoding, ce)
		var v request
		if err := httpserver.DecodeJSON(echo.New().NewContext(req, httptest.NewRecorder()), &v); err != nil || v.Subject != "x" {
			t.Errorf("Content-Encoding %q: %v, %+v; want the body decoded", ce, err, v)
		}
	}
}

func TestUnmarshalAppliesTheSameRulesWithoutHTTP(t *testing.T) {
	var v request
	if err := httpserver.Unmarshal([]byte(`{"subject":"ok"}`), &v); err != nil || v.Subject != "ok" {
		t.Fatalf("Unmarshal of a good body: %v, %+v", err, v)
	}
	err := httpserver.Unmarshal([]byte(`{"subject":"a","subject":"b"}`), &v)
	if e, ok := apperr.As(err); !ok || e.Field != "subject" {
		t.Errorf("Unmarshal of a duplicate key: %v", err)
	}
}
