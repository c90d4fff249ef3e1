package emails_test

// Module-level tests of the emails API: the whole app on the Go-channel broker with a
// real SQLite file and the capture transport, driven over HTTP.

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/mail"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailroom/mailroom/app/apptest"
)

const wait = 20 * time.Second

// maxBody is http.max_body_bytes in these tests.
const maxBody = 8 << 10

func start(t *testing.T) *apptest.Instance {
	t.Helper()
	cfg := apptest.Config(t)
	cfg.HTTP.MaxBodyBytes = maxBody
	return apptest.Start(t, cfg)
}

// errorBody is the contract's error shape; Raw keeps the inside to check that
// nothing else is in it.
type errorBody struct {
	Error struct {
		Code    string  `json:"code"`
		Message string  `json:"message"`
		Field   *string `json:"field"`
	} `json:"error"`
}

func decodeError(t *testing.T, r apptest.Response) errorBody {
	t.Helper()
	var b errorBody
	dec := json.NewDecoder(bytes.NewReader(r.Body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		t.Fatalf("error body %s is not the contract's shape: %v", r.Body, err)
	}
	if b.Error.Code == "" || b.Error.Message == "" {
		t.Fatalf("error body %s lacks a code or a message", r.Body)
	}
	return b
}

func field(b errorBody) string {
	if b.Error.Field == nil {
		return ""
	}
	return *b.Error.Field
}

// body returns a valid request body with change applied; a nil value deletes the key.
func body(change map[string]any) map[string]any {
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

func addresses(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("r%d@example.com", i)
	}
	return out
}

// hostileQuotedName is a display name whose quoted encoded word decodes to CR LF and
// a Bcc header: net/mail leaves encoded words inside quotes alone, mail readers do not.
const hostileQuotedName = `"=?utf-8?q?=0D=0ABcc:_x@y?=" <a@x.com>`

func TestBadRequestsAreRefusedNamingTheField(t *testing.T) {
	in := start(t)
	valid := `{"to": ["a@example.com"], "subject": "Hello", "text": "hi"}`
	tests := []struct {
		name   string
		body   any    // a map is encoded; a string is sent as is
		status int    // 400 unless set
		code   string // invalid_field unless set
		field  string
	}{
		{name: "a to address that is not an address", body: body(map[string]any{"to": []string{"not-an-address"}}), field: "to[0]"},
		{name: "a quoted local part smuggling an SMTP parameter",
			body: body(map[string]any{"to": []string{`"a@x> ORCPT=b@y"@z`}}), field: "to[0]"},
		{name: "a quoted local part smuggling an SMTP parameter, with a dotted domain",
			body: body(map[string]any{"to": []string{"ok@example.com", `"a@x> ORCPT=b@y"@z.example`}}), field: "to[1]"},
		{name: "a bad cc address", body: body(map[string]any{"cc": []string{"ok@example.com", "bad@"}}), field: "cc[1]"},
		{name: "a bad bcc address", body: body(map[string]any{"bcc": []string{"<>"}}), field: "bcc[0]"},
		{name: "no to at all", body: body(map[string]any{"to": nil}), field: "to"},
		{name: "an empty to", body: body(map[string]any{"to": []string{}}), field: "to"},
		{name: "51 recipients across to, cc and bcc",
			body: body(map[string]any{"to": addresses(30), "cc": addresses(20), "bcc": addresses(1)}), field: "to"},
		{name: "CR LF in the subject", body: body(map[string]any{"subject": "Hi\r\nBcc: evil@example.com"}), field: "subject"},
		{name: "LF in from", body: body(map[string]any{"from": "Team <team@example.com>\nBcc: evil@example.com"}), field: "from"},
		{name: "CR in reply_to", body: body(map[string]any{"reply_to": "help@example.com\rBcc: evil@example.com"}), field: "reply_to"},
		{name: "CR LF in a metadata value",
			body: body(map[string]any{"metadata": map[string]string{"user_id": "42\r\nBcc: evil@example.com"}}), field: "metadata.user_id"},
		{name: "a missing subject", body: body(map[string]any{"subject": nil}), field: "subject"},
		{name: "an escape character in the subject", body: body(map[string]any{"subject": "Hi \x1b[31mred"}), field: "subject"},
		{name: "a C0 control character in the subject", body: body(map[string]any{"subject": "Hi\x01"}), field: "subject"},
		{name: "DEL in the subject", body: body(map[string]any{"subject": "Hi\x7f"}), field: "subject"},
		{name: "a C1 NEXT LINE in the subject", body: body(map[string]any{"subject": "Hi\u0085there"}), field: "subject"},
		{name: "a LINE SEPARATOR in the subject", body: body(map[string]any{"subject": "Hi\u2028there"}), field: "subject"},
		{name: "a PARAGRAPH SEPARATOR in the subject", body: body(map[string]any{"subject": "Hi\u2029there"}), field: "subject"},
		{name: "a LINE SEPARATOR in a display name", body: body(map[string]any{"from": "Team\u2028Bcc <team@example.com>"}), field: "from"},
		{name: "a LINE SEPARATOR in an encoded display name", body: body(map[string]any{"to": []string{"=?utf-8?q?a=E2=80=A8b?= <a@example.com>"}}), field: "to[0]"},
		{name: "a RIGHT-TO-LEFT OVERRIDE in the subject", body: body(map[string]any{"subject": "invoice \u202egnp.exe"}), field: "subject"},
		{name: "a LEFT-TO-RIGHT ISOLATE in the subject", body: body(map[string]any{"subject": "Hi \u2066there"}), field: "subject"},
		{name: "a ZERO WIDTH SPACE in the subject", body: body(map[string]any{"subject": "pay\u200bpal"}), field: "subject"},
		{name: "a RIGHT-TO-LEFT MARK in the from name", body: body(map[string]any{"from": "Team\u200f <team@example.com>"}), field: "from"},
		{name: "a ZERO WIDTH JOINER in a to name", body: body(map[string]any{"to": []string{"a@example.com", "B\u200d <b@example.com>"}}), field: "to[1]"},
		{name: "an ARABIC LETTER MARK in a cc name", body: body(map[string]any{"cc": []string{"C\u061c <c@example.com>"}}), field: "cc[0]"},
		{name: "a WORD JOINER in a bcc name", body: body(map[string]any{"bcc": []string{"D\u2060 <d@example.com>"}}), field: "bcc[0]"},
		{name: "a byte order mark in a reply_to name", body: body(map[string]any{"reply_to": "\ufeffHelp <help@example.com>"}), field: "reply_to"},
		{name: "a RIGHT-TO-LEFT OVERRIDE in an encoded word inside a quoted from name",
			body: body(map[string]any{"from": `"=?utf-8?q?Team_=E2=80=AEgnp.exe?=" <team@example.com>`}), field: "from"},
		{name: "a ZERO WIDTH SPACE in a tag", body: body(map[string]any{"tags": []string{"ok", "wel\u200bcome"}}), field: "tags[1]"},
		{name: "an encoded word inside a quoted from name that decodes to CR LF and a Bcc header",
			body: body(map[string]any{"from": hostileQuotedName}), field: "from"},
		{name: "an encoded word inside a quoted to name that decodes to CR LF",
			body: body(map[string]any{"to": []string{"a@example.com", hostileQuotedName}}), field: "to[1]"},
		{name: "an encoded word inside a quoted cc name that decodes to CR LF",
			body: body(map[string]any{"cc": []string{hostileQuotedName}}), field: "cc[0]"},
		{name: "an encoded word inside a quoted bcc name that decodes to CR LF",
			body: body(map[string]any{"bcc": []string{hostileQuotedName}}), field: "bcc[0]"},
		{name: "an encoded word inside a quoted reply_to name that decodes to CR LF",
			body: body(map[string]any{"reply_to": hostileQuotedName}), field: "reply_to"},
		{name: "an encoded word inside a quoted name that decodes to NUL",
			body: body(map[string]any{"to": []string{`"=?utf-8?b?YQBi?=" <a@example.com>`}}), field: "to[0]"},
		{name: "an encoded word inside a quoted name that decodes to another encoded word",
			body: body(map[string]any{"from": `"=?utf-8?q?=3D=3Futf-8=3Fq=3F=3D0D=3D0A=3F=3D?=" <a@example.com>`}), field: "from"},
		{name: "an encoded word in a charset that is not decoded",
			body: body(map[string]any{"from": `"=?koi8-r?q?=F0=D2=C9?=" <a@example.com>`}), field: "from"},
		{name: "a number in the to list names the element", body: `{"to": [1], "subject": "s", "text": "t"}`, field: "to[0]"},
		{name: "a null in the to list names the element", body: `{"to": ["a@example.com", null], "subject": "s", "text": "t"}`, field: "to[1]"},
		{name: "a number as a metadata value names the key", body: body(map[string]any{"metadata": map[string]any{"a": 1}}), field: "metadata.a"},
		{name: "a null metadata value is refused, not stored as empty",
			body: `{"to": ["a@example.com"], "subject": "s", "text": "t", "metadata": {"a": null}}`, field: "metadata.a"},
		{name: "a blank subject", body: body(map[string]any{"subject": "   "}), field: "subject"},
		{name: "neither text nor html", body: body(map[string]any{"text": nil}), field: "text"},
		{name: "a send_at that is not RFC 3339", body: body(map[string]any{"send_at": "tomorrow"}), field: "send_at"},
		{name: "a tag with a space", body: body(map[string]any{"tags": []string{"ok", "not ok"}}), field: "tags[1]"},
		{name: "an unknown JSON field", body: body(map[string]any{"bogus": 1}), field: "bogus"},
		{name: "a duplicate key", body: `{"to": ["a@example.com"], "subject": "a", "subject": "b", "text": "hi"}`, field: "subject"},
		{name: "a string where a list belongs", body: body(map[string]any{"to": "a@example.com"}), field: "to"},
		{name: "a number where a string belongs", body: body(map[string]any{"subject": 5}), field: "subject"},
		{name: "trailing garbage after the object", body: valid + ` x`, code: "invalid_json"},
		{name: "a second object after the first", body: valid + `{}`, code: "invalid_json"},
		{name: "invalid UTF-8", body: "{\"to\": [\"a@example.com\"], \"subject\": \"\xff\xfe\", \"text\": \"hi\"}", code: "invalid_json"},
		{name: "an array instead of an object", body: `[` + valid + `]`, code: "invalid_json"},
		{name: "truncated JSON", body: valid[:20], code: "invalid_json"},
		{name: "an empty body", body: ``, code: "invalid_json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var raw []byte
			switch b := tt.body.(type) {
			case string:
				raw = []byte(b)
			default:
				var err error
				if raw, err = json.Marshal(b); err != nil {
					t.Fatal(err)
				}
			}
			r := in.Do(t, http.MethodPost, "/api/emails", raw)
			status, code := tt.status, tt.code
			if status == 0 {
				status = http.StatusBadRequest
			}
			if code == "" {
				code = "invalid_field"
			}
			if r.Status != status {
				t.Fatalf("status %d, want %d; body %s", r.Status, status, r.Body)
			}
			b := decodeError(t, r)
			if b.Error.Code != code || field(b) != tt.field {
				t.Fatalf("error %s, want code %s, field %q", r.Body, code, tt.field)
			}
			if tt.field != "" && !strings.HasPrefix(b.Error.Message, tt.field+": ") {
				t.Errorf("message %q does not start with the field", b.Error.Message)
			}
		})
	}
	if r := in.Do(t, http.MethodGet, "/api/emails?limit=100", nil); !bytes.Contains(r.Body, []byte(`"items":[]`)) {
		t.Errorf("a refused request stored an email: %s", r.Body)
	}
}

