package httpserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strings"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/mailroom/mailroom/platform/apperr"
)

// maxJSONDepth bounds nesting; no request of ours nests deeper than three levels.
const maxJSONDepth = 16

// DecodeJSON reads the request body into v strictly: the content type must be JSON,
// the body valid UTF-8 holding exactly one object, with no unknown or duplicate keys
// and no deep nesting. A key must name a struct field exactly: encoding/json would
// also take "To" or "ſubject" for "subject", a second key for one field that the
// duplicate check would not see. Every failure is a 4xx apperr naming the problem.
func DecodeJSON(c echo.Context, v any) error {
	ct := c.Request().Header.Get(echo.HeaderContentType)
	if !isPlainJSON(ct) {
		mt, params, err := mime.ParseMediaType(ct)
		if err != nil || mt != echo.MIMEApplicationJSON {
			return apperr.New(apperr.CodeUnsupportedMedia, "Content-Type must be application/json, got %q", ct)
		}
		if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
			return apperr.New(apperr.CodeUnsupportedMedia, "charset must be utf-8, got %q", cs)
		}
	}
	body, err := readBody(c.Request())
	if err != nil {
		var he *echo.HTTPError
		var mbe *http.MaxBytesError
		if errors.As(err, &he) && he.Code == http.StatusRequestEntityTooLarge || errors.As(err, &mbe) {
			return apperr.New(apperr.CodeTooLarge, "request body too large")
		}
		return apperr.New(apperr.CodeInvalidJSON, "cannot read the request body")
	}
	return Unmarshal(body, v)
}

// isPlainJSON reports whether ct is one of the two usual spellings of a JSON
// content type, which mime.ParseMediaType (a map per call) would accept as they are.
func isPlainJSON(ct string) bool {
	return ct == echo.MIMEApplicationJSON || ct == echo.MIMEApplicationJSONCharsetUTF8
}

// presizeLimit is the largest declared body length readBody allocates up front; a
// longer body (where the server's body limit allows one) grows as io.ReadAll grows.
const presizeLimit = 1 << 20

// readBody reads the whole body of r, into a buffer of its declared length when it
// has a small one: io.ReadAll grows from 512 bytes and, for a 1 KB body, allocates
// twice what it keeps. The body is read through the same (limited) reader, so the
// body limit and its errors are as before.
func readBody(r *http.Request) ([]byte, error) {
	if r.ContentLength <= 0 || r.ContentLength > presizeLimit {
		return io.ReadAll(r.Body)
	}
	// One byte more than declared, so that reaching EOF takes no second buffer.
	buf := make([]byte, 0, r.ContentLength+1)
	for {
		n, err := r.Body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
		if len(buf) == cap(buf) {
			// The body is longer than declared (the server stops that), or a reader
			// that fills exactly: let ReadAll finish.
			rest, err := io.ReadAll(r.Body)
			return append(buf, rest...), err
		}
	}
}

// Unmarshal is DecodeJSON without the HTTP: it decodes body into v strictly. A body
// of the usual shape is decoded in one pass (fastUnmarshal); anything else, and every
// body that is refused, takes the general path, which checks the structure and then
// decodes with encoding/json.
func Unmarshal(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return apperr.New(apperr.CodeInvalidJSON, "request body is empty")
	}
	if !utf8.Valid(body) {
		return apperr.New(apperr.CodeInvalidJSON, "request body is not valid UTF-8")
	}
	if bytes.TrimSpace(body)[0] != '{' {
		// Without this, a body of null decodes into v without error and leaves it zero.
		return apperr.New(apperr.CodeInvalidJSON, "the body must be a JSON object")
	}
	if fastUnmarshal(body, v) {
		return nil
	}
	return unmarshalGeneral(body, v)
}

// unmarshalGeneral is Unmarshal's general path, for any body and any v: a pass that
// checks keys and depth, then encoding/json. Every refusal after Unmarshal's first
// checks (empty, UTF-8, an object), and its message, comes from here: the fast path
// (fastjson.go) only ever accepts.
func unmarshalGeneral(body []byte, v any) error {
	if err := checkStructure(body, reflect.TypeOf(v)); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return apperr.New(apperr.CodeInvalidJSON, "unexpected data after the JSON object")
	}
	return nil
}

