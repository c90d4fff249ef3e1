package httpserver_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mailroom/mailroom/platform/apperr"
	"github.com/mailroom/mailroom/platform/config"
	"github.com/mailroom/mailroom/platform/httpserver"
)

const bodyLimit = 1024

// secretCause is text that only an error's cause holds; it must never reach a client.
const secretCause = "SELECT password FROM users -- /var/lib/mailroom/secret.db"

// syncBuffer is a bytes.Buffer safe for the server's concurrent log writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// newServer builds the server with a few routes that fail in each way, and returns it
// with the buffer its log goes to.
func newServer(tb testing.TB) (*echo.Echo, *syncBuffer) {
	tb.Helper()
	logs := &syncBuffer{}
	e := httpserver.New(httpserver.Config{MaxBodyBytes: bodyLimit}, slog.New(slog.NewTextHandler(logs, nil)), prometheus.NewRegistry())
	e.GET("/ok", func(c echo.Context) error { return c.JSON(http.StatusOK, map[string]string{"status": "ok"}) })
	e.GET("/invalid", func(echo.Context) error { return apperr.Invalid("to[0]", "not an email address") })
	e.GET("/missing", func(echo.Context) error { return apperr.NotFound("email", "e-1") })
	e.GET("/conflict", func(echo.Context) error {
		return &apperr.Error{Code: apperr.CodeConflict, Message: "idempotency key reused", Err: errors.New(secretCause)}
	})
	e.GET("/unavailable", func(echo.Context) error {
		return apperr.Unavailable("database unavailable", errors.New(secretCause))
	})
	e.GET("/plain", func(echo.Context) error { return errors.New(secretCause) })
	e.GET("/wrapped", func(echo.Context) error {
		return errors.Join(errors.New("handler"), apperr.Invalid("subject", "required"))
	})
	e.GET("/panic", func(echo.Context) error { panic(secretCause) })
	e.POST("/echo", func(c echo.Context) error {
		var v struct {
			Subject string `json:"subject"`
		}
		if err := httpserver.DecodeJSON(c, &v); err != nil {
			return err
		}
		return c.JSON(http.StatusOK, v)
	})
	return e, logs
}

// serve sends req to e and returns the recorded answer.
func serve(e *echo.Echo, req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, req)
	return rec
}

// errorBody is the contract's error shape; Field is a pointer to tell absent from empty.
type errorBody struct {
	Error struct {
		Code    string  `json:"code"`
		Message string  `json:"message"`
		Field   *string `json:"field"`
	} `json:"error"`
}

