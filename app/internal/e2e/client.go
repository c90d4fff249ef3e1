package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/mailroom/mailroom/app/internal/apispec"
)

// APIKey is the admin key every test config carries (auth.api_keys): the helpers
// here and apptest send it on every request, so tests that are not about access
// control never mention it.
const APIKey = "mailroom-test-admin-key-0123456789abcdef"

// TestRateLimit is auth.rate_limit (and auth.rate_burst) of test configs: high
// enough that no load test or benchmark is ever throttled.
const TestRateLimit = "1000000"

// Authorize sets the Authorization header of req to the test admin key.
func Authorize(req *http.Request) { req.Header.Set("Authorization", "Bearer "+APIKey) }

// NewHTTPClient returns a client for load: up to 64 idle keep-alive connections per
// host, so 32 concurrent clients reuse their connections. Every request it sends,
// and its answer, is held to the OpenAPI document, failing tb on whatever the
// document does not describe (see apispec.Transport).
func NewHTTPClient(tb testing.TB) *http.Client {
	return apispec.Client(tb, &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        64,
			MaxIdleConnsPerHost: 64,
			MaxConnsPerHost:     0,
			IdleConnTimeout:     90 * time.Second,
		},
	})
}

// Accepted is the 202 answer of POST /api/emails.
type Accepted struct {
	ID     string `json:"id"`
	Status string `json:"status"`
}

// PostEmail posts a JSON body to baseURL/api/emails. It returns the HTTP status and,
// on 202, the answer; err is a transport or decoding error. It never fails a test,
// so goroutines may call it.
func PostEmail(ctx context.Context, c *http.Client, baseURL string, body []byte) (Accepted, int, error) {
	status, raw, err := Post(ctx, c, baseURL, body)
	if err != nil || status != http.StatusAccepted {
		return Accepted{}, status, err
	}
	var acc Accepted
	if err := json.Unmarshal(raw, &acc); err != nil || acc.ID == "" {
		return Accepted{}, status, fmt.Errorf("decode 202 body %q: %v", raw, err)
	}
	return acc, status, nil
}

// Post posts a JSON body to baseURL/api/emails with the test key and returns the
// status and the raw answer, whatever it is.
func Post(ctx context.Context, c *http.Client, baseURL string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, baseURL+"/api/emails", bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	Authorize(req)
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	return resp.StatusCode, raw, err
}

// GetJSON GETs baseURL+path into v and returns the status; v is decoded only on 200.
func GetJSON(ctx context.Context, c *http.Client, baseURL, path string, v any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+path, nil)
	if err != nil {
		return 0, err
	}
	Authorize(req)
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return resp.StatusCode, fmt.Errorf("decode %s: %v", path, err)
	}
	return resp.StatusCode, nil
}

// Email is an email as the API lists it, with the fields tests and benchmarks use.
type Email struct {
	ID        string     `json:"id"`
	Status    string     `json:"status"`
	Subject   string     `json:"subject"`
	Attempts  int        `json:"attempts"`
	LastError string     `json:"last_error"`
	CreatedAt time.Time  `json:"created_at"`
	SentAt    *time.Time `json:"sent_at"`
	SendAt    *time.Time `json:"send_at"`
	Tags      []string   `json:"tags"`
}

// ListPage is one page of GET /api/emails.
type ListPage struct {
	Items      []Email `json:"items"`
	NextCursor string  `json:"next_cursor"`
}

// ListAll pages through GET /api/emails with query (e.g. "status=sent&tag=x") and
// limit per page, and returns every item in the order served.
func ListAll(ctx context.Context, c *http.Client, baseURL, query string, limit int) ([]Email, error) {
	var out []Email
	cursor := ""
	for {
		path := fmt.Sprintf("/api/emails?limit=%d", limit)
		if query != "" {
			path += "&" + query
		}
		if cursor != "" {
			path += "&cursor=" + url.QueryEscape(cursor)
		}
		var page ListPage
		st, err := GetJSON(ctx, c, baseURL, path, &page)
		if err != nil {
			return out, err
		}
		if st != http.StatusOK {
			return out, fmt.Errorf("GET %s: status %d", path, st)
		}
		out = append(out, page.Items...)
		if page.NextCursor == "" {
			return out, nil
		}
		cursor = page.NextCursor
	}
}
