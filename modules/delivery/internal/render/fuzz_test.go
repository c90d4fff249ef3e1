package render_test

import (
	"bytes"
	"errors"
	"net/mail"
	"slices"
	"strings"
	"testing"

	"github.com/mailroom/mailroom/modules/delivery/contract"
	"github.com/mailroom/mailroom/modules/delivery/internal/render"
)

// listSep separates the addresses of one list in a fuzz input.
const listSep = "\x1e"

func splitList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, listSep)
}

// FuzzRender checks, for any input, that Render does not panic and that whatever it
// renders carries only the expected headers and exactly the recipients asked for:
// the envelope, To, Cc, From and Reply-To as asked (names included, as a reader
// decodes them), Bcc in the envelope only, and no other header.
func FuzzRender(f *testing.F) {
	for _, seed := range [][9]string{
		{"01JQ8Z6V4K", "Team <team@example.com>", "a@example.com", "", "", "", "Hello", "plain", ""},
		{"id-1", "김철수 <kim@example.com>", "이영희 <lee@example.com>" + listSep + "b@Example.org", "c@example.com", "d@example.com", "help@example.com", "안녕하세요", "안녕하세요\n", "<p>안녕</p>"},
		{"id.2", "a@b", `"a@x> ORCPT=rfc822;b@y"@example.com`, "", "", "", "s", "t", ""},
		{"id3", "a@b", "a@example.com\r\nRCPT TO:<evil@example.com>", "", "", "", "s", "t", ""},
		{"id4", "a@b", "a@example.com", "", "", "", "hi\r\nBcc: evil@example.com", "t", ""},
		{"id5", "=?utf-8?q?a=0D=0AX:_y?= <a@b>", "x@y", "", "", "", "=?UTF-8?B?SGk=?=", "", "<p>x</p>"},
		{"id6", "", "friends: f@example.com;", "a@example.com", "A@EXAMPLE.COM" + listSep + "a@example.com", "", "  spaced  \tout ", "line\r\nend\r", "x"},
		{"id7", "\"Smith, John\" <j@example.com>", "<k@example.com>", "", "", "r@example.com", strings.Repeat("long", 40), strings.Repeat("=", 200), ""},
	} {
		f.Add(seed[0], seed[1], seed[2], seed[3], seed[4], seed[5], seed[6], seed[7], seed[8])
	}

	f.Fuzz(func(t *testing.T, id, from, to, cc, bcc, replyTo, subject, text, html string) {
		e := contract.FirstTry(contract.Email{
			EmailID: id, From: from, To: splitList(to), Cc: splitList(cc), Bcc: splitList(bcc),
			ReplyTo: replyTo, Subject: subject, Text: text, HTML: html,
		})
		m, err := render.Render(e, options())
		if err != nil {
			if !errors.Is(err, render.ErrInvalid) {
				t.Fatalf("error is not a permanent render error: %v", err)
			}
			return
		}

		want, ok := expectedRecipients(e)
		if !ok {
			t.Fatalf("rendered although an address does not parse: %+v", e)
		}
		if !slices.Equal(m.Recipients, want) {
			t.Fatalf("recipients = %q, want %q", m.Recipients, want)
		}
		for _, rcpt := range append([]string{m.EnvelopeFrom}, m.Recipients...) {
			if !plainForSMTP(rcpt) {
				t.Fatalf("address %q is not plain local@domain", rcpt)
			}
		}

		r, err := parseReceived(m.Raw)
		if err != nil {
			t.Fatalf("%v\n%s", err, m.Raw)
		}
		if wantTo := normalised(e.To); !slices.Equal(bare(r.to), wantTo) {
			t.Fatalf("To header = %q, want %q", bare(r.to), wantTo)
		}
		if wantCc := normalised(e.Cc); !slices.Equal(bare(r.cc), wantCc) {
			t.Fatalf("Cc header = %q, want %q", bare(r.cc), wantCc)
		}
		wantFrom := from
		if wantFrom == "" {
			wantFrom = options().DefaultFrom
		}
		if !sameAddresses([]*mail.Address{r.from}, []string{wantFrom}) {
			t.Fatalf("From header = %q <%s>, want %q", r.from.Name, r.from.Address, wantFrom)
		}
		if replyTo == "" && r.header.Get("Reply-To") != "" {
			t.Fatalf("Reply-To header %q although none was asked for", r.header.Get("Reply-To"))
		}
		if replyTo != "" && !sameAddresses(r.replyTo, []string{replyTo}) {
			t.Fatalf("Reply-To header = %q, want %q", r.header.Get("Reply-To"), replyTo)
		}
		if !sameAddresses(r.to, e.To) || !sameAddresses(r.cc, e.Cc) {
			t.Fatalf("To/Cc display names changed: To %q, Cc %q, asked %q, %q", r.header.Get("To"), r.header.Get("Cc"), e.To, e.Cc)
		}
		if r.header.Get("Message-Id") != m.MessageID ||
			m.MessageID != "<"+id+"@"+strings.ToLower(m.EnvelopeFrom[strings.LastIndexByte(m.EnvelopeFrom, '@')+1:])+">" {
			t.Fatalf("message id %q (header %q) for id %q from %q", m.MessageID, r.header.Get("Message-Id"), id, m.EnvelopeFrom)
		}
		if r.subject != subject {
			t.Fatalf("subject = %q, want %q", r.subject, subject)
		}
		if (text != "" || html == "") && r.parts["text/plain"] != crlf(text) {
			t.Fatalf("text = %q, want %q", r.parts["text/plain"], crlf(text))
		}
		if html != "" && r.parts["text/html"] != crlf(html) {
			t.Fatalf("html = %q, want %q", r.parts["text/html"], crlf(html))
		}

		again, err := render.Render(e, options())
		if err != nil || !bytes.Equal(again.Raw, m.Raw) {
			t.Fatalf("second render differs (err %v)", err)
		}
	})
}

// expectedRecipients is the test's own normalisation of to, cc and bcc: parsed by
// net/mail, domain lower-cased, first occurrence kept. ok is false when an address
// does not parse at all.
func expectedRecipients(e contract.SendEmail) (want []string, ok bool) {
	seen := map[string]bool{}
	for _, list := range [][]string{e.To, e.Cc, e.Bcc} {
		for _, s := range list {
			a, err := mail.ParseAddress(s)
			if err != nil {
				return nil, false
			}
			addr := lowerDomain(a.Address)
			if !seen[addr] {
				seen[addr] = true
				want = append(want, addr)
			}
		}
	}
	return want, true
}

// sameAddresses reports whether got, as a reader parsed it from the message, is
// want as the input asked: the same addresses (domains lower-cased) with the same
// display names, both as a mail reader shows them (readName).
func sameAddresses(got []*mail.Address, want []string) bool {
	if len(got) != len(want) {
		return false
	}
	for i, s := range want {
		a, err := readAddress(s)
		if err != nil || got[i].Name != a.Name || got[i].Address != lowerDomain(a.Address) {
			return false
		}
	}
	return true
}

func normalised(list []string) []string {
	var out []string
	for _, s := range list {
		a, _ := mail.ParseAddress(s)
		out = append(out, lowerDomain(a.Address))
	}
	return out
}

// plainForSMTP reports whether addr can be written into MAIL FROM or RCPT TO as is:
// one "@", nothing that ends the path or starts a parameter or a new command.
func plainForSMTP(addr string) bool {
	return strings.Count(addr, "@") == 1 && !strings.ContainsAny(addr, " <>\"\\\r\n\x00\t,;:()[]") &&
		!strings.HasPrefix(addr, "@") && !strings.HasSuffix(addr, "@")
}