func TestTheTransportOfTheBodyIsChecked(t *testing.T) {
	in := start(t)
	valid, _ := json.Marshal(body(nil))
	big, _ := json.Marshal(body(map[string]any{"text": strings.Repeat("x", maxBody)}))
	tests := []struct {
		name    string
		headers []string
		body    io.Reader
		status  int
		code    string
	}{
		{"text/plain is not JSON", []string{"Content-Type", "text/plain"}, bytes.NewReader(valid), http.StatusUnsupportedMediaType, "unsupported_media_type"},
		{"a form is not JSON", []string{"Content-Type", "application/x-www-form-urlencoded"}, bytes.NewReader(valid), http.StatusUnsupportedMediaType, "unsupported_media_type"},
		{"no content type is not JSON", nil, bytes.NewReader(valid), http.StatusUnsupportedMediaType, "unsupported_media_type"},
		{"a charset other than UTF-8 is refused", []string{"Content-Type", "application/json; charset=latin1"}, bytes.NewReader(valid), http.StatusUnsupportedMediaType, "unsupported_media_type"},
		{"a gzipped body is refused as such", []string{"Content-Type", "application/json", "Content-Encoding", "gzip"}, gzipped(t, valid), http.StatusUnsupportedMediaType, "unsupported_media_type"},
		{"an identity body is fine", []string{"Content-Type", "application/json", "Content-Encoding", "identity"}, bytes.NewReader(valid), http.StatusAccepted, ""},
		{"JSON with charset utf-8 is fine", []string{"Content-Type", "application/json; charset=UTF-8"}, bytes.NewReader(valid), http.StatusAccepted, ""},
		{"a body over http.max_body_bytes with its length", []string{"Content-Type", "application/json"}, bytes.NewReader(big), http.StatusRequestEntityTooLarge, "body_too_large"},
		// io.MultiReader hides the length: the body is sent chunked.
		{"a chunked body over http.max_body_bytes", []string{"Content-Type", "application/json"}, io.MultiReader(bytes.NewReader(big)), http.StatusRequestEntityTooLarge, "body_too_large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, in.URL+"/api/emails", tt.body)
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i+1 < len(tt.headers); i += 2 {
				req.Header.Set(tt.headers[i], tt.headers[i+1])
			}
			r := send(t, req)
			if r.Status != tt.status {
				t.Fatalf("status %d, want %d; body %s", r.Status, tt.status, r.Body)
			}
			if tt.code == "" {
				return
			}
			b := decodeError(t, r)
			if b.Error.Code != tt.code {
				t.Fatalf("error %s, want code %s", r.Body, tt.code)
			}
			if ce := req.Header.Get("Content-Encoding"); ce != "" && (field(b) != "Content-Encoding" || !strings.Contains(b.Error.Message, ce)) {
				t.Errorf("error %s, want it to name Content-Encoding %s", r.Body, ce)
			}
		})
	}
}

