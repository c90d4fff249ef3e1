package httpserver

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/mailroom/mailroom/platform/apperr"
)

// jsonSpace is the whitespace JSON allows between tokens.
const jsonSpace = " \t\r\n"

// maxJSONDepth bounds nesting; no request of ours nests deeper than three levels.
const maxJSONDepth = 16

// DecodeJSON reads the request body into v strictly: the content type must be JSON,
// the body not content-coded, valid UTF-8 holding exactly one object (or one array
// when v points to a slice), with no unknown or duplicate keys
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
	// A coded body (gzip, deflate, br) is not decoded here: refused as such, rather
	// than read as JSON and called invalid UTF-8.
	for _, ce := range c.Request().Header.Values(echo.HeaderContentEncoding) {
		for coding := range strings.SplitSeq(ce, ",") {
			if coding = strings.TrimSpace(coding); coding != "" && !strings.EqualFold(coding, "identity") {
				return &apperr.Error{Code: apperr.CodeUnsupportedMedia, Field: echo.HeaderContentEncoding,
					Message: fmt.Sprintf("%s: %q is not supported; send the body unencoded", echo.HeaderContentEncoding, apperr.Clip(coding))}
			}
		}
	}
	body, err := readBody(c.Request())
	if err != nil {
		var he *echo.HTTPError
		var mbe *http.MaxBytesError
		if errors.As(err, &he) && he.Code == http.StatusRequestEntityTooLarge || errors.As(err, &mbe) {
			return apperr.New(apperr.CodeTooLarge, "request body too large")
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return apperr.New(apperr.CodeInvalidJSON, "the request body arrived too slowly; the connection is closed")
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
	// JSON's whitespace only: bytes.TrimSpace would also take a no-break space for
	// nothing, and call a body of one empty.
	trimmed := bytes.TrimLeft(body, jsonSpace)
	if len(trimmed) == 0 {
		return apperr.New(apperr.CodeInvalidJSON, "request body is empty")
	}
	if !utf8.Valid(body) {
		return apperr.New(apperr.CodeInvalidJSON, "request body is not valid UTF-8")
	}
	if array := decodesArray(v); trimmed[0] != '{' && !(array && trimmed[0] == '[') {
		// Not JSON at all (a stray character) is named as the character; JSON of
		// another kind is not an object. Without this check, a body of null would
		// decode into v without error and leave it zero.
		if err := json.Unmarshal(body, new(json.RawMessage)); err != nil {
			return jsonError(body, err)
		}
		if array {
			return apperr.New(apperr.CodeInvalidJSON, "the body must be a JSON array")
		}
		return apperr.New(apperr.CodeInvalidJSON, "the body must be a JSON object")
	} else if array {
		return unmarshalGeneral(body, v) // its elements are named "[3].to[0]"
	}
	if fastUnmarshal(body, v) {
		return nil
	}
	return unmarshalGeneral(body, v)
}

// decodesArray reports whether v points to a slice: then the body is a JSON array
// (POST /api/emails/batch), checked as strictly as an object, element by element.
func decodesArray(v any) bool {
	t := reflect.TypeOf(v)
	return t != nil && t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.Slice
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
		return jsonError(body, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return apperr.New(apperr.CodeInvalidJSON, "unexpected data after the JSON object")
	}
	return nil
}

// jsonError turns an error of encoding/json about body into an apperr naming the
// problem.
func jsonError(body []byte, err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		// A Decoder's token stream reports an offset that can lag behind the byte at
		// fault; the scanner that checks a whole body reports that byte.
		var whole *json.SyntaxError
		if errors.As(json.Unmarshal(body, new(json.RawMessage)), &whole) {
			syn = whole
		}
		return apperr.New(apperr.CodeInvalidJSON, "malformed JSON at byte %d: %s", syn.Offset, syntaxMessage(body, syn))
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			return apperr.New(apperr.CodeInvalidJSON, "the body must be a JSON object")
		}
		value, ok := valueKinds[typ.Value]
		if !ok {
			value = typ.Value // "number 1e999", a number too large for its field
		}
		return apperr.Invalid(field, "must be %s, not %s", jsonKind(typ.Type.Kind()), value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return apperr.New(apperr.CodeInvalidJSON, "malformed JSON: unexpected end of input")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return apperr.Invalid(field, "unknown field")
	}
	return apperr.New(apperr.CodeInvalidJSON, "malformed JSON: %s", err.Error())
}

