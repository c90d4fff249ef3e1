package adapters

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"syscall"
	"time"
	"unicode/utf8"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/mailroom/mailroom/modules/webhooks/internal/app"
	"github.com/mailroom/mailroom/modules/webhooks/internal/domain"
)

// Bounds of what a try reads of an answer.
const (
	// MaxAnswerRead is the most of an answer's body a try reads.
	MaxAnswerRead = 4 << 10
	// MaxAnswerKept is the most of it kept as the delivery's last_response.
	MaxAnswerKept = 1 << 10
)

// UserAgent is the User-Agent of every webhook request.
const UserAgent = "Mailroom-Webhooks/1"

// Client POSTs webhooks: signed the Standard Webhooks way, never following a
// redirect, with no proxy from the environment, reading at most MaxAnswerRead of
// an answer, giving up after Timeout, and (unless AllowPrivate) refusing at
// connect time any address domain.ForbiddenAddr names, so that a name that
// resolves to an internal address later (DNS rebinding) reaches nothing.
type Client struct {
	http    *http.Client
	timeout time.Duration
}

var _ app.Poster = (*Client)(nil)

// NewClient returns a Client whose requests time out after timeout, the whole
// request and answer included.
func NewClient(timeout time.Duration, allowPrivate bool) *Client {
	dialer := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	if !allowPrivate {
		dialer.Control = RefuseForbidden
	}
	transport := &http.Transport{
		Proxy:                 nil, // never a proxy from the environment
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
	}
	return &Client{timeout: timeout, http: &http.Client{
		Transport: transport,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse // a 3xx is the answer, a failed try
		},
	}}
}

// RefuseForbidden is a net.Dialer Control function: it refuses to connect to an
// address domain.ForbiddenAddr names. It runs after name resolution, on the
// address about to be connected to.
func RefuseForbidden(network, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return fmt.Errorf("webhook target %q: %w", address, err)
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("webhook target %q is not an IP address", address)
	}
	if domain.ForbiddenAddr(a) {
		return fmt.Errorf("webhook target %s is a loopback, private, link-local or otherwise internal address (webhooks.allow_private_targets is false)", a)
	}
	return nil
}

// Post implements app.Poster.
func (c *Client) Post(ctx context.Context, r app.Request) app.Answer {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	ans := c.post(ctx, r)
	ans.Duration = time.Since(start)
	if ans.Err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		ans.Err = fmt.Errorf("no answer within %s", c.timeout)
	}
	return ans
}

func (c *Client) post(ctx context.Context, r app.Request) app.Answer {
	sig, err := Sign(r.Secret, r.MessageID, r.Timestamp, r.Body)
	if err != nil {
		return app.Answer{Err: err}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.URL, bytes.NewReader(r.Body))
	if err != nil {
		return app.Answer{Err: fmt.Errorf("build request: %w", err)}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", UserAgent)
	req.Header.Set("webhook-id", r.MessageID)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(r.Timestamp.Unix(), 10))
	req.Header.Set("webhook-signature", sig)
	resp, err := c.http.Do(req)
	if err != nil {
		return app.Answer{Err: unwrapURLError(err)}
	}
	defer resp.Body.Close()
	// The status is the answer: a body cut short (the timeout, a reset) is kept
	// as far as it was read.
	body, _ := io.ReadAll(io.LimitReader(resp.Body, MaxAnswerRead))
	return app.Answer{StatusCode: resp.StatusCode, Body: Clip(body, MaxAnswerKept)}
}

// unwrapURLError drops the "Post "url": " prefix net/http puts on errors: the
// delivery's endpoint says which URL it was.
func unwrapURLError(err error) error {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		if inner := ue.Unwrap(); inner != nil {
			return inner
		}
	}
	return err
}

// Sign returns the webhook-signature of one try ("v1,<base64>"), made with the
// Standard Webhooks library: an HMAC-SHA256 over "id.timestamp.body" keyed with
// the secret's base64-decoded bytes (after "whsec_").
func Sign(secret, id string, at time.Time, body []byte) (string, error) {
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		return "", fmt.Errorf("signing key: %w", err)
	}
	return wh.Sign(id, at, body)
}

// Clip returns the first at most n bytes of b as a string, cut at a rune boundary
// and with invalid UTF-8 replaced, so it stores and prints safely.
func Clip(b []byte, n int) string {
	b = bytes.ToValidUTF8(b, []byte("\uFFFD"))
	if len(b) > n {
		cut := n
		for cut > 0 && !utf8.RuneStart(b[cut]) {
			cut--
		}
		b = b[:cut]
	}
	return string(b)
}
