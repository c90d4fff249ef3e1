package httpserver

import (
	"reflect"
	"strings"
	"sync"
	"unicode/utf16"
	"unicode/utf8"
)

// The fast path of Unmarshal: one pass over the body that checks and decodes at
// once, for the common shape of our request bodies (a struct of string, []string and
// map[string]string fields) and the common case of a body that is fine. It accepts a
// strict subset of what the general path accepts and produces the same value; on
// anything else (a syntax error, an unknown, duplicate or case-folded key, a null, a
// number, a surrogate escape, another field type) it gives up without a word and the
// general path decodes the body again, so refusals, and their messages, are the
// general path's. FuzzFastDecodeMatchesStrictDecode holds the two paths to that.

// fastUnmarshal decodes body into v on the fast path and reports whether it did; on
// false v is untouched. body must be valid UTF-8.
func fastUnmarshal(body []byte, v any) bool {
	rv := reflect.ValueOf(v)
	p := planFor(rv.Type())
	if p == nil || rv.IsNil() {
		return false
	}
	// Decode into a copy of *v, as encoding/json decodes into *v itself: fields the
	// body does not name keep their values. *v changes only on success.
	tmp := reflect.New(rv.Type().Elem()).Elem()
	tmp.Set(rv.Elem())
	if !p.fastDecode(body, tmp) {
		return false
	}
	rv.Elem().Set(tmp)
	return true
}

// fieldKind is what a fast-path field holds.
type fieldKind uint8

const (
	kindString fieldKind = iota + 1
	kindStringSlice
	kindStringMap
	// kindOther is a field of another type: a body that names it leaves the fast
	// path, one that does not stays on it.
	kindOther
)

// fastField is one struct field the fast path can fill.
type fastField struct {
	name  string
	index int
	kind  fieldKind
}

// fastPlan is how the fast path decodes one struct type; nil when it cannot.
type fastPlan struct {
	fields []fastField
}

var fastPlans sync.Map // reflect.Type -> *fastPlan (nil: not eligible)

var (
	stringType    = reflect.TypeFor[string]()
	stringSlice   = reflect.TypeFor[[]string]()
	stringMapType = reflect.TypeFor[map[string]string]()
)

// planFor returns the fast plan for decoding into a value of type t (a pointer to a
// struct), or nil when the fast path does not apply to t.
func planFor(t reflect.Type) *fastPlan {
	if p, ok := fastPlans.Load(t); ok {
		return p.(*fastPlan)
	}
	p := buildPlan(t)
	fastPlans.Store(t, p)
	return p
}

func buildPlan(t reflect.Type) *fastPlan {
	if t == nil || t.Kind() != reflect.Pointer || t.Implements(jsonUnmarshaler) {
		return nil
	}
	st := t.Elem()
	if st.Kind() != reflect.Struct || st.NumField() > 64 {
		return nil
	}
	p := &fastPlan{}
	seen := map[string]bool{}
	for i := range st.NumField() {
		f := st.Field(i)
		if f.Anonymous {
			return nil // promoted fields follow rules the fast path does not
		}
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if opts != "" && opts != "omitempty" && opts != "omitzero" {
			return nil // ",string" and friends change decoding
		}
		if name == "" {
			name = f.Name
		}
		if !plainName(name) || seen[name] {
			return nil
		}
		seen[name] = true
		var k fieldKind
		switch f.Type {
		case stringType:
			k = kindString
		case stringSlice:
			k = kindStringSlice
		case stringMapType:
			k = kindStringMap
		default:
			k = kindOther
		}
		p.fields = append(p.fields, fastField{name: name, index: i, kind: k})
	}
	return p
}