func decodeError(tb testing.TB, rec *httptest.ResponseRecorder) errorBody {
	tb.Helper()
	var body errorBody
	dec := json.NewDecoder(bytes.NewReader(rec.Body.Bytes()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		tb.Fatalf("error body %q is not the contract's shape: %v", rec.Body.String(), err)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(rec.Body.Bytes(), &top); err != nil || len(top) != 1 {
		tb.Fatalf("error body %q must hold exactly the key \"error\"", rec.Body.String())
	}
	return body
}

func TestErrorsAnswerInTheContractsShape(t *testing.T) {
	cases := []struct {
		name    string
		method  string
		path    string
		body    io.Reader
		ctype   string
		unsized bool // send the body without a Content-Length
		status  int
		code    string
		message string // exact, when set
		field   string // "" means the field must be absent
	}{
		{name: "an invalid field is a 400 naming the field", method: "GET", path: "/invalid",
			status: 400, code: "invalid_field", message: "to[0]: not an email address", field: "to[0]"},
		{name: "an apperr wrapped with others keeps its answer", method: "GET", path: "/wrapped",
			status: 400, code: "invalid_field", message: "subject: required", field: "subject"},
		{name: "a missing resource is a 404", method: "GET", path: "/missing",
			status: 404, code: "not_found", message: `email "e-1" not found`},
		{name: "a conflict is a 409 without its cause", method: "GET", path: "/conflict",
			status: 409, code: "conflict", message: "idempotency key reused"},
		{name: "an unavailable dependency is a 503 without its cause", method: "GET", path: "/unavailable",
			status: 503, code: "unavailable", message: "database unavailable"},
		{name: "a plain error is a 500 with a generic message", method: "GET", path: "/plain",
			status: 500, code: "internal", message: "internal error"},
		{name: "a panic is a 500 with a generic message", method: "GET", path: "/panic",
			status: 500, code: "internal"},
		{name: "an unknown route is a 404", method: "GET", path: "/no/such/route",
			status: 404, code: "not_found"},
		{name: "a wrong method is a 405", method: "DELETE", path: "/invalid",
			status: 405, code: "method_not_allowed"},
		{name: "a body over the limit is a 413", method: "POST", path: "/echo", ctype: "application/json",
			body:   strings.NewReader(`{"subject":"` + strings.Repeat("x", bodyLimit) + `"}`),
			status: 413, code: "body_too_large"},
		{name: "a body over the limit without a length is a 413", method: "POST", path: "/echo", ctype: "application/json",
			body:    strings.NewReader(`{"subject":"` + strings.Repeat("x", 4*bodyLimit) + `"}`),
			unsized: true, status: 413, code: "body_too_large"},
		{name: "a body that is not JSON is a 415", method: "POST", path: "/echo", ctype: "text/plain",
			body: strings.NewReader(`{"subject":"x"}`), status: 415, code: "unsupported_media_type"},
		{name: "a duplicate key is a 400 naming the key", method: "POST", path: "/echo", ctype: "application/json",
			body: strings.NewReader(`{"subject":"x","subject":"y"}`), status: 400, code: "invalid_field", field: "subject"},
		{name: "malformed JSON is a 400", method: "POST", path: "/echo", ctype: "application/json",
			body: strings.NewReader(`{"subject":`), status: 400, code: "invalid_json"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e, logs := newServer(t)
			req := httptest.NewRequest(c.method, c.path, c.body)
			if c.unsized {
				// Past the Content-Length check: the limit must hold while reading.
				req.ContentLength = -1
				req.Header.Del("Content-Length")
			}
			if c.ctype != "" {
				req.Header.Set(echo.HeaderContentType, c.ctype)
			}
			rec := serve(e, req)
			if rec.Code != c.status {
				t.Errorf("status = %d, want %d; body %s", rec.Code, c.status, rec.Body)
			}
			if ct := rec.Header().Get(echo.HeaderContentType); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type = %q, want JSON", ct)
			}
			body := decodeError(t, rec)
			if body.Error.Code != c.code {
				t.Errorf("code = %q, want %q", body.Error.Code, c.code)
			}
			if body.Error.Message == "" || c.message != "" && body.Error.Message != c.message {
				t.Errorf("message = %q, want %q", body.Error.Message, c.message)
			}
			switch {
			case c.field == "" && body.Error.Field != nil:
				t.Errorf("field = %q, want none", *body.Error.Field)
			case c.field != "" && (body.Error.Field == nil || *body.Error.Field != c.field):
				t.Errorf("field = %v, want %q", body.Error.Field, c.field)
			}
			for _, leak := range []string{"SELECT", "secret", "goroutine", ".go:"} {
				if strings.Contains(rec.Body.String(), leak) {
					t.Errorf("the answer leaks %q: %s", leak, rec.Body)
				}
			}
			if c.status >= 500 && c.path != "/unavailable" && !strings.Contains(logs.String(), "SELECT password") {
				t.Errorf("the cause of a %d is not logged; log: %s", c.status, logs)
			}
		})
	}
}

func TestAHeadRequestForAnErrorHasNoBody(t *testing.T) {
	e, _ := newServer(t)
	e.HEAD("/head-missing", func(echo.Context) error { return apperr.NotFound("email", "e-1") })
	rec := serve(e, httptest.NewRequest(http.MethodHead, "/head-missing", nil))
	if rec.Code != http.StatusNotFound || rec.Body.Len() != 0 {
		t.Errorf("HEAD: status %d, body %q; want 404 and no body", rec.Code, rec.Body)
	}
}

