package domain_test

import (
	"strings"
	"testing"
	"time"

	"github.com/mailroom/mailroom/modules/webhooks/internal/domain"
)

func TestTheWaitBetweenTriesGrowsToItsCapAndIsJittered(t *testing.T) {
	p := domain.RetryPolicy{Initial: 5 * time.Second, Multiplier: 4, MaxDelay: 6 * time.Hour, Jitter: 0.2}
	for _, tc := range []struct {
		attempts int
		want     time.Duration
	}{{1, 5 * time.Second}, {2, 20 * time.Second}, {3, 80 * time.Second}, {8, 6 * time.Hour}, {1000, 6 * time.Hour}} {
		if got := p.Delay(tc.attempts, 0.5); got != tc.want {
			t.Errorf("Delay(%d) = %s, want %s", tc.attempts, got, tc.want)
		}
	}
	if lo, hi := p.Delay(1, 0), p.Delay(1, 0.999999); lo != 4*time.Second || hi < 5990*time.Millisecond || hi > 6*time.Second {
		t.Errorf("jittered first wait from %s to %s; want 4s to 6s", lo, hi)
	}
}

func TestTheDefaultScheduleRetriesForADay(t *testing.T) {
	p := domain.RetryPolicy{Initial: 5 * time.Second, Multiplier: 4, MaxDelay: 6 * time.Hour, For: 24 * time.Hour}
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at, tries := created, 1
	for !p.GivesUp(created, at) {
		at = at.Add(p.Delay(tries, 0.5))
		tries++
	}
	if at.Sub(created) < 24*time.Hour || tries < 10 {
		t.Errorf("gave up after %d tries at %s; want at least 24h", tries, at.Sub(created))
	}
}

func TestAnEndpointIsDisabledOnlyWhenBothLimitsAreReached(t *testing.T) {
	p := domain.RetryPolicy{DisableAfterFailures: 3, DisableAfter: time.Hour}
	since := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if off, _ := p.ShouldDisable(2, since, since.Add(2*time.Hour), "x"); off {
		t.Error("disabled after 2 failures; want 3")
	}
	if off, _ := p.ShouldDisable(30, since, since.Add(time.Minute), "x"); off {
		t.Error("disabled after a minute of failing; want an hour")
	}
	off, reason := p.ShouldDisable(3, since, since.Add(time.Hour), "answered 500")
	if !off || !strings.Contains(reason, "3 consecutive failed tries since 2026-01-01T00:00:00Z") || !strings.HasSuffix(reason, "last: answered 500") {
		t.Errorf("ShouldDisable = %v, %q", off, reason)
	}
	if off, _ := (domain.RetryPolicy{}).ShouldDisable(1000, since, since.Add(1000*time.Hour), "x"); off {
		t.Error("disable_after_failures 0 disabled an endpoint")
	}
}

func TestAURLMustBeAbsoluteHTTPWithoutCredentials(t *testing.T) {
	for _, u := range []string{"", "/x", "example.com/x", "ftp://example.com", "https://u@example.com", "http://", "https://exa mple.com",
		"https://example.com/" + strings.Repeat("a", domain.MaxURLBytes)} {
		if _, err := domain.CheckURL(u); err == nil {
			t.Errorf("%q: accepted", u)
		}
	}
	if host, err := domain.CheckURL("https://[::1]:8443/hook?x=1"); err != nil || host != "::1" {
		t.Errorf("CheckURL = %q, %v", host, err)
	}
}