// valueKinds names encoding/json's kinds of value as checkKind's messages do.
var valueKinds = map[string]string{"string": "a string", "number": "a number", "bool": "a boolean",
	"array": "an array", "object": "an object"}

// syntaxMessage is syn's message with the character it names right. encoding/json
// names the byte where it stopped as if it were a character: a no-break space
// (bytes C2 A0) comes out as 'Â'. The character that starts at that byte is named
// instead, quoted and with its code point: '\u00a0' (U+00A0).
func syntaxMessage(body []byte, syn *json.SyntaxError) string {
	msg := syn.Error()
	at := int(syn.Offset) - 1 // the offending byte; encoding/json counts it as read
	if at < 0 || at >= len(body) || body[at] < utf8.RuneSelf {
		return msg
	}
	r, _ := utf8.DecodeRune(body[at:])
	if r == utf8.RuneError {
		return msg
	}
	asByte := "invalid character " + quoteChar(string(rune(body[at])))
	if !strings.HasPrefix(msg, asByte) {
		return msg
	}
	return fmt.Sprintf("invalid character %s (%U)", quoteChar(string(r)), r) + strings.TrimPrefix(msg, asByte)
}

// quoteChar quotes a character as encoding/json does in its messages: 'x'.
func quoteChar(c string) string {
	switch c {
	case "'":
		return `'\''`
	case `"`:
		return `'"'`
	}
	q := strconv.Quote(c)
	return "'" + q[1:len(q)-1] + "'"
}

// jsonKind names the JSON value a Go value of kind k decodes from, for a message.
func jsonKind(k reflect.Kind) string {
	switch {
	case k == reflect.Slice || k == reflect.Array:
		return "an array"
	case k == reflect.Map || k == reflect.Struct:
		return "an object"
	case k == reflect.String:
		return "a string"
	case k == reflect.Bool:
		return "a boolean"
	case scalarKind(k):
		return "a number"
	}
	return k.String()
}

// checkStructure walks the tokens once to refuse duplicate keys (which decoders
// resolve differently, a way to smuggle a value past a check), keys that match a
// struct field only case-insensitively (the same smuggling: encoding/json folds
// case, so "to" and "To" would both fill To), and deep nesting. t is the type
// decoded into; where it is not known (an interface, a custom unmarshaler) only
// duplicates and depth are checked. Where it is known, a value of the wrong kind is
// refused here, naming the element ("to[0]", "metadata.a"), where encoding/json
// names only the struct field; so is a null element or map value where a string,
// number or boolean belongs, which encoding/json would quietly store as "", 0 or
// false.
func checkStructure(body []byte, t reflect.Type) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber() // a number too big for a float64 is the decoder's to refuse, with its field
	var stack []*frame
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return jsonError(body, err)
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
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			stack = stack[:len(stack)-1]
			if len(stack) > 0 && stack[len(stack)-1].object {
				stack[len(stack)-1].wantKey = true
			}
			continue
		}
		// tok starts a value: the body, an object member or an array element.
		path, typ := "", t
		if top != nil {
			var element bool
			path, typ, element = top.child()
			if err := checkKind(path, typ, tok, element); err != nil {
				return err
			}
		}
		if d, ok := tok.(json.Delim); ok {
			if len(stack) >= maxJSONDepth {
				return apperr.New(apperr.CodeInvalidJSON, "JSON nested deeper than %d levels", maxJSONDepth)
			}
			stack = append(stack, &frame{object: d == '{', typ: knownType(typ), keys: map[string]bool{}, wantKey: d == '{', path: path})
			continue
		}
		if top != nil && top.object {
			top.wantKey = true
		}
	}
}