func TestEveryAnswerCarriesTheSecurityHeaders(t *testing.T) {
	want := map[string]string{
		"X-Content-Type-Options": "nosniff",
		"X-Frame-Options":        "DENY",
		"Referrer-Policy":        "no-referrer",
	}
	cases := []struct {
		name, method, path string
		status             int
	}{
		{"a success", "GET", "/ok", 200},
		{"an application error", "GET", "/invalid", 400},
		{"an internal error", "GET", "/plain", 500},
		{"a panic", "GET", "/panic", 500},
		{"an unknown route", "GET", "/nowhere", 404},
		{"a wrong method", "PUT", "/ok", 405},
		{"an unknown method", "M00001", "/ok", 501},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e, _ := newServer(t)
			rec := serve(e, httptest.NewRequest(c.method, c.path, nil))
			if rec.Code != c.status {
				t.Errorf("status = %d, want %d", rec.Code, c.status)
			}
			for h, v := range want {
				if got := rec.Header().Get(h); got != v {
					t.Errorf("%s = %q, want %q", h, got, v)
				}
			}
			csp := rec.Header().Get("Content-Security-Policy")
			for _, directive := range []string{"default-src 'self'", "frame-ancestors 'none'"} {
				if !strings.Contains(csp, directive) {
					t.Errorf("Content-Security-Policy %q lacks %q", csp, directive)
				}
			}
			if rec.Header().Get(echo.HeaderXRequestID) == "" {
				t.Error("no X-Request-Id on the answer")
			}
		})
	}
}

func TestASuccessfulRequestDecodesWithinTheLimit(t *testing.T) {
	e, _ := newServer(t)
	req := httptest.NewRequest(http.MethodPost, "/echo", strings.NewReader(`{"subject":"안녕하세요"}`))
	req.Header.Set(echo.HeaderContentType, "application/json; charset=utf-8")
	rec := serve(e, req)
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "안녕하세요") {
		t.Errorf("status %d, body %s", rec.Code, rec.Body)
	}
}

// TestAnOutageIsLoggedAsOneWarningNotOneErrorPerRequest refuses a burst of requests
// with 503, as a full disk does: the log holds a warning standing for the burst, not
// an error per request.
func TestAnOutageIsLoggedAsOneWarningNotOneErrorPerRequest(t *testing.T) {
	e, logs := newServer(t)
	const burst = 50
	for range burst {
		if rec := serve(e, httptest.NewRequest(http.MethodGet, "/unavailable", nil)); rec.Code != http.StatusServiceUnavailable {
			t.Fatalf("status %d, want 503", rec.Code)
		}
	}
	log := logs.String()
	if n := strings.Count(log, "level=WARN"); n == 0 || n >= burst/2 {
		t.Errorf("%d warnings for %d refused requests within a second or two, want a few; log:\n%s", n, burst, log)
	}
	if strings.Contains(log, "level=ERROR") {
		t.Errorf("a 503 is logged as an error; log:\n%s", log)
	}
	if !strings.Contains(log, "refused=1 ") {
		t.Errorf("the first refusal is not logged at once; log:\n%s", log)
	}
}

func TestAGroupAnswersAWrongMethodOnAKnownPathWith405AndAllow(t *testing.T) {
	e, _ := newServer(t)
	guarded := 0
	g := httpserver.Group(e, "/api", func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error { guarded++; return next(c) }
	})
	ok := func(c echo.Context) error { return c.NoContent(http.StatusOK) }
	g.GET("/things", ok)
	g.POST("/things", ok)
	g.GET("/things/:id", ok)
	g.DELETE("/things/:id", ok)
	g.POST("/things/:id/poke", ok)
	e.GET("/outside", ok)

	cases := []struct {
		method, path string
		status       int
		allow        string
	}{
		{http.MethodDelete, "/api/things", http.StatusMethodNotAllowed, "OPTIONS, GET, POST"},
		{http.MethodPut, "/api/things/1", http.StatusMethodNotAllowed, "OPTIONS, DELETE, GET"},
		{http.MethodGet, "/api/things/1/poke", http.StatusMethodNotAllowed, "OPTIONS, POST"},
		{http.MethodOptions, "/api/things", http.StatusNoContent, "OPTIONS, GET, POST"},
		{http.MethodGet, "/api/nothing", http.StatusNotFound, ""},
		{http.MethodDelete, "/api", http.StatusNotFound, ""},
		{http.MethodGet, "/api/things/1/poke/more", http.StatusNotFound, ""},
		{http.MethodGet, "/api/things", http.StatusOK, ""},
		// Echo's own answer outside the group, which the group's matches.
		{http.MethodDelete, "/outside", http.StatusMethodNotAllowed, "OPTIONS, GET"},
	}
	for _, tc := range cases {
		guarded = 0
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
		if rec.Code != tc.status || rec.Header().Get(echo.HeaderAllow) != tc.allow {
			t.Errorf("%s %s: %d Allow %q, want %d Allow %q; body %s", tc.method, tc.path, rec.Code,
				rec.Header().Get(echo.HeaderAllow), tc.status, tc.allow, rec.Body)
			continue
		}
		if strings.HasPrefix(tc.path, "/api") && guarded != 1 {
			t.Errorf("%s %s: the group's middleware ran %d times, want once", tc.method, tc.path, guarded)
		}
		if tc.status == http.StatusMethodNotAllowed {
			var body httpserver.ErrorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Error.Code != apperr.CodeMethodNotAllowed {
				t.Errorf("%s %s: body %s, want the contract's shape with code method_not_allowed", tc.method, tc.path, rec.Body)
			}
		}
	}
}

