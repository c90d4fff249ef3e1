package render_test

import (
	"bytes"
	"errors"
	"fmt"
	"net/mail"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailroom/mailroom/modules/delivery/contract"
	"github.com/mailroom/mailroom/modules/delivery/internal/render"
)

var fixedNow = time.Date(2026, 3, 4, 5, 6, 7, 0, time.FixedZone("KST", 9*60*60))

func options() render.Options {
	return render.Options{
		DefaultFrom: "Mailroom <mailroom@localhost>",
		Now:         func() time.Time { return fixedNow },
	}
}

// email returns the first try of a valid email that each case modifies; the try
// carries every recipient the modified email names, unless the case chose them.
func email(modify func(*contract.SendEmail)) contract.SendEmail {
	e := contract.SendEmail{Email: contract.Email{
		EmailID: "01JQ8Z6V4K1M2N3P4Q5R6S7T8V",
		From:    "Team <team@example.com>",
		To:      []string{"a@example.com"},
		Subject: "Hello",
		Text:    "plain body",
	}, Attempt: 1}
	if modify != nil {
		modify(&e)
	}
	if e.Recipients == nil {
		e.Recipients = contract.EnvelopeOf(e.Email)
	}
	return e
}

func TestRenderDelivers(t *testing.T) {
	cases := []struct {
		name  string
		email contract.SendEmail
		check func(t *testing.T, m render.Message, r *received)
	}{
		{
			name: "a Korean subject, display name and body arrive unchanged",
			email: email(func(e *contract.SendEmail) {
				e.From = "김철수 <kim@example.com>"
				e.To = []string{"이영희 <lee@example.com>"}
				e.Subject = "안녕하세요"
				e.Text = "안녕하세요, 반갑습니다.\n두 번째 줄"
				e.HTML = "<p>안녕하세요</p>"
			}),
			check: func(t *testing.T, _ render.Message, r *received) {
				if r.from.Name != "김철수" || r.to[0].Name != "이영희" {
					t.Errorf("names = %q, %q", r.from.Name, r.to[0].Name)
				}
			},
		},
		{
			name: "a long Korean subject is folded into several encoded words",
			email: email(func(e *contract.SendEmail) {
				e.Subject = strings.Repeat("안녕하세요 반갑습니다 ", 12)
			}),
			check: func(t *testing.T, m render.Message, _ *received) {
				for line := range strings.SplitSeq(string(m.Raw), "\r\n") {
					if len(line) > 78 {
						t.Errorf("line of %d characters: %q", len(line), line)
					}
				}
			},
		},
		{
			name: "text and html make a multipart/alternative with the text first",
			email: email(func(e *contract.SendEmail) {
				e.Text, e.HTML = "plain", "<p>html</p>"
			}),
			check: func(t *testing.T, _ render.Message, r *received) {
				if !r.multipart || !slices.Equal(r.order, []string{"text/plain", "text/html"}) {
					t.Errorf("multipart = %v, parts = %v", r.multipart, r.order)
				}
			},
		},
		{
			name:  "html alone is a single text/html part",
			email: email(func(e *contract.SendEmail) { e.Text, e.HTML = "", "<b>hi</b>" }),
			check: func(t *testing.T, _ render.Message, r *received) {
				if r.multipart || !slices.Equal(r.order, []string{"text/html"}) {
					t.Errorf("multipart = %v, parts = %v", r.multipart, r.order)
				}
			},
		},
		{
			name: "bcc recipients are in the envelope but not in the headers",
			email: email(func(e *contract.SendEmail) {
				e.Bcc = []string{"Secret Person <secret@example.com>"}
			}),
			check: func(t *testing.T, m render.Message, r *received) {
				if !slices.Contains(m.Recipients, "secret@example.com") {
					t.Errorf("recipients = %v", m.Recipients)
				}
				if bytes.Contains(m.Raw, []byte("secret")) || bytes.Contains(m.Raw, []byte("Secret")) {
					t.Errorf("bcc leaked into the message:\n%s", m.Raw)
				}
			},
		},
		{
			name: "recipients are to, cc then bcc, deduplicated, with domains lower-cased",
			email: email(func(e *contract.SendEmail) {
				e.To = []string{"A <a@Example.COM>", "b@example.com"}
				e.Cc = []string{"a@example.com", "c@example.com"}
				e.Bcc = []string{"B@example.com", "c@EXAMPLE.com", "d@example.com"}
			}),
			check: func(t *testing.T, m render.Message, r *received) {
				want := []string{"a@example.com", "b@example.com", "c@example.com", "B@example.com", "d@example.com"}
				if !slices.Equal(m.Recipients, want) {
					t.Errorf("recipients = %v, want %v", m.Recipients, want)
				}
				if got := bare(r.cc); !slices.Equal(got, []string{"a@example.com", "c@example.com"}) {
					t.Errorf("cc header = %v", got)
				}
			},
		},
		{
			name:  "the default from is used when the email has none",
			email: email(func(e *contract.SendEmail) { e.From = "" }),
			check: func(t *testing.T, m render.Message, r *received) {
				if m.EnvelopeFrom != "mailroom@localhost" || r.from.Name != "Mailroom" {
					t.Errorf("envelope from %q, header from %v", m.EnvelopeFrom, r.from)
				}
				if m.MessageID != "<01JQ8Z6V4K1M2N3P4Q5R6S7T8V@localhost>" {
					t.Errorf("message id %q", m.MessageID)
				}
			},
		},
		{
			name:  "the message id is built from the email id and the from domain only",
			email: email(func(e *contract.SendEmail) { e.From = "x@Mail.Example.com"; e.Attempt = 3; e.Replay = 2 }),
			check: func(t *testing.T, m render.Message, r *received) {
				want := "<01JQ8Z6V4K1M2N3P4Q5R6S7T8V@mail.example.com>"
				if m.MessageID != want || r.header.Get("Message-Id") != want {
					t.Errorf("message id %q, header %q, want %q", m.MessageID, r.header.Get("Message-Id"), want)
				}
				if got := r.header.Get("X-Mailroom-Email-Id"); got != "01JQ8Z6V4K1M2N3P4Q5R6S7T8V" {
					t.Errorf("email id header %q", got)
				}
			},
		},
		{
			name:  "the date header comes from the injected clock",
			email: email(nil),
			check: func(t *testing.T, _ render.Message, r *received) {
				got, err := r.header.Date()
				if err != nil || !got.Equal(fixedNow) {
					t.Errorf("date %v (%v), want %v", got, err, fixedNow)
				}
				if r.header.Get("Mime-Version") != "1.0" {
					t.Errorf("MIME-Version %q", r.header.Get("Mime-Version"))
				}
			},
		},
		{
			name:  "a reply-to address is written",
			email: email(func(e *contract.SendEmail) { e.ReplyTo = "Help Desk <help@example.com>" }),
			check: func(t *testing.T, _ render.Message, r *received) {
				if len(r.replyTo) != 1 || r.replyTo[0].Address != "help@example.com" || r.replyTo[0].Name != "Help Desk" {
					t.Errorf("reply-to %v", r.replyTo)
				}
			},
		},
		{
			name:  "a subject that looks like an encoded word arrives literally",
			email: email(func(e *contract.SendEmail) { e.Subject = "=?UTF-8?B?SGk=?= is how Hi is encoded" }),
		},
		{
			name:  "leading, trailing and repeated spaces in a subject survive",
			email: email(func(e *contract.SendEmail) { e.Subject = "  two  spaces\tand a tab  " }),
		},
		{
			name:  "a subject word too long to fold is encoded rather than written in one long line",
			email: email(func(e *contract.SendEmail) { e.Subject = strings.Repeat("x", 300) }),
			check: func(t *testing.T, m render.Message, _ *received) {
				for line := range strings.SplitSeq(string(m.Raw), "\r\n") {
					if len(line) > 78 {
						t.Errorf("line of %d characters", len(line))
					}
				}
			},
		},
		{
			name:  "an ASCII display name needing quotes arrives unchanged",
			email: email(func(e *contract.SendEmail) { e.To = []string{`"Smith, John (Sales)" <john@example.com>`} }),
			check: func(t *testing.T, _ render.Message, r *received) {
				if r.to[0].Name != "Smith, John (Sales)" {
					t.Errorf("name %q", r.to[0].Name)
				}
			},
		},
		{
			name: "encoded words inside a quoted display name are decoded and the name sent encoded",
			email: email(func(e *contract.SendEmail) {
				e.From = `"=?utf-8?q?Caf=C3=A9?=" <cafe@example.com>`
				e.To = []string{`"=?ISO-8859-1?Q?Andr=E9?= Pirard" <andre@example.com>`, `"=?utf-8?q?x?=" <x@example.com>`}
			}),
			check: func(t *testing.T, _ render.Message, r *received) {
				if r.from.Name != "Café" || r.to[0].Name != "André Pirard" || r.to[1].Name != "x" {
					t.Errorf("names = %q, %q, %q; want Café, André Pirard, x", r.from.Name, r.to[0].Name, r.to[1].Name)
				}
				if from := r.header.Get("From"); from != "=?utf-8?q?Caf=C3=A9?= <cafe@example.com>" {
					t.Errorf("From: %s, want the name as one encoded word outside quotes", from)
				}
			},
		},
		{
			name: "fifty recipients with long names fold without changing a name",
			email: email(func(e *contract.SendEmail) {
				e.To = nil
				for i := range 25 {
					e.To = append(e.To, fmt.Sprintf(`"Somebody  With A Rather Long Display Name Number %d" <person%d@example.com>`, i, i))
					e.To = append(e.To, fmt.Sprintf("홍길동 아주 긴 이름을 가진 사람 %d <hong%d@example.com>", i, i))
				}
			}),
		},
		{
			name:  "bare LF and CR line endings become CRLF",
			email: email(func(e *contract.SendEmail) { e.Text = "one\ntwo\rthree\r\nfour\n" }),
		},
		{
			name:  "a quoted-printable body without a final newline decodes without one",
			email: email(func(e *contract.SendEmail) { e.Text = "no newline at the end" }),
		},
		{
			name:  "a base64 body without a final newline decodes without one",
			email: email(func(e *contract.SendEmail) { e.Text = "줄바꿈 없음" }),
		},
		{
			name: "a body with long lines, trailing spaces, dots and equals signs arrives unchanged",
			email: email(func(e *contract.SendEmail) {
				e.Text = strings.Repeat("long line = with equals ", 20) + "  \n.\n..\nFrom me\n=?x?=\n"
				e.HTML = "<p style=\"a\">" + strings.Repeat("é", 100) + "</p>"
			}),
		},
		{
			name:  "an empty body is allowed",
			email: email(func(e *contract.SendEmail) { e.Text = "" }),
		},
		{
			name:  "only bcc recipients give a message without a To header",
			email: email(func(e *contract.SendEmail) { e.To = nil; e.Bcc = []string{"b@example.com"} }),
			check: func(t *testing.T, m render.Message, r *received) {
				if r.header.Get("To") != "" || !slices.Equal(m.Recipients, []string{"b@example.com"}) {
					t.Errorf("to header %q, recipients %v", r.header.Get("To"), m.Recipients)
				}
			},
		},
		{
			name: "a group with one address counts as that address",
			email: email(func(e *contract.SendEmail) {
				e.To = []string{"friends: f@example.com;"}
			}),
			check: func(t *testing.T, m render.Message, _ *received) {
				if !slices.Equal(m.Recipients, []string{"f@example.com"}) {
					t.Errorf("recipients %v", m.Recipients)
				}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, err := render.Render(tc.email, options())
			if err != nil {
				t.Fatalf("Render: %v", err)
			}
			r, err := parseReceived(m.Raw)
			if err != nil {
				t.Fatalf("parse: %v\n%s", err, m.Raw)
			}
			checkFidelity(t, tc.email, m, r)
			if tc.check != nil {
				tc.check(t, m, r)
			}
			if t.Failed() {
				t.Logf("raw message:\n%s", m.Raw)
			}
		})
	}
}

