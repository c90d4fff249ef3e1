package httpserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/mailroom/mailroom/platform/apperr"
)

// maxJSONDepth bounds nesting; no request of ours nests deeper than three levels.
const maxJSONDepth = 16

// DecodeJSON reads the request body into v strictly: the content type must be JSON,
// the body valid UTF-8 holding exactly one object, with no unknown or duplicate keys
// and no deep nesting. Every failure is a 4xx apperr naming the problem.
func DecodeJSON(c echo.Context, v any) error {
	ct := c.Request().Header.Get(echo.HeaderContentType)
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != echo.MIMEApplicationJSON {
		return apperr.New(apperr.CodeUnsupportedMedia, "Content-Type must be application/json, got %q", ct)
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return apperr.New(apperr.CodeUnsupportedMedia, "charset must be utf-8, got %q", cs)
	}
	body, err := io.ReadAll(c.Request().Body)
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

// Unmarshal is DecodeJSON without the HTTP: it decodes body into v strictly.
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
	if err := checkStructure(body); err != nil {
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
// resolve differently, a way to smuggle a value past a check) and deep nesting.
func checkStructure(body []byte) error {
	type frame struct {
		object  bool
		keys    map[string]bool
		path    string
		lastKey string
		wantKey bool // in an object, the next string token is a key
	}
	dec := json.NewDecoder(bytes.NewReader(body))
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
			top.keys[key] = true
			top.lastKey, top.wantKey = key, false
			continue
		}
		if d, ok := tok.(json.Delim); ok && (d == '{' || d == '[') {
			if len(stack) >= maxJSONDepth {
				return apperr.New(apperr.CodeInvalidJSON, "JSON nested deeper than %d levels", maxJSONDepth)
			}
			path := ""
			if top != nil {
				path = joinPath(top.path, top.lastKey)
			}
			stack = append(stack, &frame{object: d == '{', keys: map[string]bool{}, wantKey: d == '{', path: path})
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

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