func TestABodyTooLargeIsAnsweredWithTheSecurityHeaders(t *testing.T) {
	e, _ := newServer(t)
	req := httptest.NewRequest(http.MethodPost, "/echo", strings.NewReader(`{"subject":"`+strings.Repeat("x", 2*bodyLimit)+`"}`))
	req.Header.Set("Content-Type", "application/json")
	rec := serve(e, req)
	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("status = %d, want 413", rec.Code)
	}
	if rec.Header().Get("X-Content-Type-Options") != "nosniff" || rec.Header().Get("Content-Security-Policy") == "" {
		t.Errorf("the 413 lacks the security headers: %v", rec.Header())
	}
}

// TestUnknownMethodsAreRefusedAndNeverBecomeMetricLabels: Go's server takes any
// token as a method. Hundreds of made-up methods, one of them 100 KB long, are each
// answered 501 in the contract's shape, and the request metrics still have only
// methods Mailroom knows as labels, and as few series as before them.
func TestUnknownMethodsAreRefusedAndNeverBecomeMetricLabels(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	e := httpserver.New(httpserver.Config{MaxBodyBytes: bodyLimit}, slog.New(slog.DiscardHandler), reg)
	e.GET("/ok", func(c echo.Context) error { return c.NoContent(http.StatusNoContent) })
	serve(e, httptest.NewRequest(http.MethodGet, "/ok", nil))
	before := seriesOf(t, reg)

	methods := []string{strings.Repeat("M", 100<<10), "CONNECT", "TRACE", "get"}
	for i := range 300 {
		methods = append(methods, fmt.Sprintf("M%05d", i))
	}
	for _, m := range methods {
		rec := serve(e, httptest.NewRequest(m, "/ok", nil))
		if rec.Code != http.StatusNotImplemented {
			t.Fatalf("method %.20q: status %d, want 501", m, rec.Code)
		}
		if got := decodeError(t, rec).Error.Code; got != string(apperr.CodeNotImplemented) {
			t.Fatalf("method %.20q: code %q, want %q", m, got, apperr.CodeNotImplemented)
		}
	}
	after := seriesOf(t, reg)
	if len(after) != len(before) {
		t.Errorf("%d series after the unknown methods, %d before: %v", len(after), len(before), after)
	}
	for _, labels := range after {
		if !strings.Contains(labels, "method=GET") {
			t.Errorf("a series with a method label other than GET: %s", labels)
		}
	}
}

// seriesOf lists the request metrics' series as "name{label=value,...}".
func seriesOf(t *testing.T, reg *prometheus.Registry) []string {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var series []string
	for _, f := range families {
		if !strings.HasPrefix(f.GetName(), "mailroom_http_") {
			continue
		}
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			series = append(series, f.GetName()+"{"+strings.Join(labels, ",")+"}")
		}
	}
	return series
}

// TestARequestIDIsKeptOnlyWhenShortAndPlain: a client's X-Request-Id reaches the
// answer (and logs, and the emails it sends) only when it is up to 128 characters
// of [A-Za-z0-9._:-]; any other is replaced by a fresh UUID, never trimmed.
func TestARequestIDIsKeptOnlyWhenShortAndPlain(t *testing.T) {
	t.Parallel()
	e, _ := newServer(t)
	for _, c := range []struct {
		name, id string
		kept     bool
	}{
		{"plain", "req-42_a.b:C", true},
		{"128 characters", strings.Repeat("a", 128), true},
		{"129 characters", strings.Repeat("a", 129), false},
		{"a megabyte", strings.Repeat("a", 1<<20), false},
		{"a forged log field", "x level=ERROR msg=forged", false},
		{"a newline", "x\nlevel=ERROR", false},
		{"non-ASCII", "запрос", false},
		{"none", "", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/ok", nil)
			if c.id != "" {
				req.Header.Set(echo.HeaderXRequestID, c.id)
			}
			got := serve(e, req).Header().Get(echo.HeaderXRequestID)
			switch {
			case c.kept && got != c.id:
				t.Errorf("X-Request-Id %.20q answered as %.20q, want it kept", c.id, got)
			case !c.kept && got == c.id:
				t.Errorf("X-Request-Id %.20q kept, want it replaced", c.id)
			case !c.kept && uuid.Validate(got) != nil:
				t.Errorf("the replacement %q is not a UUID", got)
			}
		})
	}
}