// checkFidelity compares what a receiver decodes with what the email asked for.
func checkFidelity(t *testing.T, e contract.SendEmail, m render.Message, r *received) {
	t.Helper()
	if r.subject != e.Subject {
		t.Errorf("subject = %q, want %q", r.subject, e.Subject)
	}
	wantParts := map[string]string{}
	if e.Text != "" || e.HTML == "" {
		wantParts["text/plain"] = crlf(e.Text)
	}
	if e.HTML != "" {
		wantParts["text/html"] = crlf(e.HTML)
	}
	for typ, want := range wantParts {
		if got, ok := r.parts[typ]; !ok || got != want {
			t.Errorf("%s = %q, want %q", typ, got, want)
		}
	}
	if len(r.parts) != len(wantParts) {
		t.Errorf("parts %v, want %v", r.order, wantParts)
	}
	from := e.From
	if from == "" {
		from = options().DefaultFrom
	}
	wantFrom, _ := readAddress(from)
	if r.from.Name != wantFrom.Name || r.from.Address != lowerDomain(wantFrom.Address) || m.EnvelopeFrom != r.from.Address {
		t.Errorf("from = %v (envelope %q), want %v", r.from, m.EnvelopeFrom, wantFrom)
	}
	for _, h := range []struct {
		name string
		got  []*mail.Address
		want []string
	}{{"to", r.to, e.To}, {"cc", r.cc, e.Cc}} {
		if len(h.got) != len(h.want) {
			t.Errorf("%s header has %d addresses, want %d", h.name, len(h.got), len(h.want))
			continue
		}
		for i, s := range h.want {
			w, _ := readAddress(s)
			if h.got[i].Name != w.Name || h.got[i].Address != lowerDomain(w.Address) {
				t.Errorf("%s[%d] = %v, want %v", h.name, i, h.got[i], w)
			}
		}
	}
	if r.header.Get("Bcc") != "" {
		t.Errorf("Bcc header present")
	}
	again, err := render.Render(e, options())
	if err != nil || !bytes.Equal(again.Raw, m.Raw) {
		t.Errorf("second render differs (err %v):\n%s", err, again.Raw)
	}
}