// frame is one object or array that checkStructure is inside.
type frame struct {
	object  bool
	typ     reflect.Type // of the value this frame decodes into; nil if unknown
	keys    map[string]bool
	path    string
	lastKey string
	wantKey bool // in an object, the next string token is a key
	index   int  // in an array, the index of the next element
}

// child returns the path and the declared type (nil if unknown) of the value that
// starts now in f, and whether it is an element of an array or a map rather than a
// struct field. In an array it counts the element.
func (f *frame) child() (path string, typ reflect.Type, element bool) {
	if !f.object {
		path = f.path + "[" + strconv.Itoa(f.index) + "]"
		f.index++
		if f.typ != nil && (f.typ.Kind() == reflect.Slice || f.typ.Kind() == reflect.Array) {
			typ = f.typ.Elem()
		}
		return path, typ, true
	}
	path = joinPath(f.path, f.lastKey)
	if f.typ == nil {
		return path, nil, false
	}
	switch f.typ.Kind() {
	case reflect.Struct:
		typ, _ = structField(f.typ, f.lastKey)
		return path, typ, false
	case reflect.Map:
		return path, f.typ.Elem(), true
	}
	return path, nil, false
}

var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()

// checkKind refuses tok, the start of the value at path, when a value of its kind
// cannot decode into typ, or when it is a null element or map value where a string,
// number or boolean belongs (null there would decode as the zero value: a
// "metadata":{"a":null} stored as ""). A null struct field stays what encoding/json
// makes it, the field left as it was: absent. Types decoded by their own methods
// are left to them.
func checkKind(path string, typ reflect.Type, tok json.Token, element bool) error {
	kt := knownType(typ)
	if kt == nil || reflect.PointerTo(kt).Implements(textUnmarshaler) {
		return nil
	}
	var ok bool
	switch v := tok.(type) {
	case nil:
		ok = !element || !scalarKind(typ.Kind()) // typ, not kt: a pointer may be null
	case string:
		ok = kt.Kind() == reflect.String || kt.Kind() == reflect.Slice && kt.Elem().Kind() == reflect.Uint8
	case json.Number:
		ok = scalarKind(kt.Kind()) && kt.Kind() != reflect.String && kt.Kind() != reflect.Bool
	case bool:
		ok = kt.Kind() == reflect.Bool
	case json.Delim:
		ok = v == '[' && (kt.Kind() == reflect.Slice || kt.Kind() == reflect.Array) ||
			v == '{' && (kt.Kind() == reflect.Struct || kt.Kind() == reflect.Map)
	}
	if ok {
		return nil
	}
	return apperr.Invalid(path, "must be %s, not %s", jsonKind(kt.Kind()), tokenKind(tok))
}

// scalarKind reports whether k is a string, a boolean or a number.
func scalarKind(k reflect.Kind) bool {
	switch k {
	case reflect.String, reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64:
		return true
	}
	return false
}

// tokenKind names the kind of JSON value tok starts, for a message.
func tokenKind(tok json.Token) string {
	switch v := tok.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case json.Delim:
		if v == '[' {
			return "an array"
		}
	}
	return "an object"
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

// structField returns the type of the field of struct t whose JSON name is exactly
// key, and whether there is one; the type is nil where the ",string" option changes
// how the field decodes.
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
		name, opts, _ := strings.Cut(tag, ",")
		if name == "" {
			name = f.Name
		}
		if name == key {
			if slices.Contains(strings.Split(opts, ","), "string") {
				return nil, true // a number or boolean written as a string: encoding/json's to decode
			}
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