// gzipped returns b compressed with gzip.
func gzipped(t *testing.T, b []byte) io.Reader {
	t.Helper()
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return &buf
}

func send(t *testing.T, req *http.Request) apptest.Response {
	t.Helper()
	req.Header.Set("Authorization", "Bearer "+apptest.AdminKey)
	resp, err := apptest.Client(t).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return apptest.Response{Status: resp.StatusCode, Header: resp.Header, Body: raw}
}

type accepted struct {
	ID     string `json:"id"`
	Status string `json:"status"`
}

func TestAcceptedEmailsAreAnsweredWithWhereToFindThem(t *testing.T) {
	in := start(t)
	tests := []struct {
		name   string
		change map[string]any
		status string
	}{
		{"an email to send now is queued", nil, "queued"},
		{"an email with send_at in the future is scheduled",
			map[string]any{"send_at": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}, "scheduled"},
		{"an email with send_at in the past is queued",
			map[string]any{"send_at": time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)}, "queued"},
		{"an email with send_at written with a lowercase t and z (RFC 3339 section 5.6) is scheduled",
			map[string]any{"send_at": strings.ToLower(time.Now().Add(time.Hour).UTC().Format(time.RFC3339))}, "scheduled"},
		{"an email with send_at in another zone, lowercase t, is scheduled",
			map[string]any{"send_at": strings.ToLower(time.Now().Add(time.Hour).In(time.FixedZone("", 9*3600)).Format(time.RFC3339))}, "scheduled"},
		{"an email without from takes smtp.from", map[string]any{"from": nil}, "queued"},
		{"an email to a one-label domain is accepted", map[string]any{"to": []string{"root@localhost"}}, "queued"},
		{"an email with a tab in its subject is accepted", map[string]any{"subject": "Hello\tthere"}, "queued"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := in.Do(t, http.MethodPost, "/api/emails", body(tt.change))
			if r.Status != http.StatusAccepted {
				t.Fatalf("status %d, want 202; body %s", r.Status, r.Body)
			}
			var a accepted
			r.JSON(t, &a)
			if a.ID == "" || a.Status != tt.status {
				t.Fatalf("answer %s, want an id and status %s", r.Body, tt.status)
			}
			if loc := r.Header.Get("Location"); loc != "/api/emails/"+a.ID {
				t.Errorf("Location %q, want /api/emails/%s", loc, a.ID)
			}
			if e := in.Get(t, a.ID); e.ID != a.ID || len(e.Events) == 0 || e.Events[0].Type != "accepted" {
				t.Errorf("GET %s: %+v, want the email with an accepted event first", a.ID, e)
			}
		})
	}
}