// countingReader counts the bytes read from it.
type countingReader struct {
	r    io.Reader
	read int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.read += n
	return n, err
}

// TestTheKeyCheckComesBeforeTheBodyLimit: a request refused by the middleware in
// front of a handler (the API-key check) is answered 401 whatever body size it
// claims, with none of its body read; the same body past the check is 413.
func TestTheKeyCheckComesBeforeTheBodyLimit(t *testing.T) {
	t.Parallel()
	e, _ := newServer(t)
	guard := func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if c.Request().Header.Get("Authorization") != "Bearer ok" {
				return apperr.New(apperr.CodeUnauthorized, "missing or invalid API key")
			}
			return next(c)
		}
	}
	g := httpserver.Group(e, "/api", guard)
	g.POST("/echo", func(c echo.Context) error {
		var v map[string]any
		if err := httpserver.DecodeJSON(c, &v); err != nil {
			return err
		}
		return c.NoContent(http.StatusNoContent)
	})
	for _, c := range []struct {
		auth   string
		status int
	}{{"", http.StatusUnauthorized}, {"Bearer ok", http.StatusRequestEntityTooLarge}} {
		body := &countingReader{r: strings.NewReader(`{"x":"` + strings.Repeat("a", 4*bodyLimit) + `"}`)}
		req := httptest.NewRequest(http.MethodPost, "/api/echo", body)
		req.Header.Set("Content-Type", "application/json")
		req.ContentLength = int64(4*bodyLimit + 8)
		if c.auth != "" {
			req.Header.Set("Authorization", c.auth)
		}
		rec := serve(e, req)
		if rec.Code != c.status {
			t.Errorf("with Authorization %q: status %d, want %d", c.auth, rec.Code, c.status)
		}
		if c.auth == "" && body.read != 0 {
			t.Errorf("the refused request's body was read: %d bytes", body.read)
		}
	}
}

// TestTheClientAddressIsTheConnectionsUnlessItIsATrustedProxy: X-Forwarded-For and
// X-Real-IP are believed only from a peer in http.trusted_proxies.
func TestTheClientAddressIsTheConnectionsUnlessItIsATrustedProxy(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name, peer string
		trusted    []string
		want       string
	}{
		{"no proxy trusted", "203.0.113.5", nil, "203.0.113.5"},
		{"a loopback peer, no proxy trusted (Echo's default trusts loopback)", "127.0.0.1", nil, "127.0.0.1"},
		{"another proxy trusted", "203.0.113.5", []string{"198.51.100.0/24"}, "203.0.113.5"},
		{"the peer's range trusted", "203.0.113.5", []string{"203.0.113.0/24"}, "192.0.2.7"},
		{"the peer trusted", "203.0.113.5", []string{"203.0.113.5"}, "192.0.2.7"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var trusted []netip.Prefix
			for _, s := range c.trusted {
				p, err := config.ParsePrefix(s)
				if err != nil {
					t.Fatal(err)
				}
				trusted = append(trusted, p)
			}
			e := httpserver.New(httpserver.Config{MaxBodyBytes: bodyLimit, TrustedProxies: trusted}, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
			e.GET("/ip", func(c echo.Context) error { return c.String(http.StatusOK, c.RealIP()) })
			req := httptest.NewRequest(http.MethodGet, "/ip", nil)
			req.RemoteAddr = net.JoinHostPort(c.peer, "4242")
			req.Header.Set("X-Forwarded-For", "192.0.2.7")
			req.Header.Set("X-Real-IP", "192.0.2.99")
			if got := serve(e, req).Body.String(); got != c.want {
				t.Errorf("client address %q, want %q", got, c.want)
			}
		})
	}
}