func lowerDomain(addr string) string {
	at := strings.LastIndexByte(addr, '@')
	return addr[:at+1] + strings.ToLower(addr[at+1:])
}

func TestRenderBoundaryAvoidsTheBody(t *testing.T) {
	e := email(func(e *contract.SendEmail) { e.HTML = "<p>x</p>" })
	first, err := render.Render(e, options())
	if err != nil {
		t.Fatal(err)
	}
	r, err := parseReceived(first.Raw)
	if err != nil {
		t.Fatal(err)
	}
	e.Text = "the boundary of the first render:\n--" + r.boundary + "\n--" + r.boundary + "--\n"
	second, err := render.Render(e, options())
	if err != nil {
		t.Fatal(err)
	}
	r2, err := parseReceived(second.Raw)
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, second.Raw)
	}
	if r2.boundary == r.boundary {
		t.Fatalf("boundary %q reused although the body contains it", r.boundary)
	}
	checkFidelity(t, e, second, r2)
}

// hostileQuotedName is a display name whose quoted encoded word decodes to CR LF and
// a Bcc header: net/mail leaves encoded words inside quotes alone, mail readers do not.
const hostileQuotedName = `"=?utf-8?q?=0D=0ABcc:_x@y?=" <a@x.com>`

func TestRenderRefuses(t *testing.T) {
	cases := []struct {
		name      string
		email     contract.SendEmail
		opts      func(*render.Options)
		wantField string
	}{
		{"a CR LF in the subject", email(func(e *contract.SendEmail) { e.Subject = "hi\r\nBcc: evil@example.com" }), nil, "subject"},
		{"a bare LF in the subject", email(func(e *contract.SendEmail) { e.Subject = "hi\nX: y" }), nil, "subject"},
		{"a NUL in the subject", email(func(e *contract.SendEmail) { e.Subject = "hi\x00" }), nil, "subject"},
		{"invalid UTF-8 in the subject", email(func(e *contract.SendEmail) { e.Subject = "hi\xff" }), nil, "subject"},
		{"invalid UTF-8 in the text", email(func(e *contract.SendEmail) { e.Text = "\xc3\x28" }), nil, "text"},
		{"invalid UTF-8 in the html", email(func(e *contract.SendEmail) { e.HTML = "\xc3\x28" }), nil, "html"},
		{"a line break in a recipient", email(func(e *contract.SendEmail) { e.To = []string{"a@example.com\r\nRCPT TO:<b@example.com>"} }), nil, "to[0]"},
		{"a line break in a display name", email(func(e *contract.SendEmail) { e.Cc = []string{"x@example.com", "Evil\n <e@example.com>"} }), nil, "cc[1]"},
		{"a NUL in the from", email(func(e *contract.SendEmail) { e.From = "a\x00@example.com" }), nil, "from"},
		{"a quoted local part smuggling an SMTP parameter", email(func(e *contract.SendEmail) { e.To = []string{`"a@x> ORCPT=rfc822;b@y"@example.com`} }), nil, "to[0]"},
		{"a quoted local part with a space", email(func(e *contract.SendEmail) { e.Bcc = []string{`"john smith"@example.com`} }), nil, "bcc[0]"},
		{"an encoded display name that decodes to a line break", email(func(e *contract.SendEmail) { e.To = []string{"=?utf-8?q?a=0D=0ABcc:_x@y?= <a@example.com>"} }), nil, "to[0]"},
		{"an encoded word inside a quoted from name that decodes to a line break", email(func(e *contract.SendEmail) { e.From = hostileQuotedName }), nil, "from"},
		{"an encoded word inside a quoted to name that decodes to a line break", email(func(e *contract.SendEmail) { e.To = []string{"a@example.com", hostileQuotedName} }), nil, "to[1]"},
		{"an encoded word inside a quoted cc name that decodes to a line break", email(func(e *contract.SendEmail) { e.Cc = []string{hostileQuotedName} }), nil, "cc[0]"},
		{"an encoded word inside a quoted bcc name that decodes to a line break", email(func(e *contract.SendEmail) { e.Bcc = []string{hostileQuotedName} }), nil, "bcc[0]"},
		{"an encoded word inside a quoted reply-to name that decodes to a line break", email(func(e *contract.SendEmail) { e.ReplyTo = hostileQuotedName }), nil, "reply_to"},
		{"an encoded word inside a quoted name that decodes to a control character", email(func(e *contract.SendEmail) { e.To = []string{`"=?utf-8?q?a=1Bb?=" <a@example.com>`} }), nil, "to[0]"},
		{"an encoded word inside a quoted name that decodes to another encoded word", email(func(e *contract.SendEmail) {
			e.To = []string{`"=?utf-8?q?=3D=3Futf-8=3Fq=3F=3D0D=3D0A=3F=3D?=" <a@example.com>`}
		}), nil, "to[0]"},
		{"an encoded word in a charset that is not decoded", email(func(e *contract.SendEmail) { e.To = []string{`"=?koi8-r?q?=F0=D2=C9?=" <a@example.com>`} }), nil, "to[0]"},
		{"an address literal domain", email(func(e *contract.SendEmail) { e.To = []string{"a@[127.0.0.1]"} }), nil, "to[0]"},
		{"a non-ASCII local part", email(func(e *contract.SendEmail) { e.To = []string{"김@example.com"} }), nil, "to[0]"},
		{"a non-ASCII domain", email(func(e *contract.SendEmail) { e.To = []string{"a@예시.com"} }), nil, "to[0]"},
		{"a domain label starting with a hyphen", email(func(e *contract.SendEmail) { e.To = []string{"a@-x.com"} }), nil, "to[0]"},
		{"two addresses in one field", email(func(e *contract.SendEmail) { e.To = []string{"a@example.com, b@example.com"} }), nil, "to[0]"},
		{"a missing at sign", email(func(e *contract.SendEmail) { e.To = []string{"nobody"} }), nil, "to[0]"},
		{"an empty address", email(func(e *contract.SendEmail) { e.To = []string{""} }), nil, "to[0]"},
		{"no recipient at all", email(func(e *contract.SendEmail) { e.To = nil }), nil, "recipients"},
		{"a try carrying an address the email does not name", email(func(e *contract.SendEmail) {
			e.Recipients = []contract.Recipient{{Address: "intruder@example.com", Type: contract.TypeBcc}}
		}), nil, "recipients[0]"},
		{"a bad reply-to", email(func(e *contract.SendEmail) { e.ReplyTo = "help@example.com\r\nX: y" }), nil, "reply_to"},
		{"an empty email id", email(func(e *contract.SendEmail) { e.EmailID = "" }), nil, "email_id"},
		{"an email id that would break the message id", email(func(e *contract.SendEmail) { e.EmailID = "a>b@c" }), nil, "email_id"},
		{"an over-long email id", email(func(e *contract.SendEmail) { e.EmailID = strings.Repeat("a", 129) }), nil, "email_id"},
		{"no from and no default from", email(func(e *contract.SendEmail) { e.From = "" }), func(o *render.Options) { o.DefaultFrom = "" }, "smtp.from"},
		{"an over-long local part", email(func(e *contract.SendEmail) { e.To = []string{strings.Repeat("a", 65) + "@example.com"} }), nil, "to[0]"},
	}
	for _, tc := range cases {
		t.Run("refuses "+tc.name, func(t *testing.T) {
			opts := options()
			if tc.opts != nil {
				tc.opts(&opts)
			}
			m, err := render.Render(tc.email, opts)
			if err == nil {
				t.Fatalf("rendered:\n%s\nrecipients %q", m.Raw, m.Recipients)
			}
			var re *render.Error
			if !errors.As(err, &re) || !errors.Is(err, render.ErrInvalid) {
				t.Fatalf("error %v (%T) is not a render.Error matching ErrInvalid", err, err)
			}
			if re.Field != tc.wantField {
				t.Errorf("field = %q, want %q (%v)", re.Field, tc.wantField, err)
			}
		})
	}
}

