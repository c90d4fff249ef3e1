package apispec_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/mailroom/mailroom/app/internal/apispec"
)

func mailroom(t *testing.T) *apispec.Spec {
	t.Helper()
	spec, err := apispec.Mailroom()
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

func TestMailroomsDocumentIsValidOpenAPI31(t *testing.T) {
	for _, p := range mailroom(t).Validate() {
		t.Error(p)
	}
}

func TestADocumentBreakingTheSpecificationIsReported(t *testing.T) {
	// A response without its required description, and a path parameter not
	// marked required.
	spec, err := apispec.Parse([]byte(`openapi: 3.1.0
info: {title: t, version: "1"}
paths:
  /a/{id}:
    get:
      parameters:
        - {name: id, in: path, schema: {type: string}}
      responses:
        "200": {}
components:
  schemas:
    Error: {type: object}
`))
	if err != nil {
		t.Fatal(err)
	}
	if problems := spec.Validate(); len(problems) == 0 {
		t.Error("Validate found nothing wrong")
	}
}

// exchange is one request and its answer, as the tests below build them.
type exchange struct {
	name          string
	method, path  string
	reqHeaders    []string
	reqBody       string
	status        int
	respHeaders   []string
	respBody      string
	wantProblemIn string // "" when the document describes the exchange
}

func (x exchange) build() apispec.Exchange {
	req := httptest.NewRequest(x.method, x.path, strings.NewReader(x.reqBody))
	for i := 0; i+1 < len(x.reqHeaders); i += 2 {
		req.Header.Set(x.reqHeaders[i], x.reqHeaders[i+1])
	}
	rec := httptest.NewRecorder()
	for i := 0; i+1 < len(x.respHeaders); i += 2 {
		rec.Header().Set(x.respHeaders[i], x.respHeaders[i+1])
	}
	if x.respBody != "" && rec.Header().Get("Content-Type") == "" {
		rec.Header().Set("Content-Type", "application/json")
	}
	rec.WriteHeader(x.status)
	rec.WriteString(x.respBody)
	return apispec.Exchange{Request: req, RequestBody: []byte(x.reqBody), Response: rec.Result(), ResponseBody: []byte(x.respBody)}
}

const (
	validEmail    = `{"to":["a@example.com"],"subject":"s","text":"t"}`
	acceptedBody  = `{"id":"01a249c4-4ed1-79b9-9371-3dcbd41ca5cf","status":"queued"}`
	notFoundError = `{"error":{"code":"not_found","message":"no such route"}}`
)

var (
	jsonBody = []string{"Content-Type", "application/json"}
	location = []string{"Location", "/api/emails/01a249c4-4ed1-79b9-9371-3dcbd41ca5cf"}
)

func TestCheckHoldsEachExchangeToTheDocument(t *testing.T) {
	spec := mailroom(t)
	for _, x := range []exchange{
		{name: "a documented answer", method: "GET", path: "/healthz", status: 200, respBody: `{"status":"ok"}`},
		{name: "an undocumented status", method: "GET", path: "/healthz", status: 418, respBody: `{"status":"ok"}`, wantProblemIn: "418"},
		{name: "a field the answer's schema does not have", method: "GET", path: "/healthz", status: 200,
			respBody: `{"status":"ok","uptime":3}`, wantProblemIn: "uptime"},
		{name: "an accepted email", method: "POST", path: "/api/emails", reqHeaders: jsonBody, reqBody: validEmail,
			status: 202, respHeaders: location, respBody: acceptedBody},
		{name: "an accepted email without Location", method: "POST", path: "/api/emails", reqHeaders: jsonBody, reqBody: validEmail,
			status: 202, respBody: acceptedBody, wantProblemIn: "Location"},
		{name: "an id that is no UUID", method: "POST", path: "/api/emails", reqHeaders: jsonBody, reqBody: validEmail,
			status: 202, respHeaders: location, respBody: `{"id":"42","status":"queued"}`, wantProblemIn: "uuid"},
		{name: "a status outside the enum", method: "POST", path: "/api/emails", reqHeaders: jsonBody, reqBody: validEmail,
			status: 202, respHeaders: location, respBody: `{"id":"01a249c4-4ed1-79b9-9371-3dcbd41ca5cf","status":"lost"}`, wantProblemIn: "status"},
		{name: "an invalid request refused", method: "POST", path: "/api/emails", reqHeaders: jsonBody, reqBody: `{"subject":"no to"}`,
			status: 400, respBody: `{"error":{"code":"invalid_field","message":"to: at least one recipient","field":"to"}}`},
		{name: "an invalid request refused before it is read", method: "POST", path: "/api/emails", reqHeaders: jsonBody, reqBody: `{"subject":"no to"}`,
			status: 507, respHeaders: []string{"Retry-After", "60"}, respBody: `{"error":{"code":"insufficient_storage","message":"the disk is nearly full"}}`},
		{name: "an invalid request accepted", method: "POST", path: "/api/emails", reqHeaders: jsonBody, reqBody: `{"subject":"no to"}`,
			status: 202, respHeaders: location, respBody: acceptedBody, wantProblemIn: "calls the request invalid"},
		{name: "an error body of another shape", method: "POST", path: "/api/emails", reqHeaders: jsonBody, reqBody: validEmail,
			status: 409, respBody: `{"message":"conflict"}`, wantProblemIn: "409"},
		{name: "an error code outside the set", method: "GET", path: "/api/emails/x", status: 404,
			respBody: `{"error":{"code":"gone","message":"email \"x\" not found"}}`, wantProblemIn: "code"},
		{name: "a 401 with its challenge", method: "GET", path: "/api/keys", status: 401,
			respHeaders: []string{"WWW-Authenticate", `Bearer realm="mailroom"`},
			respBody:    `{"error":{"code":"unauthorized","message":"missing API key"}}`},
		{name: "a 401 without its challenge", method: "GET", path: "/api/keys", status: 401,
			respBody: `{"error":{"code":"unauthorized","message":"missing API key"}}`, wantProblemIn: "WWW-Authenticate"},
		{name: "an unknown path answered 404", method: "GET", path: "/api/nothing-here", status: 404, respBody: notFoundError},
		{name: "an unknown path answered 200", method: "GET", path: "/api/nothing-here", status: 200, respBody: `{}`,
			wantProblemIn: "no route of the document"},
		{name: "an unknown path answered 404 in another shape", method: "GET", path: "/api/nothing-here", status: 404,
			respBody: `{"message":"not found"}`, wantProblemIn: "Error body"},
		{name: "a method no route takes answered 405 with Allow", method: "DELETE", path: "/api/emails", status: 405,
			respHeaders: []string{"Allow", "OPTIONS, GET, POST"},
			respBody:    `{"error":{"code":"method_not_allowed","message":"method DELETE not allowed here"}}`},
		{name: "a 405 without Allow", method: "DELETE", path: "/api/emails", status: 405,
			respBody: `{"error":{"code":"method_not_allowed","message":"method DELETE not allowed here"}}`, wantProblemIn: "Allow"},
		{name: "an unknown method answered 501", method: "BREW", path: "/healthz", status: 501,
			respBody: `{"error":{"code":"not_implemented","message":"unknown HTTP method"}}`},
		{name: "OPTIONS answered 204 with Allow", method: "OPTIONS", path: "/api/emails", status: 204,
			respHeaders: []string{"Allow", "OPTIONS, GET, POST"}},
	} {
		t.Run(x.name, func(t *testing.T) {
			problems := spec.Check(x.build())
			switch {
			case x.wantProblemIn == "" && len(problems) > 0:
				t.Errorf("problems with a described exchange:\n%s", strings.Join(problems, "\n"))
			case x.wantProblemIn != "" && !strings.Contains(strings.Join(problems, "\n"), x.wantProblemIn):
				t.Errorf("want a problem naming %q, got %q", x.wantProblemIn, problems)
			}
		})
	}
}

// recordingTB is a testing.TB whose Errorf is recorded, for testing Transport.
type recordingTB struct {
	testing.TB
	mu     sync.Mutex
	errors []string
}

func (r *recordingTB) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

func TestTransportFailsTheTestOnAnAnswerTheDocumentDoesNotDescribeUnlessUnchecked(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"status":"fine"}`) // the document says "ok"
	}))
	defer srv.Close()
	tb := &recordingTB{TB: t}
	client := apispec.Client(tb, nil)

	resp, err := client.Get(srv.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body := make([]byte, 100)
	n, _ := resp.Body.Read(body)
	resp.Body.Close()
	if string(body[:n]) != `{"status":"fine"}` {
		t.Errorf("the caller read %q, not the answer", body[:n])
	}
	if len(tb.errors) != 1 || !strings.Contains(tb.errors[0], "GET /healthz answered 200") {
		t.Fatalf("want one error naming the exchange, got %q", tb.errors)
	}

	req, err := http.NewRequestWithContext(apispec.Unchecked(context.Background(), "a test of Unchecked"), http.MethodGet, srv.URL+"/healthz", nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp, err = client.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(tb.errors) != 1 {
		t.Errorf("an Unchecked request was checked: %q", tb.errors[1:])
	}
}

// TestABenchmarksTransportIsItsOwn: a benchmark's client is not checked, so the
// check takes no CPU from the server the benchmark measures.
func TestABenchmarksTransportIsItsOwn(t *testing.T) {
	next := &http.Transport{}
	var got http.RoundTripper
	testing.Benchmark(func(b *testing.B) { got = apispec.Transport(b, next) })
	if got != next {
		t.Errorf("a benchmark's transport is %T, want the one given", got)
	}
	if apispec.Transport(t, next) == next {
		t.Errorf("a test's transport is the one given, want one that checks")
	}
}
