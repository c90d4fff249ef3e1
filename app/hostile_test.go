package app_test

// Hostile input against the whole app: requests built to break the decoder, smuggle
// a header or a recipient, or exhaust memory. Each must get its exact 4xx with the
// contract's error shape naming the field, never a 500; and the app must still
// deliver the next good email, with the SMTP server never seeing a recipient or a
// header nobody asked for. modules/emails/emails_test.go holds the plain validation
// table; this one is about injection, smuggling and size.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/mail"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailroom/mailroom/app/apptest"
	"github.com/mailroom/mailroom/app/internal/e2e"
	"github.com/mailroom/mailroom/platform/testkit/smtptest"
)

// hostileMaxBody is http.max_body_bytes here: room for the 100,000-element arrays,
// which must be refused by validation rather than by size.
const hostileMaxBody = 4 << 20

// evil are the addresses the hostile requests try to smuggle in, whole or in
// parts (`"a@x> ORCPT=b@y"@z` would be RCPT TO:<a@x> plus a parameter naming b@y).
var evil = []string{
	"evil@evil.example", "hidden@evil.example", "a@x", "b@y", "c@x", "d@x", "e@x", "f@x",
	"rfc822;b@y",
}

// hostileBody returns a valid request with change applied; a nil value deletes
// the key.
func hostileBody(change map[string]any) map[string]any {
	b := map[string]any{
		"from":    "Team <team@example.com>",
		"to":      []string{"a@example.com"},
		"subject": "Hello",
		"text":    "plain body",
	}
	for k, v := range change {
		if v == nil {
			delete(b, k)
			continue
		}
		b[k] = v
	}
	return b
}