func TestAnUnknownEmailIsNotFound(t *testing.T) {
	in := start(t)
	for _, path := range []string{
		"/api/emails/0190c2a4-0000-7000-8000-000000000000",
		"/api/emails/not-an-id",
		"/api/emails/0190c2a4-0000-7000-8000-000000000000/raw",
	} {
		r := in.Do(t, http.MethodGet, path, nil)
		if r.Status != http.StatusNotFound {
			t.Fatalf("GET %s: %d %s, want 404", path, r.Status, r.Body)
		}
		if b := decodeError(t, r); b.Error.Code != "not_found" || field(b) != "" {
			t.Errorf("GET %s: %s, want code not_found and no field", path, r.Body)
		}
	}
	t.Run("a long id is echoed cut", func(t *testing.T) {
		long := strings.Repeat("a", 5000)
		for _, path := range []string{"/api/emails/" + long, "/api/emails/" + long + "/raw"} {
			r := in.Do(t, http.MethodGet, path, nil)
			if r.Status != http.StatusNotFound {
				t.Fatalf("GET %.40s…: %d, want 404", path, r.Status)
			}
			msg := decodeError(t, r).Error.Message
			if !strings.Contains(msg, `"`+strings.Repeat("a", 64)+`…"`) || strings.Contains(msg, strings.Repeat("a", 65)) {
				t.Errorf("GET %.40s…: message of %d bytes %.100q…, want the id's first 64 characters and …", path, len(msg), msg)
			}
		}
	})
}

