package outbox

import (
	"bytes"
	"encoding/json"

	"github.com/ThreeDotsLabs/watermill/message"
)

// decodeMetadata decodes a row's metadata column, the JSON object Add wrote, into md.
// The relay decodes one per message it publishes, and encoding/json cost as much as
// reading the row itself, so the usual case (a flat object of strings with no
// escapes, which is what json.Marshal makes of ids, keys and event types) is split
// here directly; anything else goes to encoding/json.
func decodeMetadata(b []byte, md message.Metadata) error {
	if decodePlainMetadata(b, md) {
		return nil
	}
	clear(md)
	return json.Unmarshal(b, &md)
}

// decodePlainMetadata decodes {"k":"v",...} without a backslash anywhere, so that
// every string ends at its next quote; it reports false (md possibly half filled)
// on anything else.
func decodePlainMetadata(b []byte, md message.Metadata) bool {
	if bytes.IndexByte(b, '\\') >= 0 || len(b) < 2 || b[0] != '{' || b[len(b)-1] != '}' {
		return false
	}
	s := b[1 : len(b)-1]
	for len(s) > 0 {
		key, rest, ok := plainString(s)
		if !ok || len(rest) == 0 || rest[0] != ':' {
			return false
		}
		val, rest, ok := plainString(rest[1:])
		if !ok {
			return false
		}
		md[key] = val
		if len(rest) > 0 {
			if rest[0] != ',' || len(rest) == 1 {
				return false
			}
			rest = rest[1:]
		}
		s = rest
	}
	return true
}

// plainString splits a leading "..." holding no quote off s; the caller has checked
// that s holds no backslash. Control characters (which json.Marshal escapes) fail it.
func plainString(s []byte) (string, []byte, bool) {
	if len(s) < 2 || s[0] != '"' {
		return "", nil, false
	}
	end := bytes.IndexByte(s[1:], '"')
	if end < 0 {
		return "", nil, false
	}
	str := s[1 : 1+end]
	for _, c := range str {
		if c < 0x20 {
			return "", nil, false
		}
	}
	return string(str), s[2+end:], true
}
