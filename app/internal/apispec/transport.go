package apispec

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"testing"
)

// Transport returns a RoundTripper that sends each request through next (the
// default transport when nil) and checks it and its answer against the Mailroom
// document (see Spec.Check), failing tb with tb.Errorf, naming method, path, status
// and what the document does not describe. It reads the whole answer before it
// returns it (the caller reads the same bytes from resp.Body), so it suits requests
// and answers of ordinary size, not streams. tb.Errorf is safe from any goroutine,
// so one Transport may serve concurrent clients.
//
// A request whose context carries Unchecked is sent as it is and not checked.
//
// For a benchmark (tb a *testing.B) it returns next itself: benchmarks measure, and
// checking every answer would take the CPU from the server they measure on the
// same cores (the delivery benchmarks ran a tenth slower with it); the tests that
// send the same requests check them.
func Transport(tb testing.TB, next http.RoundTripper) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	if _, measuring := tb.(*testing.B); measuring {
		return next
	}
	spec, err := Mailroom()
	if err != nil {
		tb.Fatalf("OpenAPI document: %v", err)
	}
	return &checkingTransport{tb: tb, next: next, spec: spec}
}

// Client returns a copy of c (a new default client when nil) whose transport is
// Transport(tb, c.Transport).
func Client(tb testing.TB, c *http.Client) *http.Client {
	out := &http.Client{}
	if c != nil {
		*out = *c
	}
	out.Transport = Transport(tb, out.Transport)
	return out
}

type uncheckedKey struct{}

// Unchecked returns ctx marking a request as one no OpenAPI document can describe,
// so Transport does not check it. why says what makes it so (a request a test
// sends on purpose to see the server survive it: a method with no meaning, a
// malformed request line); it must not be empty. Tests use it rarely, each with
// its reason in the code.
func Unchecked(ctx context.Context, why string) context.Context {
	if why == "" {
		panic("apispec.Unchecked: say why the request cannot be described")
	}
	return context.WithValue(ctx, uncheckedKey{}, why)
}

type checkingTransport struct {
	tb   testing.TB
	next http.RoundTripper
	spec *Spec
}

func (t *checkingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if _, skip := req.Context().Value(uncheckedKey{}).(string); skip {
		return t.next.RoundTrip(req)
	}
	reqBody, err := readRequestBody(req)
	if err != nil {
		return nil, err
	}
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	respBody, readErr := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = &replayBody{Reader: bytes.NewReader(respBody), err: readErr}
	if readErr != nil {
		// A cut answer is the caller's to notice; half a body says nothing of the document.
		return resp, nil
	}
	if problems := t.spec.Check(Exchange{Request: req, RequestBody: reqBody, Response: resp, ResponseBody: respBody}); len(problems) > 0 {
		t.tb.Errorf("OpenAPI: %s %s answered %d %q: the document (web/openapi.yaml) does not describe it:\n\t%s",
			req.Method, req.URL.RequestURI(), resp.StatusCode, clip(respBody), joinLines(problems))
	}
	return resp, nil
}

// readRequestBody reads req's body and gives req a fresh one with the same bytes,
// which the transport below sends.
func readRequestBody(req *http.Request) ([]byte, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return nil, nil
	}
	body, err := io.ReadAll(req.Body)
	req.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("apispec: read the request body: %w", err)
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	return body, nil
}

// replayBody is an answer's body read in full: its bytes, then the error reading
// it ended with (io.EOF when none).
type replayBody struct {
	*bytes.Reader
	err error
}

func (b *replayBody) Read(p []byte) (int, error) {
	n, err := b.Reader.Read(p)
	if errors.Is(err, io.EOF) && b.err != nil {
		return n, b.err
	}
	return n, err
}

func (b *replayBody) Close() error { return nil }

func clip(body []byte) string {
	const max = 300
	if len(body) > max {
		return string(body[:max]) + "…"
	}
	return string(body)
}

func joinLines(lines []string) string {
	var b bytes.Buffer
	for i, l := range lines {
		if i > 0 {
			b.WriteString("\n\t")
		}
		b.WriteString(l)
	}
	return b.String()
}

// CheckRaw holds an answer a test read off a raw connection (http.ReadResponse)
// to the document, as Transport holds a client's: req is the request written,
// with body reqBody. resp.Body is read, and replaced with the same bytes.
func CheckRaw(tb testing.TB, req *http.Request, reqBody []byte, resp *http.Response) {
	tb.Helper()
	spec, err := Mailroom()
	if err != nil {
		tb.Fatalf("OpenAPI document: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = &replayBody{Reader: bytes.NewReader(body), err: err}
	if err != nil {
		return
	}
	if problems := spec.Check(Exchange{Request: req, RequestBody: reqBody, Response: resp, ResponseBody: body}); len(problems) > 0 {
		tb.Errorf("OpenAPI: %s %s answered %d %q: the document (web/openapi.yaml) does not describe it:\n\t%s",
			req.Method, req.URL.RequestURI(), resp.StatusCode, clip(body), joinLines(problems))
	}
}