func TestALaterTryIsAddressedToTheRecipientsItCarriesWithTheSameHeadersAndMessageID(t *testing.T) {
	first := email(func(e *contract.SendEmail) {
		e.To = []string{"A <a@example.com>", "b@Example.com"}
		e.Cc = []string{"c@example.com"}
		e.Bcc = []string{"d@example.com"}
	})
	later := first.NextTry([]contract.Recipient{{Address: "b@example.com", Type: contract.TypeTo}, {Address: "d@example.com", Type: contract.TypeBcc}},
		nil, fixedNow)
	m1, err := render.Render(first, options())
	if err != nil {
		t.Fatal(err)
	}
	m2, err := render.Render(later, options())
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a@example.com", "b@example.com", "c@example.com", "d@example.com"}; !slices.Equal(m1.Recipients, want) {
		t.Errorf("first try's envelope %v, want %v", m1.Recipients, want)
	}
	if want := []string{"b@example.com", "d@example.com"}; !slices.Equal(m2.Recipients, want) {
		t.Errorf("later try's envelope %v, want %v", m2.Recipients, want)
	}
	if m1.MessageID != m2.MessageID || !bytes.Equal(m1.Raw, m2.Raw) {
		t.Errorf("a later try changed the message: Message-ID %s then %s", m1.MessageID, m2.MessageID)
	}
	if bytes.Contains(m2.Raw, []byte("d@example.com")) {
		t.Errorf("the bcc recipient is in the message:\n%s", m2.Raw)
	}
}