func jsonError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return apperr.New(apperr.CodeInvalidJSON, "malformed JSON at byte %d: %s", syn.Offset, syn.Error())
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			return apperr.New(apperr.CodeInvalidJSON, "the body must be a JSON object")
		}
		return apperr.Invalid(field, "must be %s, not %s", jsonKind(typ.Type.Kind().String()), typ.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return apperr.New(apperr.CodeInvalidJSON, "malformed JSON: unexpected end of input")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return apperr.Invalid(field, "unknown field")
	}
	return apperr.New(apperr.CodeInvalidJSON, "malformed JSON: %s", err.Error())
}

func jsonKind(k string) string {
	switch k {
	case "slice", "array":
		return "an array"
	case "map", "struct":
		return "an object"
	case "string":
		return "a string"
	case "int", "int64", "float64":
		return "a number"
	case "bool":
		return "a boolean"
	}
	return k
}

// checkStructure walks the tokens once to refuse duplicate keys (which decoders
// resolve differently, a way to smuggle a value past a check), keys that match a
// struct field only case-insensitively (the same smuggling: encoding/json folds
// case, so "to" and "To" would both fill To), and deep nesting. t is the type
// decoded into; where it is not known (an interface, a custom unmarshaler) only
// duplicates and depth are checked.
func checkStructure(body []byte, t reflect.Type) error {
	type frame struct {
		object  bool
		typ     reflect.Type // of the value this frame decodes into; nil if unknown
		keys    map[string]bool
		path    string
		lastKey string
		wantKey bool // in an object, the next string token is a key
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber() // a number too big for a float64 is the decoder's to refuse, with its field
	var stack []*frame
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return jsonError(err)
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if key, ok := tok.(string); ok && top != nil && top.wantKey {
			if top.keys[key] {
				return apperr.Invalid(joinPath(top.path, key), "duplicate key")
			}
			if top.typ != nil && top.typ.Kind() == reflect.Struct {
				if _, known := structField(top.typ, key); !known {
					return apperr.Invalid(joinPath(top.path, key), "unknown field")
				}
			}
			top.keys[key] = true
			top.lastKey, top.wantKey = key, false
			continue
		}
		if d, ok := tok.(json.Delim); ok && (d == '{' || d == '[') {
			if len(stack) >= maxJSONDepth {
				return apperr.New(apperr.CodeInvalidJSON, "JSON nested deeper than %d levels", maxJSONDepth)
			}
			path, typ := "", knownType(t)
			if top != nil {
				path, typ = joinPath(top.path, top.lastKey), childType(top.typ, top.lastKey)
			}
			stack = append(stack, &frame{object: d == '{', typ: typ, keys: map[string]bool{}, wantKey: d == '{', path: path})
			continue
		}
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			stack = stack[:len(stack)-1]
		}
		if len(stack) > 0 && stack[len(stack)-1].object {
			stack[len(stack)-1].wantKey = true
		}
	}
}

var jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()

// knownType returns t without pointers, or nil when encoding/json does not decode
// into it field by field: an interface, a type with its own UnmarshalJSON, or a
// struct with embedded fields (whose promoted keys structField does not follow).
func knownType(t reflect.Type) reflect.Type {
	for t != nil && t.Kind() == reflect.Pointer {
		if t.Implements(jsonUnmarshaler) {
			return nil
		}
		t = t.Elem()
	}
	if t == nil || t.Kind() == reflect.Interface || reflect.PointerTo(t).Implements(jsonUnmarshaler) {
		return nil
	}
	if t.Kind() == reflect.Struct {
		for i := range t.NumField() {
			if t.Field(i).Anonymous {
				return nil
			}
		}
	}
	return t
}

// childType is the type of the value under key (an object) or of every element (an
// array) of a value of type t, or nil if unknown.
func childType(t reflect.Type, key string) reflect.Type {
	if t == nil {
		return nil
	}
	switch t.Kind() {
	case reflect.Struct:
		f, _ := structField(t, key)
		return knownType(f)
	case reflect.Map, reflect.Slice, reflect.Array:
		return knownType(t.Elem())
	}
	return nil
}

// structField returns the type of the field of struct t whose JSON name is exactly
// key.
func structField(t reflect.Type, key string) (reflect.Type, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if name == "" {
			name = f.Name
		}
		if name == key {
			return f.Type, true
		}
	}
	return nil, false
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
