package config

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/knadh/koanf/v2"
)

// scalar is one value as a source wrote it, before it takes its key's type: the
// YAML tag (!!str, !!int, !!float, !!bool, !!null, ...) says what the source meant
// and Text is the text itself. Every input is brought to this form first, so that a
// file, the environment and a flag are held to the same rules.
type scalar struct {
	Tag  string
	Text string
}

// YAML tags of the scalars the decoder tells apart.
const (
	tagStr   = "!!str"
	tagInt   = "!!int"
	tagFloat = "!!float"
	tagBool  = "!!bool"
	tagNull  = "!!null"
)

// valueError is why one value does not fit its key. It never holds a secret: string
// keys (smtp.password, auth.api_keys) are refused without echoing the value.
type valueError struct{ reason string }

func (e *valueError) Error() string { return e.reason }

func badValue(format string, args ...any) error {
	return &valueError{reason: fmt.Sprintf(format, args...)}
}

var durationType = reflect.TypeFor[time.Duration]()

// unmarshalStrict decodes k into cfg with mapstructure's loose conversions off:
// WeaklyTypedInput would turn 3.7 into 3, true into 1 or "1", and 0x10 into 16, and
// koanf's default hooks would read a bare number as nanoseconds. strictHook does every
// conversion instead.
func unmarshalStrict(k *koanf.Koanf, cfg *Config) error {
	return k.UnmarshalWithConf("", cfg, koanf.UnmarshalConf{
		Tag: "koanf",
		DecoderConfig: &mapstructure.DecoderConfig{
			DecodeHook:       strictHook,
			WeaklyTypedInput: false,
			TagName:          "koanf",
		},
	})
}

// decodeErrorKey finds the config key a mapstructure error is about and the reason
// without mapstructure's framing, so that Load can report one line naming the key.
func decodeErrorKey(err error) (key, reason string) {
	var de *mapstructure.DecodeError
	if !errors.As(err, &de) {
		return "", oneLine(err.Error())
	}
	var ve *valueError
	if errors.As(de, &ve) {
		return de.Name(), ve.reason
	}
	return de.Name(), oneLine(de.Unwrap().Error())
}

// strictHook converts a value from a source to the type of its field, strictly:
// whole numbers must be whole and in base 10, bools must be true or false, a bool
// never becomes a number or a string, floats must be finite, and a duration needs a
// unit. Values already of the field's type (the built-in defaults) pass through.
func strictHook(from, to reflect.Type, data any) (any, error) {
	if to.Kind() == reflect.Struct && to != durationType {
		return data, nil // a section: mapstructure walks into it
	}
	if to.Kind() == reflect.Slice {
		return toList(data)
	}
	s, ok := asScalar(data)
	if !ok {
		return nil, badValue("want a single value, got %s", describe(data))
	}
	switch {
	case to == durationType:
		if d, ok := data.(time.Duration); ok {
			return d, nil
		}
		return toDuration(s)
	case to.Kind() == reflect.String:
		return toString(s)
	case to.Kind() == reflect.Bool:
		return toBool(s)
	case to.Kind() >= reflect.Int && to.Kind() <= reflect.Int64:
		return toInt(s, to.Bits())
	case to.Kind() >= reflect.Uint && to.Kind() <= reflect.Uint64:
		return toUint(s, to.Bits())
	case to.Kind() == reflect.Float32 || to.Kind() == reflect.Float64:
		return toFloat(s)
	}
	return data, nil
}

// asScalar brings a plain Go value (a default, an environment string, a value parsed
// by a YAML library) to a scalar. Lists and mappings are not scalars.
func asScalar(data any) (scalar, bool) {
	switch v := data.(type) {
	case scalar:
		return v, true
	case nil:
		return scalar{Tag: tagNull}, true
	case string:
		return scalar{Tag: tagStr, Text: v}, true
	case bool:
		return scalar{Tag: tagBool, Text: strconv.FormatBool(v)}, true
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return scalar{Tag: tagInt, Text: fmt.Sprint(v)}, true
	case float32:
		return scalar{Tag: tagFloat, Text: strconv.FormatFloat(float64(v), 'g', -1, 32)}, true
	case float64:
		return scalar{Tag: tagFloat, Text: strconv.FormatFloat(v, 'g', -1, 64)}, true
	case time.Duration:
		return scalar{Tag: tagStr, Text: v.String()}, true
	case fmt.Stringer: // such as a YAML timestamp
		return scalar{Tag: tagStr, Text: v.String()}, true
	}
	return scalar{}, false
}

// describe names the kind of a value that is not a scalar, for an error.
func describe(data any) string {
	switch reflect.ValueOf(data).Kind() {
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "a mapping"
	}
	return fmt.Sprintf("a %T", data)
}

// show renders a value's text for an error: bare when it is a plain word or number,
// quoted when it holds spaces, quotes or control characters, so that every error
// stays on one line.
func show(text string) string {
	if text == "" || strings.ContainsAny(text, " \"'\\") || strconv.Quote(text) != `"`+text+`"` {
		return strconv.Quote(text)
	}
	return text
}

func toString(s scalar) (any, error) {
	switch s.Tag {
	case tagNull:
		return "", nil
	case tagBool:
		// Not echoed: the key may be a secret. Quoting makes it text.
		return nil, badValue("want text, got a bool (quote it to mean the word)")
	}
	// Numbers keep the text they were written with (an unquoted numeric password).
	return s.Text, nil
}