func TestIdempotencyKey(t *testing.T) {
	in := start(t)
	post := func(t *testing.T, b any, key string) (apptest.Response, accepted) {
		t.Helper()
		r := in.Do(t, http.MethodPost, "/api/emails", b, "Idempotency-Key", key)
		var a accepted
		if r.Status == http.StatusAccepted {
			r.JSON(t, &a)
		}
		return r, a
	}

	t.Run("the same key with the same body answers the first id again", func(t *testing.T) {
		b := body(map[string]any{"subject": "same"})
		r1, a1 := post(t, b, "key-same")
		r2, a2 := post(t, b, "key-same")
		if r1.Status != http.StatusAccepted || r2.Status != http.StatusAccepted || a1.ID == "" || a1.ID != a2.ID {
			t.Fatalf("answers %d %s and %d %s, want 202 twice with one id", r1.Status, r1.Body, r2.Status, r2.Body)
		}
		if n := countSubject(t, in, "same"); n != 1 {
			t.Fatalf("%d emails stored, want 1", n)
		}
	})

	t.Run("the same key with the same email written differently answers the first id again", func(t *testing.T) {
		_, a1 := post(t, `{"to": ["a@example.com"], "subject": "respaced", "text": "hi"}`, "key-respaced")
		r2, a2 := post(t, "{\n  \"text\": \"hi\",\n  \"subject\": \"respaced\",\n  \"to\": [\"a@example.com\"]\n}", "key-respaced")
		if a1.ID == "" || a1.ID != a2.ID {
			t.Fatalf("second answer %d %s, want the id %s", r2.Status, r2.Body, a1.ID)
		}
	})

	t.Run("the same key with the same email in other words answers the first id again", func(t *testing.T) {
		later := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
		pairs := []struct{ name, first, again string }{
			{"an empty cc and none",
				`{"to": ["a@example.com"], "subject": "cc", "text": "hi", "cc": []}`,
				`{"to": ["a@example.com"], "subject": "cc", "text": "hi"}`},
			{"empty tags, bcc and metadata and none",
				`{"to": ["a@example.com"], "subject": "empties", "text": "hi"}`,
				`{"to": ["a@example.com"], "subject": "empties", "text": "hi", "tags": [], "bcc": [], "metadata": {}}`},
			{"one send_at instant in two zones",
				`{"to": ["a@example.com"], "subject": "zones", "text": "hi", "send_at": "` + later.Format(time.RFC3339) + `"}`,
				`{"to": ["a@example.com"], "subject": "zones", "text": "hi", "send_at": "` + later.In(time.FixedZone("", 9*3600)).Format(time.RFC3339) + `"}`},
		}
		for i, p := range pairs {
			key := fmt.Sprintf("key-normalized-%d", i)
			r1, a1 := post(t, p.first, key)
			r2, a2 := post(t, p.again, key)
			if a1.ID == "" || a1.ID != a2.ID {
				t.Errorf("%s: answers %d %s and %d %s, want 202 twice with one id", p.name, r1.Status, r1.Body, r2.Status, r2.Body)
			}
		}
	})

	t.Run("the same key with a different body is a conflict", func(t *testing.T) {
		_, a1 := post(t, body(map[string]any{"subject": "first"}), "key-conflict")
		r, _ := post(t, body(map[string]any{"subject": "second"}), "key-conflict")
		if r.Status != http.StatusConflict {
			t.Fatalf("status %d %s, want 409", r.Status, r.Body)
		}
		if b := decodeError(t, r); b.Error.Code != "conflict" {
			t.Errorf("error %s, want code conflict", r.Body)
		}
		if a1.ID == "" || countSubject(t, in, "second") != 0 {
			t.Errorf("the conflicting request stored an email")
		}
	})

	t.Run("two concurrent requests with one key store one email", func(t *testing.T) {
		const n = 8
		raw, _ := json.Marshal(body(map[string]any{"subject": "concurrent"}))
		type answer struct {
			status int
			body   []byte
			err    error
		}
		answers := make([]answer, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		client := apptest.Client(t)
		for i := range n {
			wg.Go(func() {
				<-start
				req, _ := http.NewRequest(http.MethodPost, in.URL+"/api/emails", bytes.NewReader(raw))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Idempotency-Key", "key-concurrent")
				req.Header.Set("Authorization", "Bearer "+apptest.AdminKey)
				resp, err := client.Do(req)
				if err != nil {
					answers[i].err = err
					return
				}
				defer resp.Body.Close()
				answers[i].status = resp.StatusCode
				answers[i].body, answers[i].err = io.ReadAll(resp.Body)
			})
		}
		close(start)
		wg.Wait()
		ids := map[string]bool{}
		for i, a := range answers {
			if a.err != nil || a.status != http.StatusAccepted {
				t.Fatalf("request %d: %d %s %v, want 202", i, a.status, a.body, a.err)
			}
			var acc accepted
			if err := json.Unmarshal(a.body, &acc); err != nil {
				t.Fatal(err)
			}
			ids[acc.ID] = true
		}
		if len(ids) != 1 {
			t.Fatalf("%d different ids for one key: %v", len(ids), ids)
		}
		if c := countSubject(t, in, "concurrent"); c != 1 {
			t.Fatalf("%d emails stored, want 1", c)
		}
	})

	bad := []struct {
		name string
		keys []string
	}{
		{"a key with a tab is refused", []string{"key\twith-tab"}},
		{"a key longer than 255 characters is refused", []string{strings.Repeat("k", 256)}},
		{"a key with non-ASCII is refused", []string{"clé"}},
		{"a key given twice is refused", []string{"key-twice-1", "key-twice-2"}},
		{"the same key given twice is refused", []string{"key-twice", "key-twice"}},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, in.URL+"/api/emails", strings.NewReader(`{"to": ["a@example.com"], "subject": "k", "text": "hi"}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header["Idempotency-Key"] = tt.keys
			r := send(t, req)
			if r.Status != http.StatusBadRequest {
				t.Fatalf("status %d %s, want 400", r.Status, r.Body)
			}
			if b := decodeError(t, r); field(b) != "Idempotency-Key" {
				t.Errorf("error %s, want field Idempotency-Key", r.Body)
			}
			if countSubject(t, in, "k") != 0 {
				t.Errorf("the refused request stored an email")
			}
		})
	}
}

// listPage is GET /api/emails.
type listPage struct {
	Items []struct {
		ID      string   `json:"id"`
		Status  string   `json:"status"`
		Subject string   `json:"subject"`
		Tags    []string `json:"tags"`
	} `json:"items"`
	NextCursor string `json:"next_cursor"`
}

func listEmails(t *testing.T, in *apptest.Instance, q url.Values) listPage {
	t.Helper()
	r := in.Do(t, http.MethodGet, "/api/emails?"+q.Encode(), nil)
	if r.Status != http.StatusOK {
		t.Fatalf("GET /api/emails?%s: %d %s", q.Encode(), r.Status, r.Body)
	}
	var p listPage
	r.JSON(t, &p)
	return p
}

func countSubject(t *testing.T, in *apptest.Instance, subject string) int {
	t.Helper()
	n := 0
	for _, e := range listEmails(t, in, url.Values{"limit": {"100"}}).Items {
		if e.Subject == subject {
			n++
		}
	}
	return n
}

func TestListFilters(t *testing.T) {
	in := start(t)
	later := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	type spec struct {
		tags      []string
		scheduled bool
	}
	specs := []spec{
		{tags: []string{"welcome"}},
		{tags: []string{"welcome", "vip"}},
		{tags: []string{"receipt"}},
		{tags: []string{"welcome"}, scheduled: true},
		{},
		{tags: []string{"receipt"}, scheduled: true},
	}
	ids := make([]string, len(specs)) // in the order sent
	for i, s := range specs {
		change := map[string]any{"subject": fmt.Sprintf("email %d", i)}
		if s.tags != nil {
			change["tags"] = s.tags
		}
		if s.scheduled {
			change["send_at"] = later
		}
		ids[i] = in.Send(t, body(change))
	}
	for i, s := range specs {
		if !s.scheduled {
			in.WaitForStatus(t, ids[i], "sent", wait)
		}
	}
	// newest first: the reverse of the order sent
	pick := func(idx ...int) []string {
		var out []string
		for i := len(ids) - 1; i >= 0; i-- {
			if slices.Contains(idx, i) {
				out = append(out, ids[i])
			}
		}
		return out
	}

	tests := []struct {
		name  string
		query url.Values
		want  []string
	}{
		{"no filter lists every email, newest first", nil, pick(0, 1, 2, 3, 4, 5)},
		{"a tag selects the emails carrying it", url.Values{"tag": {"welcome"}}, pick(0, 1, 3)},
		{"a status selects the emails in it", url.Values{"status": {"scheduled"}}, pick(3, 5)},
		{"tag and status combine", url.Values{"tag": {"welcome"}, "status": {"sent"}}, pick(0, 1)},
		{"a tag nobody carries lists nothing", url.Values{"tag": {"nobody"}}, nil},
		{"a status nobody is in lists nothing", url.Values{"status": {"dead"}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := listEmails(t, in, tt.query)
			var got []string
			for _, e := range p.Items {
				got = append(got, e.ID)
			}
			if !slices.Equal(got, tt.want) || p.NextCursor != "" {
				t.Fatalf("listed %v (next %q), want %v", got, p.NextCursor, tt.want)
			}
		})
	}

	t.Run("an absent or empty limit means the default", func(t *testing.T) {
		for _, q := range []url.Values{nil, {"limit": {""}}, {"limit": {""}, "cursor": {""}}} {
			if got := len(listEmails(t, in, q).Items); got != len(ids) {
				t.Errorf("?%s listed %d emails, want all %d", q.Encode(), got, len(ids))
			}
		}
	})

	t.Run("pages follow next_cursor to the end, newest first", func(t *testing.T) {
		var got []string
		cursor := ""
		for pages := 0; ; pages++ {
			if pages > len(ids) {
				t.Fatalf("cursor %q does not move", cursor)
			}
			q := url.Values{"limit": {"4"}}
			if cursor != "" {
				q.Set("cursor", cursor)
			}
			p := listEmails(t, in, q)
			for _, e := range p.Items {
				got = append(got, e.ID)
			}
			if cursor = p.NextCursor; cursor == "" {
				break
			}
		}
		if want := pick(0, 1, 2, 3, 4, 5); !slices.Equal(got, want) {
			t.Fatalf("paged through %v, want %v", got, want)
		}
	})

	bad := []struct{ name, query, field string }{
		{"an unknown status is refused", "status=lost", "status"},
		{"a limit that is not a number is refused", "limit=ten", "limit"},
		{"a limit over the page size is refused", "limit=101", "limit"},
		{"a negative limit is refused", "limit=-1", "limit"},
		{"a limit of 0 is refused, not taken as the default", "limit=0", "limit"},
		{"a limit of -0 is refused, not taken as the default", "limit=-0", "limit"},
		{"a cursor that is not an email id is refused", "cursor=garbage", "cursor"},
		{"a cursor of zeros is refused", "cursor=00000000", "cursor"},
		{"a cursor that is a UUID but not a v7 is refused", "cursor=0190c2a4-0000-4000-8000-000000000000", "cursor"},
		{"a cursor in upper case is refused", "cursor=" + strings.ToUpper(ids[0]), "cursor"},
		{"a cursor in braces is refused", "cursor={" + ids[0] + "}", "cursor"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			r := in.Do(t, http.MethodGet, "/api/emails?"+url.PathEscape(tt.query), nil)
			if r.Status != http.StatusBadRequest {
				t.Fatalf("status %d %s, want 400", r.Status, r.Body)
			}
			if b := decodeError(t, r); field(b) != tt.field {
				t.Errorf("error %s, want field %s", r.Body, tt.field)
			}
		})
	}
}

func TestTheListRefusesAQueryParameterItDoesNotTakeNamingIt(t *testing.T) {
	in := start(t)
	welcome := in.Send(t, body(map[string]any{"tags": []string{"welcome"}}))
	in.WaitForStatus(t, welcome, "sent", wait)
	other := in.Send(t, body(map[string]any{"subject": "other"}))
	in.WaitForStatus(t, other, "sent", wait)

	bad := []struct{ name, query, field, says string }{
		{"a recipient filter by another name", "to=x", "to",
			"this route takes status, tag, recipient, subject, created_after, created_before, limit, cursor, include_total"},
		{"a free-text search, which the list does not have", "q=hello&status=sent", "q", "unknown query parameter"},
		{"a filter misspelt", "tags=welcome", "tags", "unknown query parameter"},
		{"a status given twice, of which only one would count", "status=sent&status=dead", "status", "given 2 times"},
		{"a tag given twice", "tag=welcome&tag=vip", "tag", "given 2 times"},
	}
	for _, tt := range bad {
		t.Run("refuses "+tt.name, func(t *testing.T) {
			r := in.Do(t, http.MethodGet, "/api/emails?"+tt.query, nil)
			if r.Status != http.StatusBadRequest {
				t.Fatalf("GET /api/emails?%s: %d %s, want 400", tt.query, r.Status, r.Body)
			}
			b := decodeError(t, r)
			if b.Error.Code != "invalid_field" || field(b) != tt.field || !strings.Contains(b.Error.Message, tt.says) {
				t.Errorf("error %s, want invalid_field naming %s and saying %q", r.Body, tt.field, tt.says)
			}
		})
	}

	t.Run("the documented parameters still select", func(t *testing.T) {
		p := listEmails(t, in, url.Values{"status": {"sent"}, "tag": {"welcome"}, "limit": {"10"}, "cursor": {""}})
		if len(p.Items) != 1 || p.Items[0].ID != welcome {
			t.Errorf("listed %+v, want only %s", p.Items, welcome)
		}
		first := listEmails(t, in, url.Values{"limit": {"1"}})
		next := listEmails(t, in, url.Values{"limit": {"1"}, "cursor": {first.NextCursor}})
		if len(first.Items) != 1 || first.Items[0].ID != other || len(next.Items) != 1 || next.Items[0].ID != welcome {
			t.Errorf("pages %+v then %+v, want %s then %s", first.Items, next.Items, other, welcome)
		}
	})
}

func TestAnEncodedWordInsideAQuotedNameIsStoredDecodedAndSentEncoded(t *testing.T) {
	in := start(t)
	id := in.Send(t, body(map[string]any{
		"from":     `"=?utf-8?q?Caf=C3=A9?=" <cafe@example.com>`,
		"to":       []string{`"=?ISO-8859-1?Q?Andr=E9?= Pirard" <andre@example.com>`},
		"reply_to": `=?utf-8?b?7ZWc6rWt?= <help@example.com>`,
	}))
	in.WaitForStatus(t, id, "sent", wait)

	var stored struct {
		From string   `json:"from"`
		To   []string `json:"to"`
	}
	in.Do(t, http.MethodGet, "/api/emails/"+id, nil).JSON(t, &stored)
	if stored.From != `"Café" <cafe@example.com>` || !slices.Equal(stored.To, []string{`"André Pirard" <andre@example.com>`}) {
		t.Errorf("stored from %q, to %q; want the names decoded: Café, André Pirard", stored.From, stored.To)
	}

	r := in.Do(t, http.MethodGet, "/api/emails/"+id+"/raw", nil)
	if r.Status != http.StatusOK {
		t.Fatalf("GET raw: %d %s", r.Status, r.Body)
	}
	msg, err := mail.ReadMessage(bytes.NewReader(r.Body))
	if err != nil {
		t.Fatalf("read the rendered message: %v\n%s", err, r.Body)
	}
	for _, h := range []struct{ header, name, address string }{
		{"From", "Café", "cafe@example.com"},
		{"To", "André Pirard", "andre@example.com"},
		{"Reply-To", "한국", "help@example.com"},
	} {
		raw := msg.Header.Get(h.header)
		if strings.Contains(raw, `"=?`) || !strings.Contains(raw, "=?") {
			t.Errorf("%s: %q, want the name sent as an encoded word, not inside quotes", h.header, raw)
		}
		a, err := mail.ParseAddress(raw)
		if err != nil || a.Name != h.name || a.Address != h.address {
			t.Errorf("%s: %q reads as %v (%v), want %s <%s>", h.header, raw, a, err, h.name, h.address)
		}
	}
}

// An operator reading one email sees what was sent: its text and HTML bodies and
// its Reply-To (bodies exactly as given, "" for a part not given). The list leaves them
// out, so that a page of emails stays small.
func TestAnEmailsDetailShowsItsBodiesAndReplyToButTheListDoesNot(t *testing.T) {
	in := start(t)
	const html = `<p>Hi <b>there</b></p><script>alert(1)</script>`
	both := in.Send(t, body(map[string]any{"html": html, "reply_to": "help@example.com"}))
	textOnly := in.Send(t, body(nil))
	htmlOnly := in.Send(t, body(map[string]any{"text": nil, "html": html}))

	type detail struct {
		ReplyTo *string `json:"reply_to"`
		Text    *string `json:"text"`
		HTML    *string `json:"html"`
	}
	for _, tt := range []struct {
		name, id, replyTo, text, html string
	}{
		{"an email with both bodies and a Reply-To shows them", both, "help@example.com", "plain body", html},
		{"an email with text only shows an empty html and reply_to", textOnly, "", "plain body", ""},
		{"an email with HTML only shows an empty text", htmlOnly, "", "", html},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := in.Do(t, http.MethodGet, "/api/emails/"+tt.id, nil)
			if r.Status != http.StatusOK {
				t.Fatalf("GET: %d %s", r.Status, r.Body)
			}
			var d detail
			r.JSON(t, &d)
			if d.ReplyTo == nil || d.Text == nil || d.HTML == nil {
				t.Fatalf("GET %s: %s lacks reply_to, text or html", tt.id, r.Body)
			}
			if *d.ReplyTo != tt.replyTo || *d.Text != tt.text || *d.HTML != tt.html {
				t.Errorf("reply_to %q, text %q, html %q; want %q, %q, %q", *d.ReplyTo, *d.Text, *d.HTML, tt.replyTo, tt.text, tt.html)
			}
		})
	}

	t.Run("cancel and reschedule answer with the bodies too", func(t *testing.T) {
		later := time.Now().Add(time.Hour).UTC()
		id := in.Send(t, body(map[string]any{"html": html, "send_at": later.Format(time.RFC3339)}))
		for _, call := range []struct {
			method, path string
			body         any
		}{
			{http.MethodPatch, "/api/emails/" + id, map[string]string{"send_at": later.Add(time.Hour).Format(time.RFC3339)}},
			{http.MethodPost, "/api/emails/" + id + "/cancel", nil},
		} {
			r := in.Do(t, call.method, call.path, call.body)
			if r.Status != http.StatusOK {
				t.Fatalf("%s %s: %d %s", call.method, call.path, r.Status, r.Body)
			}
			var d detail
			r.JSON(t, &d)
			if d.HTML == nil || *d.HTML != html || d.Text == nil || *d.Text != "plain body" {
				t.Errorf("%s %s: %s, want the bodies", call.method, call.path, r.Body)
			}
		}
	})

	t.Run("the list shows no bodies", func(t *testing.T) {
		r := in.Do(t, http.MethodGet, "/api/emails", nil)
		var page struct {
			Items []map[string]json.RawMessage `json:"items"`
		}
		r.JSON(t, &page)
		if len(page.Items) == 0 {
			t.Fatalf("the list is empty: %s", r.Body)
		}
		for _, it := range page.Items {
			for _, name := range []string{"text", "html", "reply_to", "bcc"} {
				if _, ok := it[name]; ok {
					t.Errorf("a list item has %q: %s", name, r.Body)
				}
			}
		}
	})
}