// plainName reports whether a JSON name is letters, digits and underscores: names
// that encoding/json takes as written.
func plainName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// fastDecode decodes body into v (a pointer to a struct of the plan's type) and
// reports whether it did. body must be valid UTF-8. On false, v may be partly
// filled: the caller decodes into a fresh value.
func (p *fastPlan) fastDecode(body []byte, v reflect.Value) bool {
	s := scanner{b: body}
	s.skipSpace()
	if !s.consume('{') {
		return false
	}
	var seen uint64
	s.skipSpace()
	if s.consume('}') {
		return s.atEnd()
	}
	for {
		s.skipSpace()
		key, ok := s.rawKey()
		if !ok {
			return false
		}
		i := p.field(key)
		if i < 0 || seen&(1<<uint(i)) != 0 {
			return false
		}
		seen |= 1 << uint(i)
		s.skipSpace()
		if !s.consume(':') {
			return false
		}
		s.skipSpace()
		f := p.fields[i]
		fv := v.Field(f.index)
		switch f.kind {
		case kindString:
			str, ok := s.str()
			if !ok {
				return false
			}
			fv.SetString(str)
		case kindStringSlice:
			list, ok := s.strList()
			if !ok {
				return false
			}
			fv.Set(reflect.ValueOf(list))
		case kindStringMap:
			if !fv.IsNil() {
				return false // encoding/json would add to the existing map
			}
			m, ok := s.strMap()
			if !ok {
				return false
			}
			fv.Set(reflect.ValueOf(m))
		case kindOther:
			return false
		}
		s.skipSpace()
		if s.consume(',') {
			continue
		}
		if s.consume('}') {
			return s.atEnd()
		}
		return false
	}
}

// field returns the index in p.fields of the field named exactly key, or -1.
func (p *fastPlan) field(key []byte) int {
	for i := range p.fields {
		if p.fields[i].name == string(key) {
			return i
		}
	}
	return -1
}

// scanner reads JSON from b.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) skipSpace() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) consume(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// atEnd reports whether only whitespace is left.
func (s *scanner) atEnd() bool {
	s.skipSpace()
	return s.i == len(s.b)
}

// rawKey reads an object key without escapes: a key with escapes goes to the
// general path, which names it in its refusal if it is not a field.
func (s *scanner) rawKey() ([]byte, bool) {
	if !s.consume('"') {
		return nil, false
	}
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			key := s.b[start:s.i]
			s.i++
			return key, true
		case c == '\\' || c < 0x20:
			return nil, false
		}
		s.i++
	}
	return nil, false
}

// str reads a string value.
func (s *scanner) str() (string, bool) {
	if !s.consume('"') {
		return "", false
	}
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			out := string(s.b[start:s.i])
			s.i++
			return out, true
		case c == '\\':
			return s.strEscaped(start)
		case c < 0x20:
			return "", false
		}
		s.i++
	}
	return "", false
}

// strEscaped finishes a string that holds escapes; s.i is at the first backslash
// and the string began at start.
func (s *scanner) strEscaped(start int) (string, bool) {
	out := make([]byte, 0, s.i-start+32)
	out = append(out, s.b[start:s.i]...)
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return string(out), true
		case c < 0x20:
			return "", false
		case c != '\\':
			out = append(out, c)
			s.i++
			continue
		}
		if s.i+1 >= len(s.b) {
			return "", false
		}
		e := s.b[s.i+1]
		s.i += 2
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := hex4(s.b[s.i:])
			if !ok || utf16.IsSurrogate(r) {
				return "", false // surrogates: the general path's rules for pairs and halves
			}
			s.i += 4
			out = utf8.AppendRune(out, r)
		default:
			return "", false
		}
	}
	return "", false
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r*16 + rune(c)
	}
	return r, true
}

// strList reads an array of strings; an empty array is an empty, non-nil slice,
// as encoding/json makes it.
func (s *scanner) strList() ([]string, bool) {
	if !s.consume('[') {
		return nil, false
	}
	list := make([]string, 0, 1)
	s.skipSpace()
	if s.consume(']') {
		return list, true
	}
	for {
		s.skipSpace()
		str, ok := s.str()
		if !ok {
			return nil, false
		}
		list = append(list, str)
		s.skipSpace()
		if s.consume(',') {
			continue
		}
		if s.consume(']') {
			return list, true
		}
		return nil, false
	}
}

// strMap reads an object of strings; a repeated key gives up (the general path
// refuses it).
func (s *scanner) strMap() (map[string]string, bool) {
	if !s.consume('{') {
		return nil, false
	}
	m := make(map[string]string, 1)
	s.skipSpace()
	if s.consume('}') {
		return m, true
	}
	for {
		s.skipSpace()
		key, ok := s.str()
		if !ok {
			return nil, false
		}
		if _, dup := m[key]; dup {
			return nil, false
		}
		s.skipSpace()
		if !s.consume(':') {
			return nil, false
		}
		s.skipSpace()
		val, ok := s.str()
		if !ok {
			return nil, false
		}
		m[key] = val
		s.skipSpace()
		if s.consume(',') {
			continue
		}
		if s.consume('}') {
			return m, true
		}
		return nil, false
	}
}