// rawJSON encodes v, failing the test if it cannot.
func rawJSON(tb testing.TB, v any) []byte {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

type hostileCase struct {
	name    string
	body    any      // a map is encoded as JSON; a string or []byte is sent as is
	headers []string // name, value pairs
	status  int      // 400 unless set
	code    string   // invalid_field unless set
	field   string   // the field the error must name; "" means none
}

func TestHostileRequestsAreRefusedAndNothingIsInjected(t *testing.T) {
	t.Parallel()
	srv := smtptest.Start(t)
	cfg := apptest.Config(t)
	apptest.UseSMTP(cfg, srv)
	cfg.HTTP.MaxBodyBytes = hostileMaxBody
	in := apptest.Start(t, cfg)

	valid := `{"to":["a@example.com"],"subject":"Hello","text":"hi"}`
	orcpt := `"a@x> ORCPT=rfc822;b@y"@z.example`
	many := func(n int, f func(i int) string) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = f(i)
		}
		return out
	}
	bigMeta := map[string]string{}
	for i := range 50_000 {
		bigMeta[fmt.Sprintf("k%d", i)] = "v"
	}
	deep := func(n int, open, leaf, closing string) string {
		return strings.Repeat(open, n) + leaf + strings.Repeat(closing, n)
	}

	cases := []hostileCase{
		// CR, LF and NUL in every header-bound field, as JSON escapes (raw control
		// characters are not even JSON).
		{name: "CR LF and a Bcc header in from", body: hostileBody(map[string]any{"from": "Team <team@example.com>\r\nBcc: evil@evil.example"}), field: "from"},
		{name: "NUL in the display name of from", body: hostileBody(map[string]any{"from": "Te\x00am <team@example.com>"}), field: "from"},
		{name: "an encoded-word display name in from that decodes to CR LF", body: hostileBody(map[string]any{"from": "=?utf-8?b?YQ0KQmNjOiBldmlsQGV2aWwuZXhhbXBsZQ==?= <team@example.com>"}), field: "from"},
		{name: "CR LF and an SMTP command in to", body: hostileBody(map[string]any{"to": []string{"a@example.com\r\nRCPT TO:<evil@evil.example>"}}), field: "to[0]"},
		{name: "a bare LF in the second to", body: hostileBody(map[string]any{"to": []string{"a@example.com", "b@example.com\nBcc: evil@evil.example"}}), field: "to[1]"},
		{name: "a bare CR in cc", body: hostileBody(map[string]any{"cc": []string{"c@example.com\rBcc: evil@evil.example"}}), field: "cc[0]"},
		{name: "NUL in bcc", body: hostileBody(map[string]any{"bcc": []string{"ok@example.com", "d@example.com\x00evil@evil.example"}}), field: "bcc[1]"},
		{name: "CR LF in reply_to", body: hostileBody(map[string]any{"reply_to": "help@example.com\r\nBcc: evil@evil.example"}), field: "reply_to"},
		{name: "an encoded-word display name in reply_to that decodes to NUL", body: hostileBody(map[string]any{"reply_to": "=?utf-8?q?a=00b?= <help@example.com>"}), field: "reply_to"},
		{name: "a bare LF in the subject", body: hostileBody(map[string]any{"subject": "Hi\nBcc: evil@evil.example"}), field: "subject"},
		{name: "NUL in the subject", body: hostileBody(map[string]any{"subject": "Hi\x00there"}), field: "subject"},
		{name: "a subject with a Unicode line separator and NEL",
			body: hostileBody(map[string]any{"subject": "a\u2028Bcc: evil@evil.example\u0085b"}), field: "subject"},
		{name: "CR LF in a tag", body: hostileBody(map[string]any{"tags": []string{"ok", "x\r\nBcc: evil@evil.example"}}), field: "tags[1]"},
		{name: "CR LF in a metadata key", body: hostileBody(map[string]any{"metadata": map[string]string{"k\r\nBcc": "v"}}), field: "metadata"},
		{name: "NUL in a metadata value", body: hostileBody(map[string]any{"metadata": map[string]string{"user_id": "42\x00evil"}}), field: "metadata.user_id"},
		{name: "an Idempotency-Key with a byte outside ASCII", body: hostileBody(nil), headers: []string{"Idempotency-Key", "key\xffkey"}, field: "Idempotency-Key"},
		{name: "an empty Idempotency-Key", body: hostileBody(nil), headers: []string{"Idempotency-Key", ""}, field: "Idempotency-Key"},

		// go-mail #495: net/mail accepts a quoted local part and drops its quotes,
		// which written into RCPT TO or MAIL FROM adds SMTP parameters.
		{name: "a quoted local part smuggling ORCPT in to", body: hostileBody(map[string]any{"to": []string{orcpt}}), field: "to[0]"},
		{name: "a quoted local part smuggling ORCPT in cc", body: hostileBody(map[string]any{"cc": []string{orcpt}}), field: "cc[0]"},
		{name: "a quoted local part smuggling NOTIFY in bcc", body: hostileBody(map[string]any{"bcc": []string{`"c@x> NOTIFY=SUCCESS"@z.example`}}), field: "bcc[0]"},
		{name: "a quoted local part smuggling SIZE in from", body: hostileBody(map[string]any{"from": `Team <"e@x> SIZE=1"@z.example>`}), field: "from"},
		{name: "a quoted local part in reply_to", body: hostileBody(map[string]any{"reply_to": `"f@x>"@z.example`}), field: "reply_to"},
		{name: "a group of recipients in one to entry", body: hostileBody(map[string]any{"to": []string{"friends: a@example.com, evil@evil.example;"}}), field: "to[0]"},
		{name: "an address literal in to", body: hostileBody(map[string]any{"to": []string{"a@[127.0.0.1]"}}), field: "to[0]"},
		{name: "a local part longer than 64 octets", body: hostileBody(map[string]any{"to": []string{strings.Repeat("l", 65) + "@example.com"}}), field: "to[0]"},

		// Keys that smuggle a second value for a field past the duplicate check.
		{name: "to given twice, the second naming another recipient", body: `{"to":["a@example.com"],"subject":"s","text":"t","to":["evil@evil.example"]}`, field: "to"},
		{name: "to given again as To, which encoding/json would also take", body: `{"to":["a@example.com"],"To":["evil@evil.example"],"subject":"s","text":"t"}`, field: "To"},
		{name: "bcc spelled BCC", body: `{"to":["a@example.com"],"BCC":["evil@evil.example"],"subject":"s","text":"t"}`, field: "BCC"},
		{name: "subject spelled with the long s", body: `{"to":["a@example.com"],"subject":"s","ſubject":"x","text":"t"}`, field: "ſubject"},
		{name: "a duplicate metadata key", body: `{"to":["a@example.com"],"subject":"s","text":"t","metadata":{"k":"1","k":"2"}}`, field: "metadata.k"},
		{name: "a headers object asking for a Bcc", body: hostileBody(map[string]any{"headers": map[string]string{"Bcc": "evil@evil.example"}}), field: "headers.Bcc"},
		{name: "a custom header smuggling a Bcc line", body: hostileBody(map[string]any{"headers": map[string]string{"X-A": "a\r\nBcc: evil@evil.example"}}), field: "headers.X-A"},
		{name: "an attachment name smuggling a Bcc line", body: hostileBody(map[string]any{"attachments": []map[string]string{{"filename": "a\r\nBcc: evil@evil.example", "content": "eA=="}}}), field: "attachments[0].filename"},

		// Wrong types, numbers where strings go.
		{name: "a number as the subject", body: `{"to":["a@example.com"],"subject":42,"text":"t"}`, field: "subject"},
		{name: "a number too large for a float as from", body: `{"from":1e999,"to":["a@example.com"],"subject":"s","text":"t"}`, field: "from"},
		{name: "a number in the list of recipients", body: `{"to":["a@example.com",42],"subject":"s","text":"t"}`, field: "to[1]"},
		{name: "a query operator object as to", body: `{"to":{"$ne":null},"subject":"s","text":"t"}`, field: "to"},
		{name: "a boolean as text", body: `{"to":["a@example.com"],"subject":"s","text":true}`, field: "text"},
		{name: "an array as the subject", body: `{"to":["a@example.com"],"subject":["s","t"],"text":"t"}`, field: "subject"},
		{name: "a number as a metadata value", body: `{"to":["a@example.com"],"subject":"s","text":"t","metadata":{"k":1}}`, field: "metadata.k"},
		{name: "null as a metadata value", body: `{"to":["a@example.com"],"subject":"s","text":"t","metadata":{"k":null}}`, field: "metadata.k"},
		{name: "a Unix time as send_at", body: `{"to":["a@example.com"],"subject":"s","text":"t","send_at":1790000000}`, field: "send_at"},
		{name: "a string as tags", body: `{"to":["a@example.com"],"subject":"s","text":"t","tags":"welcome"}`, field: "tags"},
		{name: "null in the list of recipients", body: `{"to":["a@example.com",null],"subject":"s","text":"t"}`, field: "to[1]"},

		// Bodies that are not one JSON object.
		{name: "null as the body", body: `null`, code: "invalid_json"},
		{name: "an array as the body", body: `[` + valid + `]`, code: "invalid_json"},
		{name: "a string as the body", body: `"` + valid + `"`, code: "invalid_json"},
		{name: "an empty object", body: `{}`, field: "to"},
		{name: "a second object appended to add a recipient", body: valid + `,{"to":["evil@evil.example"]}`, code: "invalid_json"},
		{name: "NUL after the object", body: valid + "\x00", code: "invalid_json"},
		{name: "a byte-order mark before the object", body: "\ufeff" + valid, code: "invalid_json"},
		{name: "a comment inside the object", body: `{"to":["a@example.com"],/* "bcc":["evil@evil.example"], */"subject":"s","text":"t"}`, code: "invalid_json"},
		{name: "an overlong UTF-8 encoding in the subject", body: "{\"to\":[\"a@example.com\"],\"subject\":\"\xc0\x8a\",\"text\":\"t\"}", code: "invalid_json"},
		{name: "invalid UTF-8 in a key", body: "{\"to\":[\"a@example.com\"],\"subject\":\"s\",\"text\":\"t\",\"\xff\":1}", code: "invalid_json"},
		{name: "ten thousand nested objects in metadata", body: `{"to":["a@example.com"],"subject":"s","text":"t","metadata":` + deep(10_000, `{"a":`, `"x"`, `}`) + `}`, field: "metadata.a"},
		{name: "a hundred thousand nested arrays in to", body: `{"to":` + deep(100_000, `[`, `"a@example.com"`, `]`) + `,"subject":"s","text":"t"}`, field: "to[0]"},

		// Size.
		{name: "100,000 recipients in to", body: hostileBody(map[string]any{"to": many(100_000, func(i int) string { return fmt.Sprintf("r%d@example.com", i) })}), field: "to"},
		{name: "100,000 tags", body: hostileBody(map[string]any{"tags": many(100_000, func(i int) string { return fmt.Sprintf("t%d", i) })}), field: "tags"},
		{name: "50,000 metadata keys", body: hostileBody(map[string]any{"metadata": bigMeta}), field: "metadata"},
		{name: "a subject of a million characters", body: hostileBody(map[string]any{"subject": strings.Repeat("s", 1<<20)}), field: "subject"},
		{name: "a body over http.max_body_bytes", body: hostileBody(map[string]any{"text": strings.Repeat("x", hostileMaxBody)}), status: http.StatusRequestEntityTooLarge, code: "body_too_large"},

		// Not JSON at all.
		{name: "text/plain", body: valid, headers: []string{"Content-Type", "text/plain"}, status: http.StatusUnsupportedMediaType, code: "unsupported_media_type"},
		{name: "an empty content type", body: valid, headers: []string{"Content-Type", ""}, status: http.StatusUnsupportedMediaType, code: "unsupported_media_type"},
		{name: "multipart form data", body: valid, headers: []string{"Content-Type", "multipart/form-data; boundary=x"}, status: http.StatusUnsupportedMediaType, code: "unsupported_media_type"},
		{name: "JSON in UTF-16", body: valid, headers: []string{"Content-Type", "application/json; charset=utf-16"}, status: http.StatusUnsupportedMediaType, code: "unsupported_media_type"},
		{name: "a list of content types", body: valid, headers: []string{"Content-Type", "application/json, text/plain"}, status: http.StatusUnsupportedMediaType, code: "unsupported_media_type"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var raw []byte
			switch b := c.body.(type) {
			case string:
				raw = []byte(b)
			case []byte:
				raw = b
			default:
				raw = rawJSON(t, b)
			}
			r := in.Do(t, http.MethodPost, "/api/emails", raw, c.headers...)
			checkRefusal(t, r, c)
		})
	}

	// Control characters in the Idempotency-Key header cannot be sent with
	// net/http's client; net/http's server refuses them before any handler runs,
	// with its own plain-text 400.
	for _, c := range []struct{ name, line string }{
		{"an Idempotency-Key with NUL", "Idempotency-Key: key\x00Bcc: evil@evil.example"},
		{"an Idempotency-Key with a bare CR", "Idempotency-Key: key\rBcc: evil@evil.example"},
		{"an Idempotency-Key with DEL", "Idempotency-Key: key\x7f"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if status := rawPost(t, in.URL, valid, c.line); status != http.StatusBadRequest {
				t.Fatalf("status %d, want 400", status)
			}
		})
	}

	// Nothing refused was stored.
	if r := in.Do(t, http.MethodGet, "/api/emails?limit=100", nil); r.Status != http.StatusOK || !bytes.Contains(r.Body, []byte(`"items":[]`)) {
		t.Fatalf("after the refused requests GET /api/emails = %d %s, want no email", r.Status, r.Body)
	}

	// Hostile but valid: accepted, and delivered exactly as asked.
	accepted := []wanted{
		{name: "a subject that looks like an encoded word decoding to CR LF and a Bcc header",
			body: hostileBody(map[string]any{"subject": "=?utf-8?q?a=0D=0ABcc:_evil@evil.example?="}),
			to:   []string{"a@example.com"}, subject: "=?utf-8?q?a=0D=0ABcc:_evil@evil.example?="},
		{name: "display names holding header text and an address",
			body: hostileBody(map[string]any{
				"from":     `"Bcc: evil@evil.example" <team@example.com>`,
				"to":       []string{`"Evil, <evil@evil.example>" <a@example.com>`},
				"reply_to": `"To: evil@evil.example" <help@example.com>`,
			}),
			to: []string{"a@example.com"}, subject: "Hello", fromName: "Bcc: evil@evil.example"},
		{name: "a comment naming another recipient, which is only a display name",
			body: hostileBody(map[string]any{"to": []string{"a@example.com (evil@evil.example)"}}),
			to:   []string{"a@example.com"}, subject: "Hello"},
		{name: "a body with a lone dot line and SMTP commands after it",
			body: hostileBody(map[string]any{"to": []string{"b@example.com"}, "bcc": []string{"hidden@example.com"},
				"text": "first\r\n.\r\nRCPT TO:<evil@evil.example>\r\nDATA\r\n.\r\n"}),
			to: []string{"b@example.com", "hidden@example.com"}, subject: "Hello"},
		{name: "metadata and an Idempotency-Key that read like headers",
			body:    hostileBody(map[string]any{"metadata": map[string]string{"note": "Bcc: evil@evil.example"}}),
			headers: []string{"Idempotency-Key", `key: Bcc \r\n evil@evil.example`},
			to:      []string{"a@example.com"}, subject: "Hello"},
	}
	// The good email after all of it.
	accepted = append(accepted, wanted{name: "a plain good email",
		body: map[string]any{"from": "김철수 <kim@example.com>", "to": []string{"홍길동 <hong@example.com>"},
			"cc": []string{"cc@example.com"}, "bcc": []string{"bcc@example.com"}, "reply_to": "help@example.com",
			"subject": "안녕하세요", "text": "안녕하세요, 세계!", "tags": []string{"welcome"}, "metadata": map[string]string{"user_id": "42"}},
		to: []string{"hong@example.com", "cc@example.com", "bcc@example.com"}, subject: "안녕하세요", fromName: "김철수"})

	allowed := map[string]bool{"team@example.com": true, "kim@example.com": true}
	for i := range accepted {
		w := &accepted[i]
		r := in.Do(t, http.MethodPost, "/api/emails", w.body, w.headers...)
		if r.Status != http.StatusAccepted {
			t.Fatalf("%s: status %d %s, want 202", w.name, r.Status, r.Body)
		}
		var a e2e.Accepted
		r.JSON(t, &a)
		w.id = a.ID
		for _, rc := range w.to {
			allowed[rc] = true
		}
	}
	for _, w := range accepted {
		in.WaitForStatus(t, w.id, "sent", 30*time.Second)
	}
	byID := map[string]smtptest.Message{}
	for _, m := range srv.Messages() {
		checkNothingInjected(t, m, allowed)
		msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
		if err != nil {
			t.Fatalf("received message does not parse: %v\n%s", err, m.Data)
		}
		id := msg.Header.Get("X-Mailroom-Email-Id")
		if _, dup := byID[id]; dup {
			t.Errorf("email %s arrived twice", id)
		}
		byID[id] = m
	}
	for _, w := range accepted {
		m, ok := byID[w.id]
		if !ok {
			t.Fatalf("%s: email %s is sent but the SMTP server has no message for it", w.name, w.id)
		}
		msg, _ := mail.ReadMessage(bytes.NewReader(m.Data))
		if got, want := slices.Sorted(slices.Values(m.To)), slices.Sorted(slices.Values(w.to)); !slices.Equal(got, want) {
			t.Errorf("%s: envelope recipients %q, want %q", w.name, got, want)
		}
		subject, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
		if err != nil || subject != w.subject {
			t.Errorf("%s: subject arrived as %q (%v), want %q", w.name, subject, err, w.subject)
		}
		if w.fromName != "" {
			from, err := mail.ParseAddress(msg.Header.Get("From"))
			if err != nil || from.Name != w.fromName {
				t.Errorf("%s: From %q (%v), want the display name %q", w.name, msg.Header.Get("From"), err, w.fromName)
			}
		}
	}
	if len(byID) != len(accepted) {
		t.Errorf("the SMTP server received %d emails, want the %d accepted", len(byID), len(accepted))
	}
	for _, a := range evil {
		if n := srv.Attempts(a); n != 0 {
			t.Errorf("the SMTP server saw %d RCPT TO for %s", n, a)
		}
	}
}

