package domain_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mailroom/mailroom/modules/emails/internal/domain"
	"github.com/mailroom/mailroom/platform/apperr"
)

// invisibles is every bidirectional control and zero-width character Validate
// refuses, by name.
var invisibles = map[string]rune{
	"LEFT-TO-RIGHT EMBEDDING U+202A": '\u202a', "RIGHT-TO-LEFT EMBEDDING U+202B": '\u202b',
	"POP DIRECTIONAL FORMATTING U+202C": '\u202c', "LEFT-TO-RIGHT OVERRIDE U+202D": '\u202d',
	"RIGHT-TO-LEFT OVERRIDE U+202E": '\u202e', "LEFT-TO-RIGHT ISOLATE U+2066": '\u2066',
	"RIGHT-TO-LEFT ISOLATE U+2067": '\u2067', "FIRST STRONG ISOLATE U+2068": '\u2068',
	"POP DIRECTIONAL ISOLATE U+2069": '\u2069', "LEFT-TO-RIGHT MARK U+200E": '\u200e',
	"RIGHT-TO-LEFT MARK U+200F": '\u200f', "ARABIC LETTER MARK U+061C": '\u061c',
	"ZERO WIDTH SPACE U+200B": '\u200b', "ZERO WIDTH NON-JOINER U+200C": '\u200c',
	"ZERO WIDTH JOINER U+200D": '\u200d', "WORD JOINER U+2060": '\u2060',
	"ZERO WIDTH NO-BREAK SPACE (BOM) U+FEFF": '\ufeff',
}

func draft() domain.Draft {
	return domain.Draft{From: "Team <team@example.com>", To: []string{"a@example.com"}, Subject: "Hello", Text: "hi"}
}

// placements put a rune where it must be refused, and name the field the error
// must name.
var placements = []struct {
	name  string
	field string
	put   func(d *domain.Draft, s string)
}{
	{"in the subject", "subject", func(d *domain.Draft, s string) { d.Subject = "invoice " + s + "gnp.exe" }},
	{"in the from name", "from", func(d *domain.Draft, s string) { d.From = "Team" + s + " <team@example.com>" }},
	{"in a quoted from name", "from", func(d *domain.Draft, s string) { d.From = `"Team` + s + `" <team@example.com>` }},
	{"in a to name", "to[1]", func(d *domain.Draft, s string) { d.To = []string{"a@example.com", "B" + s + " <b@example.com>"} }},
	{"in a cc name", "cc[0]", func(d *domain.Draft, s string) { d.Cc = []string{"C" + s + " <c@example.com>"} }},
	{"in a bcc name", "bcc[0]", func(d *domain.Draft, s string) { d.Bcc = []string{"D" + s + " <d@example.com>"} }},
	{"in a reply_to name", "reply_to", func(d *domain.Draft, s string) { d.ReplyTo = "Help" + s + " <help@example.com>" }},
	{"in an encoded word of a to name", "to[0]", func(d *domain.Draft, s string) {
		d.To = []string{"=?utf-8?q?" + qEncode(s) + "?= <a@example.com>"}
	}},
	{"in an encoded word inside a quoted from name", "from", func(d *domain.Draft, s string) {
		d.From = `"=?utf-8?q?Team` + qEncode(s) + `?=" <team@example.com>`
	}},
	{"in a tag", "tags[0]", func(d *domain.Draft, s string) { d.Tags = []string{"welcome" + s} }},
}

// qEncode writes s as the bytes of a Q encoded word.
func qEncode(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		fmt.Fprintf(&b, "=%02X", c)
	}
	return b.String()
}

func TestBidiControlsAndZeroWidthCharactersAreRefusedNamingTheField(t *testing.T) {
	now := time.Now()
	for _, p := range placements {
		for name, r := range invisibles {
			t.Run(name+" "+p.name, func(t *testing.T) {
				d := draft()
				p.put(&d, string(r))
				_, err := domain.Validate(d, "mailroom@localhost", now)
				e, ok := apperr.As(err)
				if !ok || e.Code != apperr.CodeInvalidField || e.Field != p.field {
					t.Fatalf("Validate = %v, want invalid_field naming %s", err, p.field)
				}
				if p.field != "tags[0]" && !strings.Contains(e.Message, "U+") {
					t.Errorf("message %q does not say which character it refused", e.Message)
				}
			})
		}
	}
}

func TestVisibleTextAroundTheRefusedCharactersIsAccepted(t *testing.T) {
	// Neighbours of the refused ranges, and scripts that need no control to read
	// right: an RTL subject is written in logical order and shown right by readers.
	for name, s := range map[string]string{
		"Hebrew":                           "שלום",
		"Arabic":                           "مرحبا",
		"Korean":                           "안녕하세요",
		"HYPHEN U+2010 after the marks":    "a\u2010b",
		"EN QUAD U+2000 before the spaces": "a\u2000b",
		"NARROW NO-BREAK SPACE U+202F":     "a\u202fb",
		"FUNCTION APPLICATION U+2061":      "a\u2061b",
		"ARABIC SIGN U+061D":               "a\u061db",
		"emoji with a variation selector":  "\u2764\ufe0f",
	} {
		t.Run(name, func(t *testing.T) {
			d := draft()
			d.Subject = "Hi " + s
			d.From = s + " <team@example.com>"
			v, err := domain.Validate(d, "mailroom@localhost", time.Now())
			if err != nil {
				t.Fatalf("Validate = %v, want it accepted", err)
			}
			if v.Subject != d.Subject || !strings.Contains(v.From, s) {
				t.Errorf("Validate kept subject %q from %q, want %q and %q", v.Subject, v.From, d.Subject, s)
			}
		})
	}
}

func TestValidateGivesTheBareFromAddressForTheSenderCheck(t *testing.T) {
	for from, want := range map[string]string{
		`"Team" <Team@Example.com>`: "Team@Example.com",
		"team@example.com":          "team@example.com",
		"":                          "mailroom@localhost",
	} {
		d := draft()
		d.From = from
		v, err := domain.Validate(d, "Mailroom <mailroom@localhost>", time.Now())
		if err != nil || v.FromAddress != want {
			t.Errorf("Validate(from %q).FromAddress = %q, %v; want %q", from, v.FromAddress, err, want)
		}
	}
}
