// Package domain holds the webhooks module's rules: what an endpoint and a delivery
// are, which URLs and addresses a webhook may target, how secrets look and when a
// failed try is tried again.
package domain

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// Delivery statuses.
const (
	// StatusPending: the event still has to reach the endpoint (due at
	// NextAttemptAt, or waiting for a disabled endpoint to be enabled).
	StatusPending = "pending"
	// StatusSucceeded: the endpoint answered 2xx.
	StatusSucceeded = "succeeded"
	// StatusFailed: every try failed for retry_for; no more tries unless replayed.
	StatusFailed = "failed"
)

// Endpoint is a URL that receives the events of the types it subscribed to.
type Endpoint struct {
	ID          string
	URL         string
	Events      []string
	Description string
	// Secret is "whsec_" + base64 of the signing key's bytes.
	Secret string
	// Enabled endpoints get tries; a disabled one's deliveries wait.
	Enabled bool
	// DisabledReason says why the endpoint was disabled ("" while enabled).
	DisabledReason string
	// ConsecutiveFailures counts failed tries since the last success, and
	// FailingSince is when the first of them was made (nil with none).
	ConsecutiveFailures int
	FailingSince        *time.Time
	CreatedAt           time.Time
	UpdatedAt           time.Time
}

// Subscribes tells whether the endpoint wants events of type t.
func (e Endpoint) Subscribes(t string) bool {
	for _, s := range e.Events {
		if s == t {
			return true
		}
	}
	return false
}

// Delivery is one event on its way to one endpoint.
type Delivery struct {
	ID             int64
	EndpointID     string
	EventID        string
	EventType      string
	Status         string
	Attempts       int
	NextAttemptAt  time.Time
	LastStatusCode *int
	LastDurationMs *int64
	LastResponse   string
	LastError      string
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// SecretPrefix starts every secret, as the Standard Webhooks libraries expect.
const SecretPrefix = "whsec_"

// secretBytes is the length of a signing key: 256 bits.
const secretBytes = 32

// NewSecret returns a new random secret: SecretPrefix + standard base64 of 32
// random bytes.
func NewSecret() (string, error) {
	b := make([]byte, secretBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random secret: %w", err)
	}
	return SecretPrefix + base64.StdEncoding.EncodeToString(b), nil
}

// MaxURLBytes is the longest URL an endpoint may have.
const MaxURLBytes = 2048

// CheckURL tells what is wrong with raw as an endpoint URL (nil when nothing): it
// must be an absolute http or https URL with a host, without userinfo, at most
// MaxURLBytes long. It returns the parsed URL's host name (no port, no brackets).
func CheckURL(raw string) (host string, err error) {
	if raw == "" {
		return "", fmt.Errorf("must not be empty")
	}
	if len(raw) > MaxURLBytes {
		return "", fmt.Errorf("must be at most %d bytes, got %d", MaxURLBytes, len(raw))
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("not a URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("must be an absolute http or https URL")
	}
	if u.User != nil {
		return "", fmt.Errorf("must not carry a user name or password; put a token in the path or query instead")
	}
	if u.Hostname() == "" {
		return "", fmt.Errorf("must name a host")
	}
	if strings.ContainsAny(raw, " \t\r\n") {
		return "", fmt.Errorf("must not contain spaces or line breaks")
	}
	return u.Hostname(), nil
}

// extraForbidden are ranges beside the ones netip classifies that no webhook
// should reach: "this network" and carrier-grade NAT.
var extraForbidden = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
}

// ForbiddenAddr tells whether a webhook may not target a: a loopback, private
// (RFC 1918, fc00::/7), link-local, unspecified or multicast address, or one of
// extraForbidden, in IPv4 or IPv6 (an IPv4-mapped IPv6 address counts as its
// IPv4 address). Unless webhooks.allow_private_targets is set, such targets are
// refused at creation and at every connection (SSRF).
func ForbiddenAddr(a netip.Addr) bool {
	a = a.Unmap()
	if !a.IsValid() || a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsInterfaceLocalMulticast() || a.IsMulticast() || a.IsUnspecified() {
		return true
	}
	for _, p := range extraForbidden {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
