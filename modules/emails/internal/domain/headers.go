package domain

import (
	"slices"
	"strings"

	delivery "github.com/mailroom/mailroom/modules/delivery/contract"
	"github.com/mailroom/mailroom/platform/apperr"
)

// Limits of custom headers.
const (
	// MaxHeaders bounds how many custom header fields an email may have.
	MaxHeaders = 50
	// MaxHeaderNameLen bounds a custom header's name in bytes.
	MaxHeaderNameLen = 76
	// MaxHeaderLineLen is RFC 5322's limit on a line, CRLF excluded: "Name: value"
	// must fit in it.
	MaxHeaderLineLen = 998
)

// ValidateHeaders checks a draft's custom header fields and returns them, or the
// first problem (in name order) as an apperr: a field that is not an RFC 5322
// field name, one the message's own fields or mail servers set
// (delivery.ReservedHeader: From, Bcc, Content-Type, Received...), named as
// "headers.<Name>", one given twice in different case, or a value that is not one
// line of UTF-8 without control characters, with "Name: value" at most
// MaxHeaderLineLen bytes.
func ValidateHeaders(in map[string]string) (map[string]string, error) {
	if len(in) == 0 {
		return nil, nil
	}
	if len(in) > MaxHeaders {
		return nil, apperr.Invalid("headers", "%d headers; at most %d", len(in), MaxHeaders)
	}
	names := make([]string, 0, len(in))
	for name := range in {
		names = append(names, name)
	}
	slices.Sort(names)
	seen := make(map[string]string, len(in))
	for _, name := range names {
		if !fieldName(name) {
			return nil, apperr.Invalid("headers", "%q is not a header name (1 to %d printable ASCII characters, no ':' or space)",
				apperr.Clip(name), MaxHeaderNameLen)
		}
		field := "headers." + name
		if delivery.ReservedHeader(name) {
			return nil, apperr.Invalid(field, "is set by Mailroom or by mail servers, not by a client")
		}
		lower := strings.ToLower(name)
		if other, ok := seen[lower]; ok {
			return nil, apperr.Invalid(field, "names the same header as %q; send it once", other)
		}
		seen[lower] = name
		value := in[name]
		if strings.TrimSpace(value) == "" {
			return nil, apperr.Invalid(field, "is empty")
		}
		if err := headerSafe(field, value); err != nil {
			return nil, err
		}
		if r, bad := firstLineHazard(value); bad {
			return nil, apperr.Invalid(field, "must not contain %s", describeHazard(r))
		}
		if len(name)+2+len(value) > MaxHeaderLineLen {
			return nil, apperr.Invalid(field, "the line %q plus its value is longer than %d bytes", name+": ", MaxHeaderLineLen)
		}
	}
	return in, nil
}

// fieldName reports whether s is an RFC 5322 field name (printable ASCII but ':')
// of at most MaxHeaderNameLen bytes.
func fieldName(s string) bool {
	if s == "" || len(s) > MaxHeaderNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 33 || s[i] > 126 || s[i] == ':' {
			return false
		}
	}
	return true
}