// wanted is an accepted hostile email and what must arrive.
type wanted struct {
	name     string
	body     map[string]any
	headers  []string
	to       []string // every envelope recipient, bare
	subject  string   // as decoded by a reader
	fromName string   // if set, the From display name as decoded
	id       string
}

// checkRefusal asserts the exact status, code and field of a refusal, in the
// contract's error shape and nothing else.
func checkRefusal(t *testing.T, r apptest.Response, c hostileCase) {
	t.Helper()
	status, code := c.status, c.code
	if status == 0 {
		status = http.StatusBadRequest
	}
	if code == "" {
		code = "invalid_field"
	}
	if r.Status != status {
		t.Fatalf("status %d, want %d; body %.300s", r.Status, status, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q, want JSON", ct)
	}
	var b struct {
		Error struct {
			Code    string  `json:"code"`
			Message string  `json:"message"`
			Field   *string `json:"field"`
		} `json:"error"`
	}
	dec := json.NewDecoder(bytes.NewReader(r.Body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil || b.Error.Message == "" {
		t.Fatalf("error body %.300s is not the contract's shape (%v)", r.Body, err)
	}
	field := ""
	if b.Error.Field != nil {
		field = *b.Error.Field
	}
	if b.Error.Code != code || field != c.field {
		t.Fatalf("error %.300s, want code %s and field %q", r.Body, code, c.field)
	}
	if c.field != "" && !strings.HasPrefix(b.Error.Message, c.field+": ") {
		t.Errorf("message %q does not start with its field", b.Error.Message)
	}
	if strings.ContainsAny(b.Error.Message, "\r\n\x00") {
		t.Errorf("message %q carries a control character back", b.Error.Message)
	}
}

// rawPost sends POST /api/emails with a JSON body and one raw extra header line,
// written byte for byte (net/http's client would refuse it), and returns the status.
// It is not held to the OpenAPI document (apispec.Transport): no document can
// describe a header net/http's server refuses before any route runs, with its own
// plain-text 400.
func rawPost(t *testing.T, baseURL, body, headerLine string) int {
	t.Helper()
	u, err := url.Parse(baseURL)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	req, err := http.NewRequest(http.MethodPost, baseURL+"/api/emails", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	e2e.Authorize(req)
	var head bytes.Buffer
	if err := req.Write(&head); err != nil {
		t.Fatal(err)
	}
	// Put the raw line just before the blank line that ends the header.
	raw := head.Bytes()
	end := bytes.Index(raw, []byte("\r\n\r\n"))
	msg := slices.Concat(raw[:end+2], []byte(headerLine+"\r\n"), raw[end+2:])
	if _, err := conn.Write(msg); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read the answer: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// allowedHeaders are the only header names a delivered message may carry, as
// net/textproto canonicalises them.
var allowedHeaders = map[string]bool{
	"From": true, "To": true, "Cc": true, "Reply-To": true, "Subject": true, "Date": true, "Message-Id": true,
	"Mime-Version": true, "Content-Type": true, "Content-Transfer-Encoding": true, "X-Mailroom-Email-Id": true,
}

// checkNothingInjected asserts that a received message has only allowed envelope
// addresses and header names, each header once, and CRLF line ends only.
func checkNothingInjected(t *testing.T, m smtptest.Message, allowed map[string]bool) {
	t.Helper()
	for _, a := range append([]string{m.From}, m.To...) {
		if !allowed[strings.ToLower(a)] {
			t.Errorf("the SMTP server saw the envelope address %q, which no accepted email asked for", a)
		}
	}
	head, _, _ := bytes.Cut(m.Data, []byte("\r\n\r\n"))
	if bytes.Contains(bytes.ReplaceAll(head, []byte("\r\n"), nil), []byte("\n")) ||
		bytes.Contains(bytes.ReplaceAll(head, []byte("\r\n"), nil), []byte("\r")) || bytes.IndexByte(head, 0) >= 0 {
		t.Errorf("a bare CR, LF or NUL in the header:\n%q", head)
	}
	msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
	if err != nil {
		t.Errorf("received message does not parse: %v", err)
		return
	}
	for name, values := range msg.Header {
		if !allowedHeaders[name] || len(values) != 1 {
			t.Errorf("received header %s %d times (%q): not asked for", name, len(values), values)
		}
	}
}