func toBool(s scalar) (any, error) {
	switch s.Tag {
	case tagNull:
		return nil, badValue("has no value; want true or false")
	case tagBool:
		return strconv.ParseBool(strings.ToLower(s.Text))
	case tagStr:
		switch s.Text {
		case "true":
			return true, nil
		case "false":
			return false, nil
		case "":
			return nil, badValue("empty value; want true or false")
		}
	}
	return nil, badValue("%s is not true or false", show(s.Text))
}

// wholeText is the text of a whole number, or why s is not one.
func wholeText(s scalar) (string, error) {
	switch {
	case s.Tag == tagNull:
		return "", badValue("has no value; want a whole number")
	case s.Tag == tagBool:
		return "", badValue("%s is a bool, not a whole number", s.Text)
	case s.Text == "":
		return "", badValue("empty value; want a whole number")
	}
	return s.Text, nil
}

func toInt(s scalar, bits int) (any, error) {
	text, err := wholeText(s)
	if err != nil {
		return nil, err
	}
	n, err := strconv.ParseInt(text, 10, bits)
	if errors.Is(err, strconv.ErrRange) {
		return nil, badValue("%s is out of range", show(text))
	}
	if err != nil {
		return nil, badValue("%s is not a whole number in base 10", show(text))
	}
	return n, nil
}

func toUint(s scalar, bits int) (any, error) {
	text, err := wholeText(s)
	if err != nil {
		return nil, err
	}
	n, err := strconv.ParseUint(text, 10, bits)
	if errors.Is(err, strconv.ErrRange) {
		return nil, badValue("%s is out of range", show(text))
	}
	if err != nil {
		return nil, badValue("%s is not a whole number in base 10, at least 0", show(text))
	}
	return n, nil
}

func toFloat(s scalar) (any, error) {
	switch {
	case s.Tag == tagNull:
		return nil, badValue("has no value; want a number")
	case s.Tag == tagBool:
		return nil, badValue("%s is a bool, not a number", s.Text)
	case s.Text == "":
		return nil, badValue("empty value; want a number")
	}
	if s.Tag == tagFloat {
		switch strings.ToLower(strings.TrimLeft(s.Text, "+-")) {
		case ".nan", ".inf": // YAML's spellings of NaN and infinity
			return nil, badValue("%s is not a finite number", show(s.Text))
		}
	}
	f, err := strconv.ParseFloat(s.Text, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return nil, badValue("%s is not a number", show(s.Text))
	}
	// NaN, Inf and numbers too large for a float64 parse; none is a setting: a NaN
	// multiplier fires every retry at once and an infinite rate limit is no limit.
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, badValue("%s is not a finite number", show(s.Text))
	}
	return f, nil
}

func toDuration(s scalar) (any, error) {
	switch s.Tag {
	case tagNull:
		return nil, badValue("has no value; want a duration such as 1s")
	case tagBool:
		return nil, badValue("%s is a bool, not a duration such as 1s", s.Text)
	}
	if s.Text == "" {
		return nil, badValue("empty value; want a duration such as 1s")
	}
	// A bare number (5, 1.5, even 0) would be nanoseconds to the YAML decoder and
	// "missing unit" to time.ParseDuration: the same mistake, told the same way.
	if _, err := strconv.ParseFloat(s.Text, 64); err == nil || s.Tag == tagInt || s.Tag == tagFloat {
		return nil, badValue("%s has no unit; write a duration such as %ss", show(s.Text), s.Text)
	}
	d, err := time.ParseDuration(s.Text)
	if err != nil {
		return nil, badValue("%s is not a duration such as 1s or 250ms", show(s.Text))
	}
	return d, nil
}

// toList turns a list from a file, or a comma-separated string, into the items of a
// list key; each item is then decoded as a string by strictHook.
func toList(data any) (any, error) {
	switch v := data.(type) {
	case []string, []Secret:
		return v, nil
	case []any:
		for _, item := range v {
			if _, ok := asScalar(item); !ok {
				return nil, badValue("want a list of values, got an item that is %s", describe(item))
			}
		}
		return v, nil
	}
	s, ok := asScalar(data)
	if !ok {
		return nil, badValue("want a list, got %s", describe(data))
	}
	switch s.Tag {
	case tagNull:
		return []string{}, nil
	case tagBool:
		return nil, badValue("want a list, got a bool")
	}
	return splitList(s.Text), nil
}

// splitList splits a comma-separated list, trimming spaces; empty text is no items.
func splitList(v string) []string {
	if strings.TrimSpace(v) == "" {
		return []string{}
	}
	parts := strings.Split(v, ",")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts
}

// oneLine joins a multi-line message (the YAML library's "unmarshal errors:" list,
// an address holding a newline) into one line, as the contract asks of startup
// errors.
func oneLine(msg string) string {
	lines := strings.FieldsFunc(msg, func(r rune) bool { return r == '\n' || r == '\r' })
	var kept []string
	for _, l := range lines {
		if l = strings.TrimSpace(l); l != "" {
			kept = append(kept, l)
		}
	}
	joined := strings.Join(kept, "; ")
	return strings.NewReplacer(":; ", ": ", "; :", ":").Replace(joined)
}
